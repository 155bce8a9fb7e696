import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTorrent } from '../../../libs/metainfo/src/index.js';
import { startCli, type RunningCli } from '../../../test/helpers/cli.js';

let dir: string;
let artifact: string;
let torrentPath: string;
let data: Buffer;
const running: RunningCli[] = [];

function cli(args: string[]): RunningCli {
  const p = startCli(args);
  running.push(p);
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmship-cli-'));
  data = randomBytes(12 * 1024 * 1024 + 4321);
  artifact = join(dir, 'build.bin');
  await writeFile(artifact, data);
  const { torrent } = await createTorrent(artifact, { pieceLength: 256 * 1024 });
  torrentPath = join(dir, 'build.torrent');
  await writeFile(torrentPath, torrent);
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await rm(dir, { recursive: true, force: true });
});

async function seeder(extra: string[] = []): Promise<{ proc: RunningCli; port: number }> {
  const proc = cli(['seed', torrentPath, artifact, '--host', '127.0.0.1', '--port', '0', '--json', ...extra]);
  const seeding = await proc.waitFor((e) => e.event === 'seeding');
  return { proc, port: Number(seeding.port) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('swarmship seed and download, as a user runs them', () => {
  it('downloads a verified copy and exits 0', async () => {
    const { port } = await seeder();
    const dest = join(dir, 'copy-1');
    const dl = cli(['download', torrentPath, '--dir', dest, '--peer', `127.0.0.1:${port}`, '--json']);
    expect(await dl.exited).toBe(0);
    const done = dl.events.find((e) => e.event === 'done')!;
    expect(done).toMatchObject({ outcome: 'complete', verifiedPieces: done.pieceCount, hashFailures: 0 });
    expect(sha(await readFile(join(dest, 'build.bin')))).toBe(sha(data));
  });

  it('resumes an interrupted download, fetching only what is missing', async () => {
    const { port } = await seeder();
    const dest = join(dir, 'copy-2');
    // Slow enough to be interrupted half-way.
    const first = cli(['download', torrentPath, '--dir', dest, '--peer', `127.0.0.1:${port}`, '--download-limit', '4MB', '--json']);
    await first.waitFor((e) => e.event === 'progress' && Number(e.done) > 3 * 1024 * 1024, 20_000);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(1);
    expect(first.stderr()).toMatch(/interrupted: \d+ of \d+ pieces verified/);
    const kept = Number(first.events.find((e) => e.event === 'done')!.verifiedPieces);
    expect(kept).toBeGreaterThan(0);

    const second = cli(['download', torrentPath, '--dir', dest, '--peer', `127.0.0.1:${port}`, '--json']);
    expect(await second.exited).toBe(0);
    const done = second.events.find((e) => e.event === 'done')!;
    expect(Number(done.downloadedBytes)).toBeLessThanOrEqual(data.length - kept * 256 * 1024 + 256 * 1024);
    expect(sha(await readFile(join(dest, 'build.bin')))).toBe(sha(data));
  });

  it('respects --download-limit', async () => {
    const { port } = await seeder();
    const dest = join(dir, 'copy-3');
    const started = performance.now();
    const dl = cli(['download', torrentPath, '--dir', dest, '--peer', `127.0.0.1:${port}`, '--download-limit', '8MB', '--json']);
    expect(await dl.exited).toBe(0);
    // A lower bound only: the limiter may allow a 1 MiB burst, never more.
    const seconds = (performance.now() - started) / 1000;
    expect(seconds).toBeGreaterThan((data.length - 1024 * 1024) / 8e6 - 0.2);
  });

  it('refuses a malformed torrent with one line, exit 2, nothing written', async () => {
    const bad = join(dir, 'bad.torrent');
    const good = await readFile(torrentPath);
    await writeFile(bad, good.subarray(0, good.length - 30));
    const dest = join(dir, 'never');
    const dl = cli(['download', bad, '--dir', dest]);
    expect(await dl.exited).toBe(2);
    expect(dl.stderr().trim().split('\n')).toHaveLength(1);
    expect(dl.stderr()).toMatch(/bad\.torrent/);
    await expect(stat(dest)).rejects.toThrow();
  });

  it('refuses a destination it cannot write before downloading anything', async () => {
    const notADir = join(dir, 'a-file');
    await writeFile(notADir, 'x');
    const dl = cli(['download', torrentPath, '--dir', join(notADir, 'sub')]);
    expect(await dl.exited).toBe(2);
    expect(dl.stderr()).toMatch(/cannot write to .*a-file\/sub/);
  });

  it('refuses to seed data that does not match the torrent', async () => {
    const wrong = join(dir, 'wrong.bin');
    const altered = Buffer.from(data);
    altered[5_000_000]! ^= 0xff;
    await writeFile(wrong, altered);
    const seed = cli(['seed', torrentPath, wrong, '--port', '0', '--host', '127.0.0.1']);
    expect(await seed.exited).toBe(2);
    expect(seed.stderr()).toMatch(/does not match the torrent: 1 of \d+ pieces fail/);
  });

  it('explains itself with --help and rejects unknown options', async () => {
    const help = cli(['download', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toMatch(/^Usage: swarmship download/);
    const bad = cli(['download', torrentPath, '--dir', dir, '--bogus']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toMatch(/bogus/);
  });
});
