/**
 * `npm run demo`: a swarm on this machine with nothing to configure. A tracker, one
 * seeder (super-seeding, as an origin would) and two leechers, each its own
 * `swarmship` process, move a generated artifact; their progress is drawn side by side
 * and every copy is checked against the original at the end.
 *
 * Options: --size BYTES (default 256 MiB), --leechers N (default 2), --keep-running
 * (keep seeding until Ctrl-C instead of exiting when every copy is verified).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTorrent } from '../libs/metainfo/src/create.js';
import { formatBytes } from '../apps/cli/src/progress.js';

const CLI = fileURLToPath(new URL('../apps/cli/src/main.js', import.meta.url));
const ROOT = resolve('.swarmship-demo');

interface Proc {
  name: string;
  child: ChildProcess;
  last: Record<string, unknown> | undefined;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
}

const procs: Proc[] = [];

function start(name: string, args: string[]): Proc {
  const child = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { name, child, last: undefined, events: [], exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const e = JSON.parse(line) as Record<string, unknown>;
      proc.events.push(e);
      if (e.event === 'progress' || e.event === 'done') proc.last = e;
    } catch {
      // Not JSON: ignore.
    }
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  void proc.exited.then((code) => {
    if (code !== 0 && code !== null && err) process.stderr.write(`${name} exited with ${code}: ${err.trim()}\n`);
  });
  procs.push(proc);
  return proc;
}

function waitEvent(p: Proc, pred: (e: Record<string, unknown>) => boolean, ms = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  return new Promise((res, rej) => {
    const poll = () => {
      const e = p.events.find(pred);
      if (e) return res(e);
      if (Date.now() > deadline || p.child.exitCode !== null) return rej(new Error(`${p.name} did not start`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

async function generate(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (let written = 0; written < size; written += chunk.length) {
    randomFillSync(chunk);
    const part = chunk.subarray(0, Math.min(chunk.length, size - written));
    if (!out.write(part)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function bar(fraction: number, width = 28): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

function render(size: number, tty: boolean, drawn: number): number {
  const lines = procs
    .filter((p) => p.name !== 'tracker')
    .map((p) => {
      const e = p.last ?? {};
      const done = Number(e.done ?? 0);
      const rate = Number(e.rateBytesPerSecond ?? 0);
      const peers = e.peers ?? 0;
      const phase = String(e.phase ?? e.outcome ?? 'starting');
      return `${p.name.padEnd(9)} ${bar(size ? done / size : 0)} ${(Math.min(1, done / size) * 100).toFixed(1).padStart(5)}%  ${formatBytes(rate).padStart(10)}/s  ${String(peers).padStart(2)} peers  ${phase}`;
    });
  if (tty && drawn > 0) process.stdout.write(`\x1b[${drawn}A`);
  process.stdout.write(lines.map((l) => (tty ? `${l}\x1b[K` : l)).join('\n') + '\n');
  return lines.length;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { size: { type: 'string' }, leechers: { type: 'string' }, 'keep-running': { type: 'boolean' } } });
  const size = values.size ? Number(values.size) : 256 * 1024 * 1024;
  const leecherCount = values.leechers ? Number(values.leechers) : 2;
  if (!(size > 0) || !(leecherCount >= 1)) throw new Error('--size must be a positive byte count and --leechers at least 1');

  await rm(ROOT, { recursive: true, force: true });
  const origin = join(ROOT, 'origin');
  await mkdir(origin, { recursive: true });
  const artifact = join(origin, 'release.bin');
  console.log(`swarmship demo: generating a ${formatBytes(size)} artifact in ${origin}`);
  await generate(artifact, size);

  const tracker = start('tracker', ['tracker', '--host', '127.0.0.1', '--port', '0']);
  const announce = String((await waitEvent(tracker, (e) => typeof e.announce === 'string')).announce);
  const torrentPath = join(ROOT, 'release.torrent');
  const t0 = performance.now();
  const { torrent, metainfo } = await createTorrent(artifact, { announce: [announce], private: true });
  await import('node:fs/promises').then((fs) => fs.writeFile(torrentPath, torrent));
  console.log(`torrent ${metainfo.infoHashHex}: ${metainfo.pieceCount} pieces of ${formatBytes(metainfo.pieceLength)}, hashed in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  console.log(`tracker ${announce}\n`);

  const seeder = start('origin', ['seed', torrentPath, artifact, '--host', '127.0.0.1', '--port', '0', '--super-seed', '--trust']);
  await waitEvent(seeder, (e) => e.event === 'seeding');
  const leechers = Array.from({ length: leecherCount }, (_, i) =>
    start(`node-${i + 1}`, ['download', torrentPath, '--dir', join(ROOT, `node-${i + 1}`), '--host', '127.0.0.1', '--seed-after']),
  );

  const tty = process.stdout.isTTY === true;
  let drawn = 0;
  const started = performance.now();
  const timer = setInterval(() => (drawn = tty ? render(size, true, drawn) : drawn), 200);
  const logTimer = tty ? undefined : setInterval(() => render(size, false, 0), 2000);
  const completions = leechers.map(async (p) => {
    await waitEvent(p, (e) => e.event === 'progress' && e.label === 'seeding', 600_000);
    return (performance.now() - started) / 1000;
  });
  const times = await Promise.all(completions);
  clearInterval(timer);
  if (logTimer) clearInterval(logTimer);
  render(size, tty, drawn);

  console.log('');
  const expected = await sha256(artifact);
  let allGood = true;
  for (const [i, p] of leechers.entries()) {
    const copy = join(ROOT, p.name, 'release.bin');
    const ok = (await sha256(copy)) === expected;
    allGood &&= ok;
    console.log(`${p.name}: ${copy}  ${ok ? 'identical to the origin (SHA-256)' : 'DIFFERS FROM THE ORIGIN'}  complete after ${times[i]!.toFixed(1)} s`);
  }
  if (!values['keep-running']) {
    // Stopped, the origin prints its final count; progress lines lag by up to a second.
    seeder.child.kill('SIGTERM');
    await seeder.exited;
  }
  const originSent = Number((seeder.events.findLast((e) => e.event === 'done') ?? seeder.last)?.uploadedBytes ?? NaN);
  // The origin's share of the traffic is the number super-seeding exists to keep low.
  if (Number.isFinite(originSent)) console.log(`origin sent ${(originSent / size).toFixed(2)} copies of the artifact; the nodes sent each other the rest`);
  if (values['keep-running']) {
    console.log('\nseeding on; Ctrl-C stops everything');
    await new Promise<void>((r) => process.once('SIGINT', () => r()));
  }
  return allGood ? 0 : 1;
}

async function stopAll(): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))]);
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: Error) => {
    console.error(`demo failed: ${err.message}`);
    await stopAll();
    process.exit(1);
  });
