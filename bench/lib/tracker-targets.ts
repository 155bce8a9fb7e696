/**
 * The trackers the tracker benchmark loads, each started as its own process on
 * 127.0.0.1 and a free port, and a few direct announces that check what they answer.
 */
import bencode from 'bencode';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { decodeStrict } from '../../libs/bencode/src/index.js';
import { Child } from './proc.js';

export type TargetId = 'ours' | 'bittorrent-tracker' | 'opentracker' | 'controller';

export interface RunningTarget {
  child: Child;
  announce: string;
  /** Said next to the figures, e.g. why a tracker refuses every announce. */
  note?: string;
}

const START_TIMEOUT_MS = 30_000;
export const OPENTRACKER = '/usr/bin/opentracker';

/** 'swarmship tracker': the standalone tracker, open to any info hash. */
export async function startOurs(cli: string, profileDir: string | undefined): Promise<RunningTarget> {
  const node = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = new Child('swarmship tracker', process.execPath, [...node, cli, 'tracker', '--host', '127.0.0.1', '--port', '0', '--json']);
  return { child, announce: await announceLine(child) };
}

/** npm's bittorrent-tracker in its own node process (bench/lib/tracker-bittorrent.ts). */
export async function startBittorrentTracker(script: string): Promise<RunningTarget> {
  const child = new Child('bittorrent-tracker', process.execPath, [script]);
  return { child, announce: await announceLine(child) };
}

/**
 * Debian's opentracker serves only allow-listed info hashes (`-w`), chroots into `-d`
 * and drops to 'nobody', so the directory and list must be readable by everyone and the
 * list's path is given as seen from inside the chroot. It loads the list in a thread
 * after start-up: the caller waits until an allowed hash is answered.
 */
export async function startOpentracker(dir: string, hashes: Buffer[]): Promise<RunningTarget> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const list = join(dir, 'whitelist.txt');
  await writeFile(list, hashes.map((h) => h.toString('hex')).join('\n') + '\n');
  await chmod(list, 0o644);
  const port = await freePort();
  // -P with the same port: otherwise it also binds UDP on its default port 6969.
  const child = new Child('opentracker', OPENTRACKER, ['-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-d', dir, '-w', '/whitelist.txt'], { cwd: dir });
  return { child, announce: `http://127.0.0.1:${port}/announce` };
}

/**
 * 'swarmship controller' with an empty data dir: its embedded tracker is private and
 * serves only published releases, so with nothing published it refuses every announce.
 */
export async function startController(cli: string, dataDir: string): Promise<RunningTarget> {
  const child = new Child('swarmship controller', process.execPath, [
    cli,
    'controller',
    '--data',
    dataDir,
    '--host',
    '127.0.0.1',
    '--public-host',
    '127.0.0.1',
    '--port',
    '0',
    '--agent-port',
    '0',
    '--peer-port',
    '0',
    '--log-format',
    'json',
    '--json',
  ]);
  const line = await child.waitLine((l) => l.json?.event === 'listening', START_TIMEOUT_MS, "'listening' line");
  return { child, announce: String(line.json!.announce), note: 'private, nothing published: every announce is refused' };
}

async function announceLine(child: Child): Promise<string> {
  const line = await child.waitLine((l) => typeof l.json?.announce === 'string', START_TIMEOUT_MS, 'announce URL');
  return String(line.json!.announce);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Answer {
  status: number;
  body: Buffer;
  /** The response's Connection header, if any. */
  connection: string | undefined;
  socket: Socket;
}

/** One GET with a keep-alive agent; rejects after `timeoutMs`. */
export function get(url: string, agent: Agent, timeoutMs = 5000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: timeoutMs }, (res: IncomingMessage) => {
      // Taken now: once the answer is read, a keep-alive agent detaches the socket from it.
      const socket = res.socket;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), connection: res.headers.connection, socket }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Verdict {
  ok: boolean;
  /** What was wrong, or a summary of what came back. */
  detail: string;
  /** Whether the body is canonical bencode (our own strict decoder), not only readable. */
  canonical: boolean;
  peers: number;
}

/** A successful compact announce answer: a bencoded dict with 'interval' and 'peers', no 'failure reason'. */
export function checkAnnounceAnswer(a: Answer): Verdict {
  const fail = (detail: string, canonical = false): Verdict => ({ ok: false, detail, canonical, peers: 0 });
  if (a.status !== 200) return fail(`HTTP ${a.status}`);
  let value: unknown;
  let canonical = true;
  try {
    value = decodeStrict(a.body);
  } catch {
    canonical = false;
    try {
      value = bencode.decode(a.body);
    } catch (err) {
      return fail(`not bencode (${(err as Error).message}): ${JSON.stringify(a.body.subarray(0, 80).toString('latin1'))}`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) return fail('not a dictionary', canonical);
  const dict = value as Record<string, unknown>;
  const failure = dict['failure reason'];
  if (failure instanceof Uint8Array) return fail(`failure reason: ${Buffer.from(failure).toString('utf8')}`, canonical);
  if (typeof dict.interval !== 'number') return fail("no integer 'interval'", canonical);
  const peers = dict.peers;
  if (!(peers instanceof Uint8Array)) return fail("'peers' is not a compact string", canonical);
  if (peers.length % 6 !== 0) return fail(`'peers' is ${peers.length} bytes, not a multiple of 6`, canonical);
  const n = peers.length / 6;
  return { ok: true, detail: `interval ${dict.interval}, ${n} peer${n === 1 ? '' : 's'}`, canonical, peers: n };
}

export interface Sample {
  verdicts: Verdict[];
  /** Sockets the answers came over: one when the tracker keeps connections open. */
  sockets: number;
  /** Sockets the tracker closed right after its answer without saying 'Connection: close'. */
  closedAfterReply: number;
  connectionHeaders: string[];
}

/**
 * Sends `queries` one after another over a single keep-alive connection pool of one,
 * checks each answer, and sees whether the tracker closed the socket after replying.
 */
export async function sampleAnnounces(announce: string, queries: string[]): Promise<Sample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<Socket>();
  let closedAfterReply = 0;
  const verdicts: Verdict[] = [];
  const connectionHeaders: string[] = [];
  try {
    for (const q of queries) {
      const a = await get(`${announce}?${q}`, agent);
      sockets.add(a.socket);
      verdicts.push(checkAnnounceAnswer(a));
      connectionHeaders.push(a.connection ?? '(none)');
      // Give a tracker that hangs up after each answer the moment it takes to do so.
      await new Promise((r) => setTimeout(r, 50));
      if (a.socket.destroyed && a.connection?.toLowerCase() !== 'close') closedAfterReply++;
    }
  } finally {
    agent.destroy();
  }
  return { verdicts, sockets: sockets.size, closedAfterReply, connectionHeaders };
}

/** Retries `sampleAnnounces` with one query until the tracker answers it properly (opentracker loads its list late). */
export async function waitUntilServing(announce: string, query: string, timeoutMs = START_TIMEOUT_MS): Promise<Verdict> {
  const deadline = performance.now() + timeoutMs;
  let last: Verdict = { ok: false, detail: 'no answer yet', canonical: false, peers: 0 };
  while (performance.now() < deadline) {
    try {
      last = (await sampleAnnounces(announce, [query])).verdicts[0]!;
      if (last.ok || !last.detail.startsWith('failure reason')) return last;
    } catch (err) {
      last = { ok: false, detail: (err as Error).message, canonical: false, peers: 0 };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}
