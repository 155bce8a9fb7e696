import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HashPool } from '../../hashing/src/hash-pool.js';
import { PieceIngest } from '../src/piece-ingest.js';
import { cachedBytes, directIoWorksIn } from '../../../test/helpers/page-cache.js';

const KIB = 1024;

/** The upload's bytes cut into chunks of uneven sizes, as sockets hand them over. */
function* unevenChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 7 * KIB, 64 * KIB, 100 * KIB + 3, 200 * KIB, 13];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - at);
    yield data.subarray(at, at + n);
    at += n;
  }
}

function pieceDigests(data: Buffer, pieceLength: number, algorithm: 'sha1' | 'sha256'): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += pieceLength) out.push(createHash(algorithm).update(data.subarray(at, at + pieceLength)).digest());
  return Buffer.concat(out);
}

const pool = new HashPool(2);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmship-ingest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterAll(() => pool.close());

describe('PieceIngest', () => {
  it("writes the upload byte for byte and returns each piece's SHA-1 and SHA-256, the short last piece too", async () => {
    const pieceLength = 256 * KIB;
    const data = randomBytes(3 * 1024 * KIB + 12_345);
    const path = join(dir, 'artifact.bin');
    const ingest = await PieceIngest.create(pool, path, data.length, pieceLength);
    for (const chunk of unevenChunks(data)) await ingest.push(chunk);
    expect(ingest.bytes).toBe(data.length);
    await ingest.finish();
    const digests = ingest.digests;

    expect((await readFile(path)).equals(data)).toBe(true);
    expect(digests.sha1.equals(pieceDigests(data, pieceLength, 'sha1'))).toBe(true);
    expect(digests.sha256!.equals(pieceDigests(data, pieceLength, 'sha256'))).toBe(true);
  });

  it('leaves the whole blocks it wrote out of the page cache', async (ctx) => {
    if (!directIoWorksIn(dir)) return ctx.skip('no O_DIRECT in the temporary directory (a tmpfs before Linux 6.6?)');
    const data = randomBytes(4 * 1024 * KIB);
    const path = join(dir, 'artifact.bin');
    const ingest = await PieceIngest.create(pool, path, data.length, 1024 * KIB);
    for (const chunk of unevenChunks(data)) await ingest.push(chunk);
    await ingest.finish();
    const cached = cachedBytes(path);
    if (cached === undefined) return console.warn('skipped the page cache check: fincore (Debian package util-linux) is missing');
    expect(cached).toBe(0);
  });

  it('refuses bytes past the announced size, and a finish before all of them', async () => {
    const ingest = await PieceIngest.create(pool, join(dir, 'a.bin'), 100, 16 * KIB);
    await ingest.push(Buffer.alloc(60));
    await expect(ingest.finish()).rejects.toThrow('received 60 of 100 bytes');
    await expect(ingest.push(Buffer.alloc(41))).rejects.toThrow('more than the 100 bytes announced');
    await ingest.abort();
  });
});
