import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeStrict, type BencodeDict } from '../../bencode/src/index.js';
import { HashPool } from '../../hashing/src/index.js';
import { choosePieceLength, createTorrent, CreateTorrentError, parseTorrent, pieceHash, pieceSize, type Metainfo } from '../src/index.js';
import { pseudoRandomBytes, sha1 } from './fixtures.js';

let dir: string;
let pool: HashPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metainfo-create-'));
  pool = new HashPool(2);
});

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every piece hash of `m` equals the SHA-1 of the same bytes taken straight from `content`. */
function expectPiecesOf(m: Metainfo, content: Buffer): void {
  expect(m.length).toBe(content.length);
  expect(m.pieceCount).toBe(Math.ceil(content.length / m.pieceLength));
  for (let i = 0; i < m.pieceCount; i++) {
    const start = i * m.pieceLength;
    expect(pieceSize(m, i)).toBe(Math.min(m.pieceLength, content.length - start));
    expect(pieceHash(m, i).equals(sha1(content.subarray(start, start + pieceSize(m, i)))), `piece ${i}`).toBe(true);
  }
}

async function makeTree(root: string, files: Record<string, Buffer>): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    const full = join(root, rel);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, data);
  }
}

describe('createTorrent of a single file', () => {
  it('hashes every piece, the last one short, and parses back to the same metainfo', async () => {
    const content = pseudoRandomBytes(5 * 16_384 + 1234, 1);
    const file = join(dir, 'app.bin');
    await writeFile(file, content);
    const progress: number[] = [];
    const { torrent, metainfo } = await createTorrent(file, {
      pieceLength: 16_384,
      announce: ['http://a.test/announce', 'http://b.test/announce'],
      private: true,
      urlList: ['http://seed.test/files/'],
      comment: 'build 42',
      creationDate: 1_700_000_000,
      hashPool: pool,
      onProgress: (done, total) => {
        expect(total).toBe(content.length);
        progress.push(done);
      },
    });
    expect(metainfo).toEqual(parseTorrent(torrent));
    expect(metainfo.singleFile).toBe(true);
    expect(metainfo.name).toBe('app.bin');
    expect(metainfo.files).toEqual([{ path: ['app.bin'], length: content.length, offset: 0 }]);
    expect(metainfo.private).toBe(true);
    expect(metainfo.announce).toBe('http://a.test/announce');
    expect(metainfo.announceList).toEqual([['http://a.test/announce'], ['http://b.test/announce']]);
    expect(metainfo.urlList).toEqual(['http://seed.test/files/']);
    expect(metainfo.comment).toBe('build 42');
    expect(metainfo.createdBy).toMatch(/^swarmship\/\d+\.\d+\.\d+/);
    expect(metainfo.creationDate).toBe(1_700_000_000);
    expectPiecesOf(metainfo, content);
    expect(progress[progress.length - 1]).toBe(content.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('writes only what was asked for: no announce, no private flag, no date', async () => {
    const file = join(dir, 'plain.bin');
    await writeFile(file, pseudoRandomBytes(1000, 2));
    const { torrent } = await createTorrent(file, { creationDate: false, hashPool: pool });
    const top = decodeStrict(torrent) as BencodeDict;
    expect(Object.keys(top)).toEqual(['created by', 'info']);
    expect(Object.keys(top['info'] as BencodeDict)).toEqual(['length', 'name', 'piece length', 'pieces']);
  });

  it('makes and closes its own hash pool when given none', async () => {
    const file = join(dir, 'own-pool.bin');
    const content = pseudoRandomBytes(100_000, 3);
    await writeFile(file, content);
    const { metainfo } = await createTorrent(file, { pieceLength: 32_768 });
    expectPiecesOf(metainfo, content);
  });

  it('goes round the buffer ring several times on a large file', async () => {
    const content = pseudoRandomBytes(80 * 1024 * 1024 + 7, 4);
    const file = join(dir, 'large.bin');
    await writeFile(file, content);
    const { metainfo } = await createTorrent(file, { pieceLength: 1024 * 1024, hashPool: pool });
    expectPiecesOf(metainfo, content);
    await rm(file);
  });
});

describe('createTorrent of a directory', () => {
  const files: Record<string, Buffer> = {
    'b/deeper/x.bin': pseudoRandomBytes(70_001, 10),
    'a-c': pseudoRandomBytes(16_384, 11),
    'a/b': pseudoRandomBytes(3, 12),
    a0: pseudoRandomBytes(40_000, 13),
    'empty.txt': Buffer.alloc(0),
    '.hidden': pseudoRandomBytes(5, 14),
    'Z-upper': pseudoRandomBytes(100, 15),
  };
  // strcmp order of the '/'-joined paths, the order mktorrent writes.
  const order = ['.hidden', 'Z-upper', 'a-c', 'a/b', 'a0', 'b/deeper/x.bin', 'empty.txt'];

  it('lists files in byte order, keeps empty files, drops empty directories, and hashes across file boundaries', async () => {
    const root = join(dir, 'release');
    await makeTree(root, files);
    await mkdir(join(root, 'empty-dir', 'nested'), { recursive: true });
    const { torrent, metainfo } = await createTorrent(root, { pieceLength: 16_384, hashPool: pool });
    expect(metainfo).toEqual(parseTorrent(torrent));
    expect(metainfo.singleFile).toBe(false);
    expect(metainfo.name).toBe('release');
    expect(metainfo.files.map((f) => f.path.join('/'))).toEqual(order);
    let offset = 0;
    for (const f of metainfo.files) {
      expect(f.offset).toBe(offset);
      expect(f.length).toBe(files[f.path.join('/')]!.length);
      offset += f.length;
    }
    expectPiecesOf(metainfo, Buffer.concat(order.map((p) => files[p]!)));
  });

  it('reads many files spread over many ring slots at once, in the right places', async () => {
    const root = join(dir, 'many');
    const tree: Record<string, Buffer> = {};
    for (let i = 0; i < 300; i++) tree[`d${i % 7}/f${String(i).padStart(3, '0')}`] = pseudoRandomBytes((i * 7919) % 150_001, 1000 + i);
    await makeTree(root, tree);
    const { metainfo } = await createTorrent(root, { pieceLength: 16_384, hashPool: pool });
    const paths = metainfo.files.map((f) => f.path.join('/'));
    expect(paths).toEqual(Object.keys(tree).sort());
    expect(metainfo.length).toBeGreaterThan(16 * 1024 * 1024);
    expectPiecesOf(metainfo, Buffer.concat(paths.map((p) => tree[p]!)));
  });

  it('follows symlinks to files and directories, as mktorrent does', async () => {
    const root = join(dir, 'with-links');
    await makeTree(root, { 'real/data.bin': pseudoRandomBytes(20_000, 20) });
    await symlink('real/data.bin', join(root, 'link.bin'));
    await symlink('real', join(root, 'linked-dir'));
    const { metainfo } = await createTorrent(root, { pieceLength: 16_384, hashPool: pool });
    expect(metainfo.files.map((f) => f.path.join('/'))).toEqual(['link.bin', 'linked-dir/data.bin', 'real/data.bin']);
    expect(metainfo.length).toBe(60_000);
  });

  it('refuses a symlink that loops back up', async () => {
    const root = join(dir, 'loop');
    await makeTree(root, { 'sub/f': Buffer.from('x') });
    await symlink('..', join(root, 'sub', 'up'));
    await expect(createTorrent(root, { hashPool: pool })).rejects.toMatchObject({ code: 'symlink-loop' });
  });
});

describe('createTorrent refuses', () => {
  it('a piece length that is not a power of two of at least 16 KiB', async () => {
    for (const pieceLength of [0, 1000, 8192, 3 * 16_384, 2 ** 30]) {
      await expect(createTorrent(dir, { pieceLength })).rejects.toMatchObject({ name: 'CreateTorrentError', code: 'bad-option' });
    }
  });

  it('a path that does not exist, naming it', async () => {
    const missing = join(dir, 'nope');
    const err = await createTorrent(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CreateTorrentError);
    expect(err).toMatchObject({ code: 'unreadable', path: missing });
    expect((err as Error).message).toContain('ENOENT');
  });

  it('a dangling symlink inside the directory', async () => {
    const root = join(dir, 'dangling');
    await makeTree(root, { f: Buffer.from('x') });
    await symlink('gone', join(root, 'broken'));
    await expect(createTorrent(root, { hashPool: pool })).rejects.toMatchObject({ code: 'unreadable' });
  });

  it('a directory with nothing but empty files', async () => {
    const root = join(dir, 'hollow');
    await makeTree(root, { 'a/empty': Buffer.alloc(0) });
    await expect(createTorrent(root, { hashPool: pool })).rejects.toMatchObject({ code: 'no-data' });
  });

  it('a file name the parser would refuse', async () => {
    const root = join(dir, 'backslash');
    await makeTree(root, { 'a\\b': Buffer.from('x') });
    await expect(createTorrent(root, { hashPool: pool })).rejects.toMatchObject({ code: 'unsafe-name' });
  });

  it('to go on once aborted', async () => {
    const file = join(dir, 'abort.bin');
    await writeFile(file, pseudoRandomBytes(100_000, 5));
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(createTorrent(file, { hashPool: pool, signal: controller.signal })).rejects.toThrow('stop');
  });
});

describe('choosePieceLength', () => {
  it('follows the documented rule', () => {
    const KiB = 1024;
    const MiB = 1024 * KiB;
    expect(choosePieceLength(0)).toBe(256 * KiB);
    expect(choosePieceLength(10 * MiB)).toBe(256 * KiB);
    expect(choosePieceLength(250 * MiB)).toBe(256 * KiB);
    expect(choosePieceLength(256 * MiB)).toBe(512 * KiB);
    expect(choosePieceLength(512 * MiB)).toBe(512 * KiB);
    expect(choosePieceLength(1000 * MiB)).toBe(512 * KiB);
    expect(choosePieceLength(1001 * MiB)).toBe(1 * MiB);
    expect(choosePieceLength(1024 * MiB)).toBe(1 * MiB);
    expect(choosePieceLength(4096 * MiB)).toBe(4 * MiB);
    expect(choosePieceLength(10 * 1024 * MiB)).toBe(8 * MiB);
    expect(choosePieceLength(1024 * 1024 * MiB)).toBe(16 * MiB);
  });

  it('gives 500–2000 pieces wherever the clamps allow (at most 1000 of 512 KiB or less), and a power of two always', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (total) => {
        const p = choosePieceLength(total);
        expect(p & (p - 1)).toBe(0);
        expect(p).toBeGreaterThanOrEqual(256 * 1024);
        expect(p).toBeLessThanOrEqual(16 * 1024 * 1024);
        const pieces = total / p;
        if (p > 256 * 1024) expect(pieces).toBeGreaterThan(p <= 512 * 1024 ? 500 : 1000);
        if (p < 16 * 1024 * 1024) expect(pieces).toBeLessThanOrEqual(p <= 256 * 1024 ? 1000 : 2000);
      }),
    );
  });
});

