/**
 * aria2 downloads from our seeder. aria2 cannot be told to dial a peer, so both sides
 * meet through our tracker, named in the torrent as its announce URL: this proves our
 * tracker's answers and our peer wire are what another implementation expects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcesses, MIB, commandAvailable, freePort, makeTempDir, removeDir, sha256OfFile, writeArtifact, writeTorrent } from './helpers/swarm.js';

const available = commandAvailable('aria2c');
if (!available) console.warn('skipping the aria2 interop test: install the Debian package aria2 to run it');

const FILE_BYTES = 16 * MIB + 777;
const NAME = 'artifact.bin';

describe.skipIf(!available)('interop with aria2 (needs aria2)', () => {
  const procs = new CliProcesses();
  let aria2: ChildProcess | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-aria2-');
  });

  afterAll(async () => {
    if (aria2?.pid !== undefined && aria2.exitCode === null && aria2.signalCode === null) process.kill(aria2.pid, 'SIGKILL');
    await procs.stopAll();
    await removeDir(dir);
  });

  it('an aria2 leecher that knows only our tracker downloads a byte-identical file from our seeder', async () => {
    const content = join(dir, NAME);
    await writeArtifact(content, FILE_BYTES, 'interop-aria2');
    const { announce } = await procs.tracker();
    const torrent = join(dir, 'artifact.torrent');
    await writeTorrent(content, torrent, { pieceLength: 256 * 1024, announce: [announce] });
    await procs.seeder(torrent, content);

    const out = join(dir, 'aria2');
    await mkdir(out);
    const port = await freePort('127.0.0.1');
    aria2 = spawn(
      'aria2c',
      [
        '--no-conf',
        `--dir=${out}`,
        '--interface=127.0.0.1',
        `--listen-port=${port}`,
        '--bt-external-ip=127.0.0.1',
        '--enable-dht=false',
        '--enable-dht6=false',
        '--bt-enable-lpd=false',
        '--enable-peer-exchange=false',
        '--seed-time=0',
        '--file-allocation=none',
        '--summary-interval=0',
        '--console-log-level=warn',
        torrent,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    aria2.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    aria2.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const child = aria2;
    const code = await new Promise<number | null | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 40_000);
      child.once('exit', (c) => (clearTimeout(timer), resolve(c)));
    });
    expect(code, output).toBe(0);
    expect(await sha256OfFile(join(out, NAME))).toBe(await sha256OfFile(content));
  });
});
