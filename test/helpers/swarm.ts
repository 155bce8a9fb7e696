/**
 * What the cross-process swarm tests share: reproducible artifacts made at test time,
 * torrents made with our own metainfo code, and `swarmship tracker/seed/download`
 * processes that are always stopped by PID, whatever the test's outcome.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTorrent, type Metainfo } from '../../libs/metainfo/src/index.js';
import { startCli, type RunningCli } from './cli.js';

export const MIB = 1024 * 1024;

/**
 * Writes `length` pseudo-random bytes that depend only on `seed`: an AES-CTR keystream
 * is as good as random to BitTorrent (no piece repeats) and is produced at disk speed,
 * so nothing has to be committed and every run sees the same bytes.
 */
export async function writeArtifact(path: string, length: number, seed: string): Promise<void> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const keystream = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(4 * MIB);
  const file = await open(path, 'w');
  try {
    for (let written = 0; written < length; ) {
      const n = Math.min(zeros.length, length - written);
      const chunk = keystream.update(zeros.subarray(0, n));
      await file.write(chunk, 0, chunk.length, written);
      written += n;
    }
  } finally {
    await file.close();
  }
}

export function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** A .torrent of `content` made by our metainfo lib, reproducible (no creation date). */
export async function writeTorrent(content: string, out: string, opts: { pieceLength: number; announce?: string[] }): Promise<Metainfo> {
  const { torrent, metainfo } = await createTorrent(content, { pieceLength: opts.pieceLength, announce: opts.announce ?? [], creationDate: false });
  await writeFile(out, torrent);
  return metainfo;
}

export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/**
 * A TCP port free on `host` a moment ago, for a process that must be told its port
 * before it starts (a peer that is dialled before it exists).
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when `command` can be started at all (the package that provides it is installed). */
export function commandAvailable(command: string, args: string[] = ['--version']): boolean {
  return spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 }).error === undefined;
}

/** Every `swarmship` process a test file starts, so afterAll can stop them all by PID. */
export class CliProcesses {
  private readonly running: RunningCli[] = [];

  start(args: string[]): RunningCli {
    const cli = startCli(args);
    this.running.push(cli);
    return cli;
  }

  async tracker(): Promise<{ cli: RunningCli; announce: string }> {
    const cli = this.start(['tracker', '--host', '127.0.0.1', '--port', '0', '--json']);
    const e = await cli.waitFor((ev) => typeof ev.announce === 'string', 15_000);
    return { cli, announce: e.announce as string };
  }

  /** Starts `swarmship seed` and resolves once it has checked its data and listens. */
  async seeder(torrent: string, content: string, extra: string[] = [], host = '127.0.0.1'): Promise<{ cli: RunningCli; port: number }> {
    const hasPort = extra.includes('--port');
    const cli = this.start(['seed', torrent, content, '--host', host, ...(hasPort ? [] : ['--port', '0']), '--json', ...extra]);
    const e = await cli.waitFor((ev) => ev.event === 'seeding', 30_000);
    return { cli, port: e.port as number };
  }

  downloader(torrent: string, dir: string, extra: string[] = [], host = '127.0.0.1'): RunningCli {
    return this.start(['download', torrent, '--dir', dir, '--host', host, '--json', ...extra]);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.running.map((cli) => cli.stop()));
    this.running.length = 0;
  }
}

/**
 * Waits for a download to exit within `timeoutMs` and returns its exit code and final
 * `done` event; on a timeout it stops the process and the error carries its stderr.
 */
export async function downloadResult(cli: RunningCli, timeoutMs: number): Promise<{ code: number | null; done: Record<string, unknown> | undefined }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const code = await Promise.race([cli.exited, timeout]);
  clearTimeout(timer);
  if (code === 'timeout') {
    const last = cli.events.filter((e) => e.event === 'progress').at(-1);
    await cli.stop();
    throw new Error(`download did not finish within ${timeoutMs} ms; last progress ${JSON.stringify(last)}\nstderr:\n${cli.stderr()}`);
  }
  const done = cli.events.filter((e) => e.event === 'done' && e.label === 'download').at(-1);
  return { code, done };
}
