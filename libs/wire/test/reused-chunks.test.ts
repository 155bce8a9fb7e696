import { describe, expect, it } from 'vitest';
import { WireDecoder } from '../src/decode.js';
import { encodeHandshake, encodeMessage } from '../src/encode.js';
import type { Handshake, WireMessage } from '../src/messages.js';

describe('WireDecoder with reused chunk memory', () => {
  it('decodes frames split across chunks even when each chunk is overwritten after push', () => {
    const handshake: Handshake = { reserved: Buffer.alloc(8), infoHash: Buffer.alloc(20, 1), peerId: Buffer.alloc(20, 2) };
    const block = Buffer.alloc(16384);
    for (let i = 0; i < block.length; i++) block[i] = (i * 7) & 0xff;
    const messages: WireMessage[] = [
      { type: 'bitfield', bitfield: Buffer.from([0xf0]) },
      { type: 'piece', index: 3, begin: 16384, block },
      { type: 'have', index: 2 },
      { type: 'piece', index: 1, begin: 0, block: block.subarray(0, 1000) },
    ];
    const stream = Buffer.concat([encodeHandshake(handshake), ...messages.map(encodeMessage)]);
    for (const size of [1, 7, 100, 4096, 20000]) {
      const seen: string[] = [];
      const decoder = new WireDecoder(
        {
          onHandshake: (h) => seen.push(`hs:${h.peerId.toString('hex')}`),
          // Serialise inside the callback: the chunk's memory is scribbled on right after.
          onMessage: (m) => seen.push(JSON.stringify(m)),
          onError: (e) => seen.push(`error:${e.code}`),
        },
        { reusesChunks: true },
      );
      const reused = Buffer.alloc(size);
      for (let off = 0; off < stream.length; off += size) {
        const n = stream.copy(reused, 0, off, off + size);
        decoder.push(reused.subarray(0, n));
        reused.fill(0xee);
      }
      expect(seen).toEqual([`hs:${handshake.peerId.toString('hex')}`, ...messages.map((m) => JSON.stringify(m))]);
    }
  });

  it('assembles every block split between two reads in the same memory, allocating nothing per block', () => {
    const frames = [0, 1, 2].map((i) => encodeMessage({ type: 'piece', index: i, begin: 0, block: Buffer.alloc(16384, i + 1) }));
    const blocks: { memory: ArrayBufferLike; first: number }[] = [];
    const decoder = new WireDecoder(
      { onHandshake: () => undefined, onMessage: (m) => m.type === 'piece' && blocks.push({ memory: m.block.buffer, first: m.block[0]! }), onError: (e) => expect.fail(e.message) },
      { reusesChunks: true, expectHandshake: false },
    );
    // Each frame cut in two, as a 64 KiB read that ends inside a block would leave it.
    for (const f of frames) {
      decoder.push(Buffer.from(f.subarray(0, 5000)));
      decoder.push(Buffer.from(f.subarray(5000)));
    }
    expect(blocks.map((b) => b.first)).toEqual([1, 2, 3]);
    expect(new Set(blocks.map((b) => b.memory)).size).toBe(1);
  });
});