describe('createTorrent with piece SHA-256s', () => {
  it("puts each piece's SHA-256 in the info dictionary, read back by the parser; a list of the wrong length is refused", async () => {
    const content = pseudoRandomBytes(3 * 16_384 + 77, 9);
    const file = join(dir, 'sha256.bin');
    await writeFile(file, content);
    const { torrent, metainfo } = await createTorrent(file, { pieceLength: 16_384, pieceSha256: true, hashPool: pool, creationDate: false });
    expectPiecesOf(metainfo, content);
    expect(metainfo.pieceSha256!.length).toBe(4 * 32);
    for (let i = 0; i < 4; i++) {
      const bytes = content.subarray(i * 16_384, (i + 1) * 16_384);
      expect(metainfo.pieceSha256!.subarray(i * 32, i * 32 + 32).equals(createHash('sha256').update(bytes).digest()), `piece ${i}`).toBe(true);
    }
    const info = (decodeStrict(torrent) as BencodeDict)['info'] as BencodeDict;
    expect(Buffer.isBuffer(info['pieces sha256'])).toBe(true);
    // Without the option the key is absent, and so is the field.
    expect((await createTorrent(file, { pieceLength: 16_384, hashPool: pool })).metainfo.pieceSha256).toBeUndefined();
    // One digest short.
    const cut = Buffer.from(torrent.toString('latin1').replace('13:pieces sha256128:', '13:pieces sha25696:').replace(/(13:pieces sha25696:)([\s\S]{96})[\s\S]{32}/, '$1$2'), 'latin1');
    expect(() => parseTorrent(cut)).toThrow(/pieces sha256/);
  });
});

