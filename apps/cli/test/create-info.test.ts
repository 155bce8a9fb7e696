import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../src/cli.js';
import type { CommandIo } from '../src/command.js';
import { parseByteSize } from '../src/byte-size.js';
import { encode } from '../../../libs/bencode/src/index.js';
import { parseMagnet, parseTorrent } from '../../../libs/metainfo/src/index.js';

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function run(args: string[], opts: { interrupted?: Promise<void> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CommandIo = { stdout, stderr, env: {}, interrupted: opts.interrupted ?? new Promise<void>(() => undefined) };
  const code = await runCli(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-create-info-'));
  await mkdir(join(dir, 'release', 'bin'), { recursive: true });
  await writeFile(join(dir, 'release', 'bin', 'tool'), Buffer.alloc(100_000, 1));
  await writeFile(join(dir, 'release', 'README'), 'hello\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('swarmship create', () => {
  it('writes the torrent and prints its info hash, piece count and magnet', async () => {
    const out = join(dir, 'release.torrent');
    const r = await run(['create', join(dir, 'release'), '-o', out, '--piece-length', '16K', '--tracker', 'http://a.test/announce', '--tracker', 'udp://b.test:6969', '--private', '--web-seed', 'https://cdn.test/r/', '--comment', 'build 7']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const m = parseTorrent(await readFile(out));
    expect(m.pieceLength).toBe(16_384);
    expect(m.pieceCount).toBe(Math.ceil(100_006 / 16_384));
    expect(m.private).toBe(true);
    expect(m.announceList).toEqual([['http://a.test/announce'], ['udp://b.test:6969']]);
    expect(m.urlList).toEqual(['https://cdn.test/r/']);
    expect(m.comment).toBe('build 7');
    expect(r.stdout).toContain(m.infoHashHex);
    expect(r.stdout).toMatch(/pieces\s+7 × 16\.0 KiB/);
    const magnet = /magnet:\?\S+/.exec(r.stdout)![0];
    expect(parseMagnet(magnet).infoHash.equals(m.infoHash)).toBe(true);
    expect(r.stderr).toContain('hashing');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('prints JSON lines with --json, ending in the result', async () => {
    const out = join(dir, 'json.torrent');
    const r = await run(['create', join(dir, 'release', 'README'), '-o', out, '--json']);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = events[events.length - 1]!;
    expect(done).toMatchObject({ event: 'done', name: 'README', length: 6, pieceCount: 1, pieceLength: 256 * 1024, files: 1 });
    expect(done['infoHash']).toBe(parseTorrent(await readFile(out)).infoHashHex);
    expect(String(done['magnet'])).toMatch(/^magnet:\?xt=urn:btih:/);
  });

  it('refuses an unreadable input with one line and exit code 2, writing nothing', async () => {
    const out = join(dir, 'missing.torrent');
    const r = await run(['create', join(dir, 'no-such-thing'), '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^swarmship create: cannot read .*no-such-thing: ENOENT\n$/);
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses an unwritable output before hashing', async () => {
    // A path below a regular file cannot be written even by root, who ignores modes.
    const plain = join(dir, 'plain-file');
    await writeFile(plain, 'x');
    const r = await run(['create', join(dir, 'release'), '-o', join(plain, 'x.torrent')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^swarmship create: cannot write .*x\.torrent: ENOTDIR/);
    expect(r.stderr).not.toContain('hashing');
  });

  it('refuses an output in a directory that does not exist, before hashing', async () => {
    const r = await run(['create', join(dir, 'release'), '-o', join(dir, 'no-dir', 'x.torrent')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^swarmship create: cannot write .*x\.torrent: ENOENT/);
    expect(r.stderr).not.toContain('hashing');
  });

  it('refuses an output that is a directory', async () => {
    const r = await run(['create', join(dir, 'release'), '-o', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot write .*: it is a directory/);
  });

  it.each([
    [['--piece-length', '1000'], /--piece-length 1000: must be a power of two from 16\.0 KiB to 512\.0 MiB; did you mean 1\.0KiB\?|--piece-length 1000: must be a power of two/],
    [['--piece-length', '3M'], /--piece-length 3M: must be a power of two/],
    [['--piece-length', 'big'], /--piece-length big: expected a size in bytes/],
    [['--tracker', 'not a url'], /--tracker not a url: not a URL/],
    [['--web-seed', 'ftp://x/'], /--web-seed ftp:\/\/x\/: expected an http, https or udp URL/],
  ])('refuses bad options %j with a usage error', async (extra, message) => {
    const out = join(dir, 'bad-option.torrent');
    const r = await run(['create', join(dir, 'release'), '-o', out, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('insists on -o', async () => {
    const r = await run(['create', join(dir, 'release')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing -o <file\.torrent>/);
  });

  it('stops when interrupted, writing nothing', async () => {
    const out = join(dir, 'interrupted.torrent');
    const r = await run(['create', join(dir, 'release'), '-o', out], { interrupted: Promise.resolve() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/interrupted; nothing was written/);
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('has a --help that starts with the usage line and shows an example', async () => {
    const r = await run(['create', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^Usage: swarmship create <path> -o <file\.torrent>/);
    for (const option of ['--output', '--piece-length', '--tracker', '--private', '--web-seed', '--comment', '--json', 'Example:']) expect(r.stdout).toContain(option);
  });
});

describe('swarmship info', () => {
  let torrent: string;

  beforeAll(async () => {
    torrent = join(dir, 'for-info.torrent');
    const r = await run(['create', join(dir, 'release'), '-o', torrent, '--piece-length', '32KiB', '--tracker', 'http://a.test/announce', '--web-seed', 'https://cdn.test/']);
    expect(r.code).toBe(0);
  });

  it('describes the torrent', async () => {
    const m = parseTorrent(await readFile(torrent));
    const r = await run(['info', torrent]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^name\s+release$/m);
    expect(r.stdout).toMatch(new RegExp(`^info hash\\s+${m.infoHashHex}$`, 'm'));
    expect(r.stdout).toMatch(/^size\s+97\.7 KiB \(100006 bytes\) in 2 files$/m);
    expect(r.stdout).toMatch(/^pieces\s+4 × 32\.0 KiB$/m);
    expect(r.stdout).toMatch(/^private\s+no$/m);
    expect(r.stdout).toMatch(/^trackers\s+http:\/\/a\.test\/announce$/m);
    expect(r.stdout).toMatch(/^web seeds\s+https:\/\/cdn\.test\/$/m);
    expect(r.stdout).toMatch(/^\s+6 B\s+README$/m);
    expect(r.stdout).toMatch(/^\s+97\.7 KiB\s+bin\/tool$/m);
    expect(r.stdout).toMatch(/^magnet\s+magnet:\?xt=urn:btih:/m);
  });

  it('prints one JSON object with --json', async () => {
    const m = parseTorrent(await readFile(torrent));
    const r = await run(['info', torrent, '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({
      name: 'release',
      infoHash: m.infoHashHex,
      length: 100_006,
      pieceLength: 32_768,
      pieceCount: 4,
      private: false,
      announce: 'http://a.test/announce',
      urlList: ['https://cdn.test/'],
      files: [
        { path: 'README', length: 6, offset: 0 },
        { path: 'bin/tool', length: 100_000, offset: 6 },
      ],
    });
  });

  it('names the fault of a malformed torrent in one line, exit code 2', async () => {
    const bad = join(dir, 'bad.torrent');
    await writeFile(bad, encode({ info: { length: 100, name: 'x', 'piece length': 16_384, pieces: Buffer.alloc(61) } }));
    const r = await run(['info', bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`swarmship info: ${bad}: invalid torrent: info.pieces: length 61 is not a multiple of 20\n`);
  });

  it('names a file that is not there', async () => {
    const r = await run(['info', join(dir, 'nope.torrent')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^swarmship info: cannot read .*nope\.torrent: ENOENT\n$/);
  });

  it('has a --help that starts with the usage line and shows an example', async () => {
    const r = await run(['info', '-h']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('Usage: swarmship info <file.torrent> [--json]');
    expect(r.stdout).toContain('--json');
    expect(r.stdout).toContain('Example:');
  });
});

describe('parseByteSize', () => {
  it.each([
    ['262144', 262_144],
    ['16K', 16_384],
    ['16k', 16_384],
    ['256KiB', 262_144],
    ['1MiB', 1_048_576],
    ['4M', 4_194_304],
    ['4MB', 4_194_304],
    ['1G', 1_073_741_824],
    ['512 b', 512],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseByteSize(text, '--size')).toBe(bytes);
  });

  it.each(['', 'M', '1.5M', '4T', '4ib', '-1', '1MiBs'])('refuses %j', (text) => {
    expect(() => parseByteSize(text, '--size')).toThrow(/--size .*: expected a size/);
  });
});
