import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, HashReadError } from '../src/index.js';
import { cachedBytes, directIoWorksIn } from '../../../test/helpers/page-cache.js';
import { allocateAligned } from '../../engine/src/aligned-memory.js';

describe('HashPool.sha256Files', () => {
  let dir: string;
  const pool = new HashPool(2);
  const a = randomBytes(3 * 1024 * 1024 + 17);
  const b = randomBytes(1000);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-sha256-'));
    await writeFile(join(dir, 'a'), a);
    await writeFile(join(dir, 'b'), b);
  });

  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes the concatenation of the segments, across chunk and file boundaries', async () => {
    const got = await pool.sha256Files([
      { path: join(dir, 'a'), position: 0, length: a.length },
      { path: join(dir, 'b'), position: 10, length: 990 },
    ]);
    expect(got.toString('hex')).toBe(createHash('sha256').update(a).update(b.subarray(10)).digest('hex'));
  });

  it('runs beside piece hashing on the same workers, and an empty list is the empty digest', async () => {
    const [big, piece, empty] = await Promise.all([
      pool.sha256Files([{ path: join(dir, 'a'), position: 0, length: a.length }]),
      pool.sha1(b),
      pool.sha256Files([]),
    ]);
    expect(big.equals(createHash('sha256').update(a).digest())).toBe(true);
    expect(piece.equals(createHash('sha1').update(b).digest())).toBe(true);
    expect(empty.toString('hex')).toBe(createHash('sha256').digest('hex'));
  });

  it('fails with HashReadError on a missing or short file', async () => {
    await expect(pool.sha256Files([{ path: join(dir, 'missing'), position: 0, length: 1 }])).rejects.toMatchObject({ name: 'HashReadError', code: 'ENOENT' });
    const short = pool.sha256Files([{ path: join(dir, 'b'), position: 0, length: 2000 }]);
    await expect(short).rejects.toBeInstanceOf(HashReadError);
    await expect(short).rejects.toMatchObject({ code: 'ESHRANK' });
  });

  it('reads past the page cache with `direct`, a file written so staying out of it, and matches a buffered read', async (ctx) => {
    if (!directIoWorksIn(dir)) return ctx.skip('no O_DIRECT in the temporary directory (a tmpfs before Linux 6.6?)');
    // Written past the cache too (whole blocks from page-aligned memory), then cut to an odd length.
    const length = 3 * 1024 * 1024 + 17;
    const aligned = allocateAligned(length + 4096 - (length % 4096))!;
    randomBytes(aligned.length).copy(aligned);
    const path = join(dir, 'direct');
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | (constants.O_DIRECT as number), 0o644);
    try {
      writeSync(fd, aligned, 0, aligned.length, 0);
      ftruncateSync(fd, length);
    } finally {
      closeSync(fd);
    }
    const expected = createHash('sha256').update(aligned.subarray(0, length)).digest('hex');
    const direct = await pool.sha256Files([{ path, position: 0, length }], { direct: true });
    expect(direct.toString('hex')).toBe(expected);
    const cached = cachedBytes(path);
    if (cached === undefined) console.warn('skipped the page cache check: fincore (Debian package util-linux) is missing');
    else expect(cached).toBe(0);
    // A segment off a block boundary is read through the cache, with the same result.
    const tail = await pool.sha256Files([{ path, position: 100, length: length - 100 }], { direct: true });
    expect(tail.toString('hex')).toBe(createHash('sha256').update(aligned.subarray(100, length)).digest('hex'));
  });
});
