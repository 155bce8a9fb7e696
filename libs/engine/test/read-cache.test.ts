import { describe, expect, it } from 'vitest';
import { isAlignedMemory } from '../src/aligned-memory.js';
import { PieceReadCache } from '../src/read-cache.js';
import type { PieceStorage } from '../src/storage.js';

/** Storage over one buffer, counting reads. */
function memoryStorage(data: Buffer): PieceStorage & { reads: number } {
  return {
    length: data.length,
    reads: 0,
    async read(offset, target) {
      this.reads++;
      target.set(data.subarray(offset, offset + target.byteLength));
    },
    async write() {},
    async sync() {},
    async close() {},
  };
}

describe('PieceReadCache', () => {
  const pieceLength = 1024;
  const data = Buffer.from(Array.from({ length: 8 * pieceLength }, (_, i) => i % 251));
  const size = () => pieceLength;

  it('reads a piece once and serves it from memory after', async () => {
    const storage = memoryStorage(data);
    const cache = new PieceReadCache(storage, pieceLength, size, 4 * pieceLength);
    expect((await cache.load(2)).equals(data.subarray(2048, 3072))).toBe(true);
    await cache.load(2);
    expect(cache.get(2)).toBeDefined();
    expect(storage.reads).toBe(1);
  });

  it('evicts the least recently used piece beyond its budget, but never a pinned one', async () => {
    const storage = memoryStorage(data);
    const cache = new PieceReadCache(storage, pieceLength, size, 2 * pieceLength);
    await cache.load(0);
    const unpin = cache.pin(0);
    await cache.load(1);
    await cache.load(2);
    expect(cache.get(1)).toBeUndefined();
    // Piece 0 left the cache only because it was oldest; its memory is still held.
    const piece0 = (await cache.load(0)).subarray(0, 4);
    unpin();
    expect(piece0.equals(data.subarray(0, 4))).toBe(true);
  });

  it('gives memory back when nothing was read between two trims', async () => {
    const storage = memoryStorage(data);
    const cache = new PieceReadCache(storage, pieceLength, size, 8 * pieceLength);
    await cache.load(3);
    cache.trimIfIdle();
    expect(cache.get(3)).toBeDefined();
    cache.trimIfIdle();
    expect(cache.get(3)).toBeUndefined();
  });

  it('reads pieces within the budget into slots of one aligned slab, reused as pieces are evicted', async () => {
    const cache = new PieceReadCache(memoryStorage(data), pieceLength, size, 2 * pieceLength);
    const slots = new Set<string>();
    let slab: ArrayBufferLike | undefined;
    for (let i = 0; i < 8; i++) {
      const piece = await cache.load(i);
      expect(piece.equals(data.subarray(i * pieceLength, (i + 1) * pieceLength))).toBe(true);
      expect(isAlignedMemory(piece)).toBe(true);
      slab ??= piece.buffer;
      expect(piece.buffer).toBe(slab);
      slots.add(String(piece.byteOffset));
    }
    expect([...slots].sort()).toEqual(['0', String(pieceLength)]);
  });

  it('lets memory taken beyond the budget go once its pinned piece is sent', async () => {
    const cache = new PieceReadCache(memoryStorage(data), pieceLength, size, pieceLength);
    await cache.load(0);
    const unpin = cache.pin(0);
    const beyond = await cache.load(1);
    expect(isAlignedMemory(beyond)).toBe(false);
    unpin();
    await cache.load(2);
    // Piece 0's slot came back; the memory taken for piece 1 was not kept for reuse.
    const next = await cache.load(3);
    expect(isAlignedMemory(next)).toBe(true);
    expect(next.byteOffset).toBe(0);
  });
});
