/**
 * `npm run bench:rollout`: a controller and N agents on loopback, one artifact published
 * with `swarmship publish --wait`, with the origin super-seeding and without. Prints the
 * time from publish to the last verified copy, the origin's bytes as copies of the
 * artifact, and each agent's CPU seconds and peak RSS. Prints; never asserts.
 *
 * Options: --agents 4,8,16  --size 256MiB  --super-seed on,off  --help
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ReleaseStatus } from '../libs/contracts/src/rest.js';
import { generateRandomFile } from './lib/files.js';
import { freePort } from './lib/net.js';

const CLI = fileURLToPath(new URL('../apps/cli/src/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const RSS_TARGET_MB = 150;
const ORIGIN_TARGET = 1.2;
const CLOCK_TICKS = 100;

interface Proc {
  child: ChildProcess;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
  peakRssKiB: number;
  peakAnonKiB: number;
}

const running = new Set<Proc>();

function start(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
  const proc: Proc = { child, events: [], exited: new Promise((r) => child.once('exit', (c) => r(c))), peakRssKiB: 0, peakAnonKiB: 0 };
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      proc.events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not JSON
    }
  });
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  return proc;
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 8000);
  await p.exited;
  clearTimeout(t);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve(probe()).catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}


/**
 * utime+stime (seconds) and resident memory (KiB) of a process, from /proc: all of it,
 * and the anonymous part alone (the node binary and libraries mapped from disk are
 * shared by every process on the machine).
 */
async function usage(pid: number): Promise<{ cpu: number; rssKiB: number; anonKiB: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(status);
    const anon = /RssAnon:\s+(\d+)/.exec(status);
    return { cpu: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS, rssKiB: rss ? Number(rss[1]) : 0, anonKiB: anon ? Number(anon[1]) : 0 };
  } catch {
    return undefined;
  }
}

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|kb|mb|gb)?$/i.exec(text.trim());
  if (!m) throw new Error(`--size ${text}: expected e.g. 256MiB`);
  const unit = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Math.round(Number(m[1]) * unit);
}

