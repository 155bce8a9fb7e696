import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError, encodeExtensionHandshake, parseExtensionHandshake, type ExtensionHandshake, type WireMessage } from '../src/index.js';
import { extensionHandshake, record } from './wire-fixtures.js';

/** The bencoded dictionary inside an encoded extension handshake frame. */
const dictOf = (frame: Buffer): Buffer => frame.subarray(6);

const expectRefused = (payload: Buffer): void => {
  let thrown: unknown;
  try {
    parseExtensionHandshake(payload);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ProtocolError);
  expect((thrown as ProtocolError).code).toBe('bad-extension-handshake');
};

describe('encodeExtensionHandshake', () => {
  it('frames extended message 0 with the keys sorted', () => {
    const frame = encodeExtensionHandshake({ m: { ut_pex: 2, ut_metadata: 1 }, v: 'swarmship 0.1', reqq: 500, p: 6881 });
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(frame[4]).toBe(20);
    expect(frame[5]).toBe(0);
    expect(dictOf(frame).toString('latin1')).toBe('d1:md11:ut_metadatai1e6:ut_pexi2ee1:pi6881e4:reqqi500e1:v13:swarmship 0.1e');
  });

  it('leaves out what is not set', () => {
    expect(dictOf(encodeExtensionHandshake({ m: {} })).toString('latin1')).toBe('d1:mdee');
  });
});

describe('parseExtensionHandshake', () => {
  it('reads every known key back', () => {
    const h: ExtensionHandshake = {
      m: { ut_metadata: 3, lt_donthave: 0 },
      v: 'qBittorrent/4.6.0 ü',
      p: 51413,
      reqq: 250,
      yourip: Buffer.from([10, 0, 0, 7]),
      metadata_size: 31235,
    };
    expect(parseExtensionHandshake(dictOf(encodeExtensionHandshake(h)))).toEqual(h);
  });

  it('arrives through the decoder as extended id 0', () => {
    const r = record({ expectHandshake: false });
    r.decoder.push(encodeExtensionHandshake({ m: { ut_metadata: 1 }, metadata_size: 100 }));
    const msg = r.messages()[0] as Extract<WireMessage, { type: 'extended' }>;
    expect(msg.id).toBe(0);
    expect(parseExtensionHandshake(msg.payload)).toEqual({ m: { ut_metadata: 1 }, metadata_size: 100 });
  });

  it('ignores unknown keys and treats a missing m as empty', () => {
    const parsed = parseExtensionHandshake(Buffer.from('d1:ei1e4:ipv416:abcdefghijklmnop11:upload_onlyi3ee'));
    expect(parsed).toEqual({ m: {} });
  });

  it('a peer cannot reach the prototype through its keys', () => {
    const parsed = parseExtensionHandshake(Buffer.from('d9:__proto__d1:pi5ee1:md11:constructori4eee'));
    expect(parsed.p).toBeUndefined();
    expect(parsed.m['constructor']).toBe(4);
    expect('toString' in parsed.m).toBe(false);
  });

  // Found by the fuzz target wire-extension (test/fuzz): it threw a TypeError.
  it.each([
    ['yourip', 'd1:mde6:youripd9:__proto__4:\x00\x00\x00\x00ee'],
    ['v', 'd1:mde1:vd9:__proto__3:abcee'],
  ])('refuses a dictionary whose __proto__ is a string where %s must be one', (_key, payload) => {
    expect(() => parseExtensionHandshake(Buffer.from(payload, 'latin1'))).toThrow(ProtocolError);
  });

  it.each([
    ['empty', ''],
    ['not bencode', 'hello'],
    ['not a dictionary', 'li1ee'],
    ['an integer', 'i5e'],
    ['truncated', 'd1:md'],
    ['string past the end', 'd1:v99:abce'],
    ['negative string length (loops bencode forever)', 'd1:a-6:'],
    ['negative string length in a list', 'l-3:e'],
    ['trailing bytes', 'd1:mdeeXYZ'],
    ['two values', 'dede'],
    ['integer key', 'di1ei2ee'],
    ['key without value', 'd1:me'],
    ['leading zero', 'd1:pi06881ee'],
    ['negative zero', 'd1:pi-0ee'],
    ['float', 'd1:pi1.5ee'],
    ['empty integer', 'd1:piee'],
    ['huge integer', 'd1:pi99999999999999999999ee'],
    ['nested too deeply', `d1:x${'l'.repeat(1000)}${'e'.repeat(1000)}e`],
    ['m not a dictionary', 'd1:mi1ee'],
    ['m value not an integer', 'd1:md6:ut_pex1:xee'],
    ['m id above 255', 'd1:md6:ut_pexi256eee'],
    ['m id negative', 'd1:md6:ut_pexi-1eee'],
    ['v not a string', 'd1:mde1:vi1ee'],
    ['p not an integer', 'd1:mde1:p4:6881e'],
    ['p above 65535', 'd1:mde1:pi65536ee'],
    ['reqq negative', 'd1:mde4:reqqi-5ee'],
    ['yourip of 5 bytes', 'd1:mde6:yourip5:abcdee'],
    ['yourip a list', 'd1:mde6:youriplee'],
    ['metadata_size negative', 'd1:mde13:metadata_sizei-1ee'],
  ])('refuses %s', (_why, text) => {
    expectRefused(Buffer.from(text, 'latin1'));
  });

  it('round trips any handshake', () => {
    fc.assert(
      fc.property(extensionHandshake, (h) => {
        expect(parseExtensionHandshake(dictOf(encodeExtensionHandshake(h)))).toEqual(h);
      }),
      { numRuns: 500 },
    );
  });

  it('fuzz: garbage either parses or throws bad-extension-handshake, nothing else', () => {
    const valid = dictOf(encodeExtensionHandshake({ m: { ut_metadata: 1, ut_pex: 2 }, v: 'x', p: 1, yourip: Buffer.from([1, 2, 3, 4]) }));
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)),
      fc.array(fc.constantFrom('d', 'l', 'e', 'i', '1', '0', '-', ':', '5', 'm', 'p', 'x'), { maxLength: 40 }).map((cs) => Buffer.from(cs.join(''))),
      fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 3 }).map((flips) => {
        const b = Buffer.from(valid);
        for (const f of flips) b[f.at % b.length] = f.value;
        return b;
      }),
    );
    fc.assert(
      fc.property(payload, (bytes) => {
        try {
          parseExtensionHandshake(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
          expect((err as ProtocolError).code).toBe('bad-extension-handshake');
        }
      }),
      { numRuns: 3000 },
    );
  });
});