describe('createTorrent with the digests already made', () => {
  it('makes the same torrent as hashing the file, without reading it; digests that do not fit are refused', async () => {
    const content = pseudoRandomBytes(3 * 16_384 + 77, 10);
    const file = join(dir, 'given.bin');
    await writeFile(file, content);
    const opts = { pieceLength: 16_384, pieceSha256: true, hashPool: pool, creationDate: false as const, source: 'swarmship:a@1' };
    const hashed = await createTorrent(file, opts);
    const pieces = { sha1: Buffer.from(hashed.metainfo.pieceHashes), sha256: Buffer.from(hashed.metainfo.pieceSha256!) };
    // Other bytes at the same size: digests given are used as they are, not checked against the file.
    await writeFile(file, pseudoRandomBytes(content.length, 11));
    const given = await createTorrent(file, { ...opts, pieces });
    expect(given.torrent.equals(hashed.torrent)).toBe(true);

    await expect(createTorrent(file, { ...opts, pieces: { sha1: pieces.sha1.subarray(20) } })).rejects.toThrow('3 SHA-1 digests given for 4 pieces');
    await expect(createTorrent(file, { ...opts, pieces: { sha1: pieces.sha1 } })).rejects.toThrow('SHA-256 digests missing');
    await expect(createTorrent(file, { pieceSha256: true, pieces })).rejects.toThrow('without their piece length');
    await expect(createTorrent(dir, { ...opts, pieces })).rejects.toThrow(CreateTorrentError);
  });
});
