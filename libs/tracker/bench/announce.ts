/**
 * Announces per second through the HTTP tracker on keep-alive connections: a fleet of
 * 10,000 peers in one swarm, each asking for 50 compact peers. The tracker runs in this
 * process (one core); the load comes from a child process so the two do not share a core.
 *
 *   node dist/libs/tracker/bench/announce.js [seconds=10] [connections=64]
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { percentEncodeBytes } from '../src/query.js';
import { startTrackerServer } from '../src/server.js';

const PEERS = 10_000;

interface LoadResult {
  requests: number;
  failures: number;
  ms: number;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const connections = Number(process.argv[3] ?? 64);
  const tracker = await startTrackerServer({ port: 0 });
  const child = fork(fileURLToPath(import.meta.url), ['load', tracker.url, String(seconds), String(connections)]);
  const result = await new Promise<LoadResult>((resolve) => child.once('message', (m) => resolve(m as LoadResult)));
  await tracker.close();
  const perSecond = Math.round((result.requests / result.ms) * 1000);
  const cpu = process.cpuUsage();
  console.log(
    JSON.stringify({
      bench: 'tracker-announce-http-keepalive',
      announcesPerSecond: perSecond,
      requests: result.requests,
      failures: result.failures,
      connections,
      swarmPeers: PEERS,
      trackerCpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    }),
  );
}

async function load(url: string, seconds: number, connections: number): Promise<void> {
  const infoHash = percentEncodeBytes(Buffer.alloc(20, 0xab));
  const paths: string[] = [];
  const base = new URL(url);
  for (let i = 0; i < PEERS; i++) {
    const peerId = Buffer.alloc(20, 0x2d);
    peerId.writeUInt32BE(i, 16);
    paths.push(`${base.pathname}?info_hash=${infoHash}&peer_id=${percentEncodeBytes(peerId)}&port=${6881 + (i % 1000)}&uploaded=0&downloaded=0&left=1000&compact=1&numwant=50&key=${i}`);
  }
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const end = Date.now() + seconds * 1000;
  let requests = 0;
  let failures = 0;
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: base.hostname, port: base.port, path: paths[next++ % PEERS], agent }, (res) => {
        if (res.statusCode !== 200) failures++;
        res.resume();
        res.on('end', () => {
          requests++;
          resolve();
        });
      });
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end();
    });
  const started = Date.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) await one();
    }),
  );
  const result: LoadResult = { requests, failures, ms: Date.now() - started };
  process.send?.(result);
  agent.destroy();
}

if (process.argv[2] === 'load') await load(process.argv[3] as string, Number(process.argv[4]), Number(process.argv[5]));
else await main();
