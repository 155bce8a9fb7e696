import { describe, expect, it } from 'vitest';
import { encodeHandshake, encodeHaves, encodeMessage, encodePieceHeader, encodeRequests, type BlockRef } from '../src/index.js';
import { HANDSHAKE } from './wire-fixtures.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('encodeHandshake', () => {
  it('writes the 68-byte BEP 3 handshake', () => {
    const out = encodeHandshake(HANDSHAKE);
    expect(out.length).toBe(68);
    expect(out[0]).toBe(19);
    expect(out.subarray(1, 20).toString('latin1')).toBe('BitTorrent protocol');
    expect(out.subarray(20, 28)).toEqual(HANDSHAKE.reserved);
    expect(out.subarray(28, 48)).toEqual(HANDSHAKE.infoHash);
    expect(out.subarray(48, 68)).toEqual(HANDSHAKE.peerId);
  });

  it('refuses fields of the wrong size instead of writing a frame a peer would misread', () => {
    expect(() => encodeHandshake({ ...HANDSHAKE, infoHash: Buffer.alloc(19) })).toThrow(RangeError);
    expect(() => encodeHandshake({ ...HANDSHAKE, peerId: Buffer.alloc(21) })).toThrow(RangeError);
    expect(() => encodeHandshake({ ...HANDSHAKE, reserved: Buffer.alloc(7) })).toThrow(RangeError);
  });
});

describe('encodeMessage writes the frames of BEP 3, 5, 6 and 10', () => {
  it.each([
    [{ type: 'keep-alive' }, '00000000'],
    [{ type: 'choke' }, '0000000100'],
    [{ type: 'unchoke' }, '0000000101'],
    [{ type: 'interested' }, '0000000102'],
    [{ type: 'not-interested' }, '0000000103'],
    [{ type: 'have', index: 0x01020304 }, '000000050401020304'],
    [{ type: 'bitfield', bitfield: Buffer.from([0xf0, 0x01]) }, '0000000305f001'],
    [{ type: 'request', index: 1, begin: 0x4000, length: 0x4000 }, '0000000d06000000010000400000004000'],
    [{ type: 'piece', index: 2, begin: 0, block: Buffer.from([0xaa, 0xbb]) }, '0000000b070000000200000000aabb'],
    [{ type: 'cancel', index: 1, begin: 0x4000, length: 0x4000 }, '0000000d08000000010000400000004000'],
    [{ type: 'port', port: 6881 }, '00000003091ae1'],
    [{ type: 'suggest', index: 5 }, '000000050d00000005'],
    [{ type: 'have-all' }, '000000010e'],
    [{ type: 'have-none' }, '000000010f'],
    [{ type: 'reject', index: 1, begin: 0, length: 10 }, '0000000d1000000001000000000000000a'],
    [{ type: 'allowed-fast', index: 9 }, '000000051100000009'],
    [{ type: 'extended', id: 2, payload: Buffer.from('ab') }, '0000000414026162'],
    [{ type: 'unknown', id: 0xc8, payload: Buffer.from([7]) }, '00000002c807'],
  ] as const)('%o', (msg, expected) => {
    expect(hex(encodeMessage(msg))).toBe(expected);
  });
});

describe('hot-path encoders', () => {
  it('encodePieceHeader plus the block is the piece message', () => {
    const block = Buffer.from('block bytes here');
    const framed = Buffer.concat([encodePieceHeader(4, 32768, block.length), block]);
    expect(framed).toEqual(encodeMessage({ type: 'piece', index: 4, begin: 32768, block }));
    expect(encodePieceHeader(4, 32768, block.length).length).toBe(13);
  });

  it('encodeRequests is the request messages back to back', () => {
    const blocks: BlockRef[] = [
      { index: 0, begin: 0, length: 16384 },
      { index: 0, begin: 16384, length: 16384 },
      { index: 7, begin: 0, length: 100 },
    ];
    expect(encodeRequests(blocks)).toEqual(Buffer.concat(blocks.map((b) => encodeMessage({ type: 'request', ...b }))));
    expect(encodeRequests([]).length).toBe(0);
  });

  it('encodeHaves is the HAVE messages back to back', () => {
    const pieces = [0, 5, 70000, 0xffffffff];
    expect(encodeHaves(pieces)).toEqual(Buffer.concat(pieces.map((index) => encodeMessage({ type: 'have', index }))));
    expect(encodeHaves([]).length).toBe(0);
  });
});
