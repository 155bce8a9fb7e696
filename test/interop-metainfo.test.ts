/**
 * Our torrents have the same info hash as mktorrent's and libtorrent's for the same files
 * and piece length, and each side reads the other's torrents. Only the info dictionary
 * is compared: both tools add their own 'created by' and 'creation date' outside it.
 *
 * libtorrent is run in v1-only mode, which adds no padding files. It keeps the files in
 * the order the directory lists them, which depends on the file system, so for the
 * directory case the script gives it the files in byte order of their paths, the order
 * mktorrent and we use (and the order libtorrent itself uses for v2 torrents).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../libs/hashing/src/index.js';
import { createTorrent, parseTorrent } from '../libs/metainfo/src/index.js';

const PYTHON = '/usr/bin/python3';

const mktorrentAvailable = spawnSync('mktorrent', ['-h'], { stdio: 'ignore' }).error === undefined;
const libtorrentAvailable = spawnSync(PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0;
if (!mktorrentAvailable) console.warn('skipping the mktorrent interop tests: install the Debian package mktorrent to run them');
if (!libtorrentAvailable) console.warn('skipping the libtorrent metainfo interop tests: install the Debian package python3-libtorrent to run them');

const TRACKER = 'http://tracker.test/announce';

const LIBTORRENT_SCRIPT = `
import os, sys
import libtorrent as lt

target, out, piece_length, private, order = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1', sys.argv[5]
fs = lt.file_storage()
lt.add_files(fs, target)
if order == 'bytes':
    entries = sorted(((fs.file_path(i), fs.file_size(i)) for i in range(fs.num_files())), key=lambda e: e[0].encode('utf-8'))
    fs = lt.file_storage()
    for path, size in entries:
        fs.add_file(path, size)
ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
ct.add_tracker(${JSON.stringify(TRACKER)})
ct.set_priv(private)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(target)))
with open(out, 'wb') as f:
    f.write(lt.bencode(ct.generate()))
print(str(lt.torrent_info(out).info_hash()))
`;

const READ_SCRIPT = `
import sys
import libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
print(str(ti.info_hash()), ti.num_files(), ti.num_pieces(), ti.total_size())
`;

/** Deterministic pseudo-random bytes (xorshift32). */
function bytesOf(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Names that sort differently as whole paths than element by element ('a-c' < 'a/b' <
 * 'a0'), upper before lower case, a multi-byte UTF-8 name after 'z', an empty file, a
 * hidden file, an empty directory, and sizes that are not multiples of any piece length.
 */
const TREE: Record<string, number> = {
  'a-c': 40_001,
  'a/b': 3,
  'a/deeper/nested.bin': 70_000,
  a0: 16_384,
  B: 1,
  'z.txt': 200,
  'ésumé.txt': 12_345,
  'empty.txt': 0,
  '.hidden': 5,
};

let dir: string;
let pool: HashPool;
let single: string;
let tree: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmship-metainfo-interop-'));
  pool = new HashPool(2);
  single = join(dir, 'artifact.bin');
  await writeFile(single, bytesOf(1024 * 1024 + 12_345, 7));
  tree = join(dir, 'release-1.0');
  let seed = 100;
  for (const [rel, size] of Object.entries(TREE)) {
    await mkdir(dirname(join(tree, rel)), { recursive: true });
    await writeFile(join(tree, rel), bytesOf(size, seed++));
  }
  await mkdir(join(tree, 'empty-dir'));
  await writeFile(join(dir, 'make.py'), LIBTORRENT_SCRIPT);
  await writeFile(join(dir, 'read.py'), READ_SCRIPT);
});

afterAll(async () => {
  await pool?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.error ?? ''}`);
  return r.stdout;
}

async function ours(target: string, pieceLength: number, isPrivate: boolean) {
  return (await createTorrent(target, { pieceLength, announce: [TRACKER], private: isPrivate, hashPool: pool })).metainfo;
}

const cases = [
  { what: 'a single file', target: () => single },
  { what: 'a directory with nested files', target: () => tree },
];

describe.skipIf(!mktorrentAvailable)('the same info hash as mktorrent (Debian package mktorrent)', () => {
  describe.each(cases)('for $what', ({ target }) => {
    it.each([
      [15, false],
      [18, false],
      [16, true],
    ])('with 2^%d-byte pieces, private %s', async (log2, isPrivate) => {
      const out = join(dir, `mktorrent-${log2}-${isPrivate}-${Math.random().toString(36).slice(2)}.torrent`);
      run('mktorrent', ['-l', String(log2), '-a', TRACKER, ...(isPrivate ? ['-p'] : []), '-o', out, target()]);
      const theirs = parseTorrent(await readFile(out));
      const mine = await ours(target(), 2 ** log2, isPrivate);
      expect(mine.rawInfo.equals(theirs.rawInfo)).toBe(true);
      expect(mine.infoHashHex).toBe(theirs.infoHashHex);
      expect(theirs.private).toBe(isPrivate);
      expect(theirs.files.map((f) => f.path.join('/'))).toEqual(mine.files.map((f) => f.path.join('/')));
    });
  });

  it('lists the tree in the order mktorrent does', async () => {
    const mine = await ours(tree, 2 ** 15, false);
    expect(mine.files.map((f) => f.path.join('/'))).toEqual(['.hidden', 'B', 'a-c', 'a/b', 'a/deeper/nested.bin', 'a0', 'empty.txt', 'z.txt', 'ésumé.txt']);
  });
});

describe.skipIf(!libtorrentAvailable)('the same info hash as libtorrent (Debian package python3-libtorrent)', () => {
  describe.each(cases)('for $what', ({ target }) => {
    it.each([
      [16_384, false],
      [262_144, true],
    ])('with %d-byte pieces, private %s', async (pieceLength, isPrivate) => {
      const out = join(dir, `libtorrent-${pieceLength}-${isPrivate}-${Math.random().toString(36).slice(2)}.torrent`);
      const order = target() === tree ? 'bytes' : 'as-listed';
      const printed = run(PYTHON, [join(dir, 'make.py'), target(), out, String(pieceLength), isPrivate ? '1' : '0', order]).trim();
      const theirs = parseTorrent(await readFile(out));
      expect(theirs.infoHashHex).toBe(printed);
      expect(theirs.files.some((f) => f.pad)).toBe(false);
      const mine = await ours(target(), pieceLength, isPrivate);
      expect(mine.rawInfo.equals(theirs.rawInfo)).toBe(true);
      expect(mine.infoHashHex).toBe(theirs.infoHashHex);
    });
  });

  it('reads our torrents with the same info hash, file count, piece count and size', async () => {
    for (const target of [single, tree]) {
      const { torrent, metainfo } = await createTorrent(target, { pieceLength: 32_768, announce: [TRACKER, 'udp://backup.test:6969'], urlList: ['http://seed.test/'], comment: 'interop', hashPool: pool });
      const file = join(dir, `ours-${metainfo.name}.torrent`);
      await writeFile(file, torrent);
      const [hash, files, pieces, size] = run(PYTHON, [join(dir, 'read.py'), file]).trim().split(' ');
      expect({ hash, files: Number(files), pieces: Number(pieces), size: Number(size) }).toEqual({
        hash: metainfo.infoHashHex,
        files: metainfo.files.length,
        pieces: metainfo.pieceCount,
        size: metainfo.length,
      });
    }
  });
});
