import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeHandshake, encodeMessage, type WireDecoderOptions } from '../src/index.js';
import { HANDSHAKE, almostFrame, record, reencode, splitAt, validMessage, type Event } from './wire-fixtures.js';

const cuts = (maxOffset: number) => fc.array(fc.integer({ min: 0, max: maxOffset }), { maxLength: 12 });

describe('valid streams', () => {
  it('any sequence of valid messages, split anywhere, decodes to the same sequence', () => {
    const scenario = fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }).chain((pieceCount) =>
      fc.record({
        pieceCount: fc.constant(pieceCount),
        withHandshake: fc.boolean(),
        messages: fc.array(validMessage(pieceCount), { maxLength: 25 }),
        cuts: cuts(2000),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ pieceCount, withHandshake, messages, cuts }) => {
        const bytes = Buffer.concat([...(withHandshake ? [encodeHandshake(HANDSHAKE)] : []), ...messages.map(encodeMessage)]);
        const r = record({ expectHandshake: withHandshake, pieceCount });
        for (const chunk of splitAt(bytes, cuts)) r.decoder.push(chunk);
        const expected: Event[] = [
          ...(withHandshake ? [{ kind: 'handshake' as const, value: HANDSHAKE }] : []),
          ...messages.map((value) => ({ kind: 'message' as const, value })),
        ];
        expect(r.events).toEqual(expected);
        expect(r.decoder.bufferedBytes).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('fuzz: hostile bytes', () => {
  const options: fc.Arbitrary<WireDecoderOptions> = fc.record({
    expectHandshake: fc.boolean(),
    pieceCount: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
    maxRequestLength: fc.constantFrom(1, 16, 16384),
    maxMessageLength: fc.constantFrom(8, 30, 1024 * 1024 + 13),
  });

  /**
   * Whatever arrives: push never throws, at most one error is reported and nothing after
   * it, no error is 'internal', and what was delivered re-encodes to exactly the bytes it
   * came from (the rest is still buffered, or was refused).
   */
  const checkHostile = (opts: WireDecoderOptions, bytes: Buffer, splits: number[]): void => {
    const r = record(opts);
    for (const chunk of splitAt(bytes, splits)) expect(() => r.decoder.push(chunk)).not.toThrow();
    const errors = r.errors();
    expect(errors.length).toBeLessThanOrEqual(1);
    if (errors.length === 1) {
      expect(r.events.at(-1)!.kind).toBe('error');
      expect(errors[0]!.code).not.toBe('internal');
      expect(r.decoder.failed).toBe(true);
    }
    const delivered = reencode(r.events);
    expect(delivered).toEqual(bytes.subarray(0, delivered.length));
    if (errors.length === 0) expect(delivered.length + r.decoder.bufferedBytes).toBe(bytes.length);
  };

  it('random bytes', () => {
    fc.assert(
      fc.property(options, fc.uint8Array({ maxLength: 300 }), cuts(300), (opts, bytes, splits) => {
        checkHostile(opts, Buffer.from(bytes), splits);
      }),
      { numRuns: 2000 },
    );
  });

  it('frames that lie about their length, id or contents', () => {
    const stream = fc.record({
      handshake: fc.constantFrom(encodeHandshake(HANDSHAKE), Buffer.alloc(0)),
      frames: fc.array(almostFrame, { maxLength: 30 }),
    });
    fc.assert(
      fc.property(options, stream, cuts(800), (opts, { handshake, frames }, splits) => {
        checkHostile(opts, Buffer.concat([handshake, ...frames]), splits);
      }),
      { numRuns: 2000 },
    );
  });

  it('a valid stream with bytes flipped', () => {
    const scenario = fc.record({
      messages: fc.array(validMessage(), { minLength: 1, maxLength: 15 }),
      flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
    });
    fc.assert(
      fc.property(options, scenario, cuts(2000), (opts, { messages, flips }, splits) => {
        const bytes = Buffer.concat([encodeHandshake(HANDSHAKE), ...messages.map(encodeMessage)]);
        for (const f of flips) bytes[f.at % bytes.length] = f.value;
        checkHostile(opts, bytes, splits);
      }),
      { numRuns: 1000 },
    );
  });
});
