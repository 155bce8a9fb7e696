import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashPool } from '../../hashing/src/hash-pool.js';
import { PieceReadCache } from '../src/read-cache.js';
import { FileStorage, placeFiles, type StoredFile } from '../src/storage.js';
import { cachedBytes, directIoWorksIn } from '../../../test/helpers/page-cache.js';

/** Writes every piece of `content` through the hash pool into `storage`, as a download does. */
async function writeAllPieces(pool: HashPool, storage: FileStorage, content: Buffer, pieceLength: number): Promise<void> {
  for (let offset = 0; offset < content.length; offset += pieceLength) {
    const length = Math.min(pieceLength, content.length - offset);
    const piece = Buffer.allocUnsafeSlow(pieceLength);
    content.copy(piece, 0, offset, offset + length);
    const expected = createHash('sha256').update(content.subarray(offset, offset + length)).digest();
    const result = await pool.verifyAndWrite(piece, length, expected, storage.segments(offset, length)!);
    expect(result.writeError).toBeUndefined();
    expect(result.ok).toBe(true);
  }
  await storage.sync();
}

/** Every piece of the torrent over `files`, as the uploader's read cache loads them for peers. */
async function readAllPieces(files: StoredFile[], length: number, pieceLength: number, directIo: boolean): Promise<Buffer> {
  const storage = await FileStorage.openForReading(files, { directIo });
  const size = (i: number) => Math.min(pieceLength, length - i * pieceLength);
  const cache = new PieceReadCache(storage, pieceLength, size, 4 * pieceLength);
  const out = Buffer.alloc(length);
  for (let i = 0; i * pieceLength < length; i++) (await cache.load(i)).copy(out, i * pieceLength);
  await storage.close();
  return out;
}

/** Files of `lengths` bytes laid end to end under `dir`, as a multi-file torrent places them. */
function multiFile(dir: string, lengths: number[]): { files: StoredFile[]; length: number } {
  let offset = 0;
  const files = placeFiles(dir, lengths.map((length, i) => {
    const f = { path: [`f${i}.bin`], length, offset };
    offset += length;
    return f;
  }));
  return { files, length: offset };
}