interface Result {
  agents: number;
  superSeed: boolean;
  seconds: number;
  originCopies: number;
  timeTo50: number | null;
  timeTo90: number | null;
  agentCpuSeconds: { median: number; max: number };
  agentPeakRssMiB: { median: number; max: number };
  agentPeakAnonMiB: { median: number; max: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function scenario(dir: string, artifact: string, size: number, agentCount: number, superSeed: boolean): Promise<Result> {
  const work = join(dir, `n${agentCount}-${superSeed ? 'ss' : 'plain'}`);
  await mkdir(work, { recursive: true });
  const token = randomBytes(12).toString('hex');
  const agentToken = randomBytes(12).toString('hex');
  const [port, agentPort] = [await freePort(), await freePort()];
  const procs: Proc[] = [];
  try {
    const controller = start(
      ['controller', '--data', join(work, 'controller'), '--host', '127.0.0.1', '--port', String(port), '--agent-port', String(agentPort), '--peer-port', '0', '--super-seed', String(superSeed), '--json'],
      { SWARMSHIP_TOKEN: token, SWARMSHIP_AGENT_TOKEN: agentToken },
    );
    procs.push(controller);
    const listening = await waitFor('the controller', () => controller.events.find((e) => e.event === 'listening'), 30_000);
    // Agents verify signatures as in production: the manifest before, the artifact's SHA-256 after the download.
    const publicKeyFile = String((listening.signingKey as { publicKeyFile: string }).publicKeyFile);
    const agents = Array.from({ length: agentCount }, (_, i) =>
      start(
        ['agent', '--controller', `tcp://127.0.0.1:${agentPort}`, '--data', join(work, `node-${i + 1}`), '--name', `node-${i + 1}`, '--peer-port', '0', '--listen-host', '127.0.0.1', '--http-port', '0', '--trust-key', publicKeyFile, '--json'],
        { SWARMSHIP_AGENT_TOKEN: agentToken },
      ),
    );
    procs.push(...agents);
    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new Error(`${path}: ${res.status}`);
      return (await res.json()) as T;
    };
    await waitFor('every agent to sync', async () => ((await api<unknown[]>('/agents')).length === agentCount ? true : undefined), 60_000);
    const cpuBefore = await Promise.all(agents.map(async (a) => (await usage(a.child.pid!))?.cpu ?? 0));

    const sampler = setInterval(() => {
      for (const a of agents) {
        void usage(a.child.pid!).then((u) => {
          if (!u) return;
          a.peakRssKiB = Math.max(a.peakRssKiB, u.rssKiB);
          a.peakAnonKiB = Math.max(a.peakAnonKiB, u.anonKiB);
        });
      }
    }, 100);
    const started = performance.now();
    const publish = start(['publish', artifact, '--name', 'bench', '--version', '1', '--wait', '--timeout', '20m', '--url', `http://127.0.0.1:${port}`, '--token', token, '--json'], {});
    const code = await publish.exited;
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    if (code !== 0) throw new Error(`publish --wait exited with ${code}`);
    const status = await api<ReleaseStatus>('/releases/bench/1');
    const cpu = await Promise.all(agents.map(async (a, i) => ((await usage(a.child.pid!))?.cpu ?? 0) - cpuBefore[i]!));
    const rss = agents.map((a) => a.peakRssKiB / 1024);
    const anon = agents.map((a) => a.peakAnonKiB / 1024);
    return {
      agents: agentCount,
      superSeed,
      seconds,
      originCopies: status.rollout.originBytesSent / size,
      timeTo50: status.rollout.timeTo50,
      timeTo90: status.rollout.timeTo90,
      agentCpuSeconds: { median: median(cpu), max: Math.max(...cpu) },
      agentPeakRssMiB: { median: median(rss), max: Math.max(...rss) },
      agentPeakAnonMiB: { median: median(anon), max: Math.max(...anon) },
    };
  } finally {
    await Promise.all(procs.map(stop));
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { agents: { type: 'string' }, size: { type: 'string' }, 'super-seed': { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log('Usage: npm run bench:rollout -- [--agents 4,8,16] [--size 256MiB] [--super-seed on,off]');
    return;
  }
  const counts = (values.agents ?? '4,8,16').split(',').map(Number);
  const size = parseSize(values.size ?? '256MiB');
  const modes = (values['super-seed'] ?? 'on,off').split(',').map((m) => m.trim() === 'on');
  console.log(`machine: ${cpus().length} cores, Node ${process.version}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = await mkdtemp(join(tmpdir(), 'swarmship-bench-rollout-'));
  const onSignal = () => {
    for (const p of running) p.child.kill('SIGKILL');
    void rm(dir, { recursive: true, force: true }).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  const results: Result[] = [];
  try {
    const artifact = join(dir, 'artifact.bin');
    await generateRandomFile(artifact, size);
    for (const n of counts) {
      for (const ss of modes) {
        process.stdout.write(`${n} agents, super-seeding ${ss ? 'on' : 'off'} … `);
        const r = await scenario(dir, artifact, size, n, ss);
        results.push(r);
        console.log(`${r.seconds.toFixed(1)} s, origin ${r.originCopies.toFixed(2)} copies`);
      }
    }
  } finally {
    for (const p of running) p.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(1));
  console.log(`\nartifact ${(size / 1024 ** 2).toFixed(0)} MiB; time = publish (upload + torrent) to last verified copy`);
  console.log('agents | super-seed | seconds | to 50 % | to 90 % | origin copies | agent CPU s (median/max) | agent peak RSS MiB (median/max) | of it anonymous | targets');
  console.log('-------|------------|---------|---------|---------|---------------|--------------------------|---------------------------------|-----------------|--------');
  for (const r of results) {
    console.log(
      `${String(r.agents).padStart(6)} | ${(r.superSeed ? 'on' : 'off').padEnd(10)} | ${r.seconds.toFixed(1).padStart(7)} | ${f(r.timeTo50).padStart(7)} | ${f(r.timeTo90).padStart(7)} | ${r.originCopies.toFixed(2).padStart(13)} | ${`${r.agentCpuSeconds.median.toFixed(1)} / ${r.agentCpuSeconds.max.toFixed(1)}`.padStart(24)} | ${`${r.agentPeakRssMiB.median.toFixed(0)} / ${r.agentPeakRssMiB.max.toFixed(0)}`.padStart(31)} | ${`${r.agentPeakAnonMiB.median.toFixed(0)} / ${r.agentPeakAnonMiB.max.toFixed(0)}`.padStart(15)} | origin ≤ ${ORIGIN_TARGET} at 16, RSS < ${RSS_TARGET_MB} MB`,
    );
  }
  await mkdir(RESULTS, { recursive: true });
  const file = join(RESULTS, `rollout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ size, loadavg: loadavg(), results }, null, 2));
  console.log(`results: ${file}`);
}

main().catch((err: Error) => {
  console.error(`bench:rollout failed: ${err.message}`);
  for (const p of running) p.child.kill('SIGKILL');
  process.exit(1);
});
