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
});