describe('direct I/O for downloaded pieces', () => {
  let dir: string;
  let pool: HashPool;
  let direct: boolean;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-direct-'));
    pool = new HashPool(2);
    direct = directIoWorksIn(dir);
    if (!direct) console.warn(`direct I/O cases check only the fallback: ${dir} has no O_DIRECT`);
  });
  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes pieces that straddle unaligned file boundaries byte for byte, short last piece included', async () => {
    const pieceLength = 64 * 1024;
    // Lengths chosen so files start mid-block and pieces cross files at odd offsets.
    const { files, length } = multiFile(join(dir, 'multi'), [5000, 300_001, 4096, 70_123, 1]);
    const content = randomBytes(length);
    const storage = await FileStorage.openForWriting(files, { directIo: true });
    // What the hash worker is handed: a direct descriptor for every segment, where the filesystem has one.
    expect(storage.segments(0, pieceLength)!.every((s) => (s.directFd !== undefined) === direct)).toBe(true);
    await writeAllPieces(pool, storage, content, pieceLength);
    await storage.close();
    for (const f of files) expect(readFileSync(f.path).equals(content.subarray(f.offset, f.offset + f.length))).toBe(true);
  });

  it('leaves the page cache without the blocks it wrote, where buffered writes fill it', async () => {
    if (!direct) return console.warn('skipped: no O_DIRECT in the temporary directory');
    const pieceLength = 256 * 1024;
    const content = randomBytes(16 * pieceLength);
    /** Bytes of the written file in the page cache, counted before reading it back. */
    const cachedAfterWriting = async (name: string, directIo: boolean) => {
      const files = placeFiles(join(dir, name), [{ path: [name], length: content.length, offset: 0 }], name);
      const storage = await FileStorage.openForWriting(files, { directIo });
      await writeAllPieces(pool, storage, content, pieceLength);
      await storage.close();
      const cached = cachedBytes(files[0]!.path);
      expect(readFileSync(files[0]!.path).equals(content)).toBe(true);
      return cached;
    };
    const buffered = await cachedAfterWriting('buffered.bin', false);
    if (buffered === undefined) return console.warn('skipped the page cache check: fincore (Debian package util-linux) is missing');
    expect(buffered).toBeGreaterThan(0);
    expect(await cachedAfterWriting('direct.bin', true)).toBe(0);
  });

  it('reads pieces for peers byte for byte across unaligned file boundaries, short last piece included', async () => {
    const pieceLength = 64 * 1024;
    const { files, length } = multiFile(join(dir, 'multi-read'), [70_000, 4096, 262_144, 9_999, 3]);
    const content = randomBytes(length);
    await mkdir(join(dir, 'multi-read'));
    for (const f of files) writeFileSync(f.path, content.subarray(f.offset, f.offset + f.length));
    expect((await readAllPieces(files, length, pieceLength, true)).equals(content)).toBe(true);
  });

  it('reads pieces for peers past the page cache, where buffered reads fill it', async () => {
    if (!direct) return console.warn('skipped: no O_DIRECT in the temporary directory');
    const pieceLength = 256 * 1024;
    // Whole blocks: a file's unaligned tail is written through the page cache.
    const content = randomBytes(16 * pieceLength + 12_288);
    /** Bytes of the file in the page cache after every piece was read for peers. */
    const cachedAfterReading = async (name: string, directIo: boolean) => {
      const files = placeFiles(join(dir, name), [{ path: [name], length: content.length, offset: 0 }], name);
      const writer = await FileStorage.openForWriting(files, { directIo: true });
      await writeAllPieces(pool, writer, content, pieceLength);
      await writer.close();
      expect((await readAllPieces(files, content.length, pieceLength, directIo)).equals(content)).toBe(true);
      return cachedBytes(files[0]!.path);
    };
    const buffered = await cachedAfterReading('read-buffered.bin', false);
    if (buffered === undefined) return console.warn('skipped the page cache check: fincore (Debian package util-linux) is missing');
    expect(buffered).toBeGreaterThan(content.length / 2);
    expect(await cachedAfterReading('read-direct.bin', true)).toBe(0);
  });

  it('writes through the page cache when there is no WebAssembly memory to stage in (node --jitless)', () => {
    const dist = (path: string) => JSON.stringify(fileURLToPath(new URL(`../../../dist/${path}`, import.meta.url)));
    const script = `
      import { createHash, randomBytes } from 'node:crypto';
      import { readFileSync } from 'node:fs';
      import { HashPool } from ${dist('libs/hashing/src/hash-pool.js')};
      import { FileStorage, placeFiles } from ${dist('libs/engine/src/storage.js')};
      const content = randomBytes(3 * 65536);
      const files = placeFiles(${JSON.stringify(join(dir, 'jitless'))}, [{ path: ['j.bin'], length: content.length, offset: 0 }], 'j.bin');
      const storage = await FileStorage.openForWriting(files, { directIo: true });
      const pool = new HashPool(1);
      for (let at = 0; at < content.length; at += 65536) {
        const piece = Buffer.allocUnsafeSlow(65536);
        content.copy(piece, 0, at, at + 65536);
        const expected = createHash('sha256').update(piece).digest();
        const r = await pool.verifyAndWrite(piece, 65536, expected, storage.segments(at, 65536));
        if (!r.ok) throw new Error('piece ' + at + ': ' + JSON.stringify(r.writeError));
      }
      await storage.close();
      await pool.close();
      console.log(JSON.stringify({ wasm: typeof WebAssembly, same: readFileSync(files[0].path).equals(content) }));
    `;
    // A file, not -e with --input-type=module: that flag would make the hash workers' own
    // (CommonJS) source a module too.
    const file = join(dir, 'jitless.mjs');
    writeFileSync(file, script);
    const out = spawnSync(process.execPath, ['--jitless', file], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(out.stderr.replace(/.*disabling flag --expose_wasm.*\n?/g, '')).toBe('');
    expect(JSON.parse(out.stdout)).toEqual({ wasm: 'undefined', same: true });
  });
});
