import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../src/index.js';

const digest = (algorithm: string, b: Uint8Array) => createHash(algorithm).update(b).digest();

describe('HashPool with SHA-256 piece digests', () => {
  let dir: string;
  const pool = new HashPool(2);
  const pieceLength = 64 * 1024;
  const data = randomBytes(3 * pieceLength + 999);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-piece-sha256-'));
    await writeFile(join(dir, 'data'), data);
  });

  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives each piece its SHA-1 and SHA-256 from one read', async () => {
    const d = await pool.pieceDigests([{ path: join(dir, 'data'), position: 0, length: data.length }], pieceLength, true);
    for (let i = 0; i < 4; i++) {
      const piece = data.subarray(i * pieceLength, (i + 1) * pieceLength);
      expect(d.sha1.subarray(i * 20, i * 20 + 20).equals(digest('sha1', piece))).toBe(true);
      expect(d.sha256!.subarray(i * 32, i * 32 + 32).equals(digest('sha256', piece))).toBe(true);
    }
    expect(d.sha256!.length).toBe(4 * 32);
    expect((await pool.pieceDigests([{ path: join(dir, 'data'), position: 0, length: data.length }], pieceLength, false)).sha256).toBeUndefined();
  });

  it('verifies a piece by its SHA-256, writes it only when it matches, and says when only its SHA-1 matched', async () => {
    const out = join(dir, 'out');
    const fd = openSync(out, 'w+');
    try {
      const piece = data.subarray(0, pieceLength);
      const fresh = () => Buffer.from(Uint8Array.from(piece).buffer);
      const writes = [{ fd, position: 0, from: 0, length: pieceLength }];

      const good = await pool.verifyAndWrite(fresh(), pieceLength, digest('sha256', piece), writes, digest('sha1', piece));
      expect(good.ok).toBe(true);
      expect(good.sha1Matched).toBeUndefined();
      expect(readFileSync(out).equals(piece)).toBe(true);

      // The signed SHA-256 names other bytes than the torrent's SHA-1: not the sender's fault.
      const disagreeing = await pool.verifyAndWrite(fresh(), pieceLength, digest('sha256', Buffer.from('other')), writes, digest('sha1', piece));
      expect(disagreeing).toMatchObject({ ok: false, sha1Matched: true });

      // Bytes that match neither: a bad piece.
      const corrupt = fresh();
      corrupt[7]! ^= 1;
      const bad = await pool.verifyAndWrite(corrupt, pieceLength, digest('sha256', piece), writes, digest('sha1', piece));
      expect(bad.ok).toBe(false);
      expect(bad.sha1Matched).toBeUndefined();
      expect(bad.buffer.length).toBe(pieceLength);
    } finally {
      closeSync(fd);
    }
  });

  it('hashes a view with SHA-256', async () => {
    expect((await pool.sha256(data.subarray(5, 500))).equals(digest('sha256', data.subarray(5, 500)))).toBe(true);
  });
});
