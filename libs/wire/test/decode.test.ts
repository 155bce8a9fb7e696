import { describe, expect, it } from 'vitest';
import { MessageId, ProtocolError, WireDecoder, encodeHandshake, encodeMessage, type WireMessage } from '../src/index.js';
import { ALL_SAMPLES, HANDSHAKE, SAMPLES, SAMPLE_PIECE_COUNT, record, type Event } from './wire-fixtures.js';

const frame = (length: number, id: number, payload: number[] = []): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(length, 0);
  head[4] = id;
  return Buffer.concat([head, Buffer.from(payload)]);
};

const stream = Buffer.concat([encodeHandshake(HANDSHAKE), ...ALL_SAMPLES.map(encodeMessage)]);
const expected: Event[] = [
  { kind: 'handshake', value: HANDSHAKE },
  ...ALL_SAMPLES.map((value): Event => ({ kind: 'message', value })),
];

describe('round trip', () => {
  it.each(ALL_SAMPLES.map((m) => [m.type, m] as const))('%s decodes back to itself', (_type, msg) => {
    const r = record({ expectHandshake: false, pieceCount: SAMPLE_PIECE_COUNT });
    r.decoder.push(encodeMessage(msg));
    expect(r.events).toEqual([{ kind: 'message', value: msg }]);
    expect(r.decoder.bufferedBytes).toBe(0);
  });

  it('a handshake decodes back to itself, as copies that do not pin the chunk', () => {
    const r = record();
    const bytes = encodeHandshake(HANDSHAKE);
    r.decoder.push(bytes);
    expect(r.events).toEqual([{ kind: 'handshake', value: HANDSHAKE }]);
    bytes.fill(0);
    expect(r.events).toEqual([{ kind: 'handshake', value: HANDSHAKE }]);
  });
});

describe('fragmentation', () => {
  it('a handshake and one of every message, in one chunk', () => {
    const r = record({ pieceCount: SAMPLE_PIECE_COUNT });
    r.decoder.push(stream);
    expect(r.events).toEqual(expected);
  });

  it('the same stream split into two chunks at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = record({ pieceCount: SAMPLE_PIECE_COUNT });
      r.decoder.push(stream.subarray(0, cut));
      r.decoder.push(stream.subarray(cut));
      expect(r.events, `split at ${cut}`).toEqual(expected);
      expect(r.decoder.bufferedBytes).toBe(0);
    }
  });

  it('the same stream one byte at a time', () => {
    const r = record({ pieceCount: SAMPLE_PIECE_COUNT });
    for (let i = 0; i < stream.length; i++) r.decoder.push(stream.subarray(i, i + 1));
    expect(r.events).toEqual(expected);
  });

  it('counts the bytes held for an unfinished frame', () => {
    const r = record({ expectHandshake: false });
    const bytes = encodeMessage(SAMPLES.piece);
    r.decoder.push(bytes.subarray(0, 2));
    expect(r.decoder.bufferedBytes).toBe(2);
    r.decoder.push(bytes.subarray(2, 10));
    expect(r.decoder.bufferedBytes).toBe(10);
    r.decoder.push(bytes.subarray(10));
    expect(r.decoder.bufferedBytes).toBe(0);
    expect(r.messages()).toEqual([SAMPLES.piece]);
  });

  it('a block wholly inside the chunk is a view of it, not a copy', () => {
    const r = record({ expectHandshake: false });
    const chunk = Buffer.concat([encodeMessage(SAMPLES.have), encodeMessage(SAMPLES.piece)]);
    r.decoder.push(chunk);
    const piece = r.messages()[1] as Extract<WireMessage, { type: 'piece' }>;
    expect(piece.block.buffer).toBe(chunk.buffer);
    expect(piece.block.byteOffset).toBe(chunk.byteOffset + 9 + 13);
  });

  it('a block split across chunks arrives whole, joined once into a buffer of the frame size', () => {
    const r = record({ expectHandshake: false });
    const msg: WireMessage = { type: 'piece', index: 1, begin: 0, block: Buffer.alloc(16384, 0x5a) };
    const bytes = encodeMessage(msg);
    r.decoder.push(bytes.subarray(0, 15));
    r.decoder.push(bytes.subarray(15, 5000));
    r.decoder.push(bytes.subarray(5000));
    const piece = r.messages()[0] as Extract<WireMessage, { type: 'piece' }>;
    expect(piece).toEqual(msg);
    expect(piece.block.buffer.byteLength).toBe(bytes.length - 4);
  });

  it('without a handshake the first bytes are a message', () => {
    const r = record({ expectHandshake: false });
    r.decoder.push(encodeMessage(SAMPLES.unchoke));
    expect(r.messages()).toEqual([SAMPLES.unchoke]);
  });
});

describe('refusals', () => {
  const afterHandshake = (options: ConstructorParameters<typeof WireDecoder>[1] = {}) => {
    const r = record(options);
    r.decoder.push(encodeHandshake(HANDSHAKE));
    return r;
  };
  const codes = (r: ReturnType<typeof record>) => r.errors().map((e) => e.code);

  it('a 4 GiB length prefix is message-too-long as soon as its fourth byte arrives', () => {
    const r = afterHandshake();
    r.decoder.push(Buffer.from([0xff, 0xff, 0xff]));
    expect(r.errors()).toEqual([]);
    r.decoder.push(Buffer.from([0xff]));
    expect(codes(r)).toEqual(['message-too-long']);
    expect(r.decoder.failed).toBe(true);
    expect(r.decoder.bufferedBytes).toBe(0);
  });

  it('a 4 GiB length prefix inside a chunk is refused without waiting for the body', () => {
    const r = record({ expectHandshake: false });
    r.decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 7, 0, 0]));
    expect(codes(r)).toEqual(['message-too-long']);
    expect(r.decoder.bufferedBytes).toBe(0);
  });

  it('the largest accepted frame passes and one byte more does not', () => {
    const ok = record({ expectHandshake: false, maxMessageLength: 20 });
    ok.decoder.push(encodeMessage({ type: 'piece', index: 0, begin: 0, block: Buffer.alloc(11) }));
    expect(ok.messages()).toHaveLength(1);
    const tooBig = record({ expectHandshake: false, maxMessageLength: 20 });
    tooBig.decoder.push(encodeMessage({ type: 'piece', index: 0, begin: 0, block: Buffer.alloc(12) }).subarray(0, 4));
    expect(codes(tooBig)).toEqual(['message-too-long']);
  });

  it.each(['request', 'cancel', 'reject'] as const)('a %s for 32 KiB is request-too-long; 16 KiB is fine', (type) => {
    const r = afterHandshake();
    r.decoder.push(encodeMessage({ type, index: 0, begin: 0, length: 16 * 1024 }));
    r.decoder.push(encodeMessage({ type, index: 0, begin: 0, length: 32 * 1024 }));
    expect(r.messages()).toEqual([{ type, index: 0, begin: 0, length: 16 * 1024 }]);
    expect(codes(r)).toEqual(['request-too-long']);
  });

  it('maxRequestLength is configurable', () => {
    const r = record({ expectHandshake: false, maxRequestLength: 32 * 1024 });
    r.decoder.push(encodeMessage({ type: 'request', index: 0, begin: 0, length: 32 * 1024 }));
    expect(r.errors()).toEqual([]);
  });

  it.each<WireMessage>([
    { type: 'have', index: 10 },
    { type: 'suggest', index: 10 },
    { type: 'allowed-fast', index: 11 },
    { type: 'request', index: 10, begin: 0, length: 1 },
    { type: 'cancel', index: 10, begin: 0, length: 1 },
    { type: 'reject', index: 0xffffffff, begin: 0, length: 1 },
    { type: 'piece', index: 10, begin: 0, block: Buffer.from([1]) },
  ])('$type with an index past pieceCount is bad-index', (msg) => {
    const r = afterHandshake({ pieceCount: 10 });
    r.decoder.push(encodeMessage({ type: 'have', index: 9 }));
    r.decoder.push(encodeMessage(msg));
    expect(r.messages()).toEqual([{ type: 'have', index: 9 }]);
    expect(codes(r)).toEqual(['bad-index']);
  });

  it('without a pieceCount any index passes', () => {
    const r = afterHandshake();
    r.decoder.push(encodeMessage({ type: 'have', index: 0xffffffff }));
    expect(r.errors()).toEqual([]);
  });

  it('a bitfield with spare bits set is bad-bitfield', () => {
    const r = afterHandshake({ pieceCount: 10 });
    r.decoder.push(encodeMessage({ type: 'bitfield', bitfield: Buffer.from([0xff, 0xc0]) }));
    expect(r.messages()).toEqual([{ type: 'bitfield', bitfield: Buffer.from([0xff, 0xc0]) }]);
    const spare = afterHandshake({ pieceCount: 10 });
    spare.decoder.push(encodeMessage({ type: 'bitfield', bitfield: Buffer.from([0xff, 0xe0]) }));
    expect(codes(spare)).toEqual(['bad-bitfield']);
  });

  it.each([[[0xff]], [[0xff, 0xc0, 0x00]], [[]]])('a bitfield of the wrong size %j for 10 pieces is bad-bitfield', (bits) => {
    const r = afterHandshake({ pieceCount: 10 });
    r.decoder.push(encodeMessage({ type: 'bitfield', bitfield: Buffer.from(bits) }));
    expect(codes(r)).toEqual(['bad-bitfield']);
  });

  it.each([
    ['choke', MessageId.choke, 2],
    ['unchoke', MessageId.unchoke, 0x10000],
    ['interested', MessageId.interested, 5],
    ['not-interested', MessageId.notInterested, 2],
    ['have', MessageId.have, 4],
    ['have', MessageId.have, 6],
    ['request', MessageId.request, 12],
    ['cancel', MessageId.cancel, 17],
    ['reject', MessageId.reject, 14],
    ['piece', MessageId.piece, 8],
    ['port', MessageId.port, 5],
    ['suggest', MessageId.suggest, 1],
    ['have-all', MessageId.haveAll, 3],
    ['have-none', MessageId.haveNone, 2],
    ['allowed-fast', MessageId.allowedFast, 9],
    ['extended', MessageId.extended, 1],
  ])('%s (id %i) with length %i is bad-length, known from its id alone', (_name, id, length) => {
    const r = afterHandshake();
    r.decoder.push(frame(length, id));
    if (length > 1) expect(r.decoder.bufferedBytes).toBe(0);
    expect(codes(r)).toEqual(['bad-length']);
  });

  it('a handshake with pstrlen other than 19 is refused at its first byte', () => {
    const r = record();
    r.decoder.push(Buffer.from([18]));
    expect(codes(r)).toEqual(['bad-handshake']);
  });

  it('a handshake naming another protocol is refused at the first wrong byte', () => {
    const bytes = encodeHandshake(HANDSHAKE);
    bytes.write('BitTorrent protocoL', 1, 'latin1');
    const whole = record();
    whole.decoder.push(bytes);
    expect(codes(whole)).toEqual(['bad-handshake']);
    const trickle = record();
    trickle.decoder.push(bytes.subarray(0, 19));
    expect(trickle.errors()).toEqual([]);
    trickle.decoder.push(bytes.subarray(19, 20));
    expect(codes(trickle)).toEqual(['bad-handshake']);
  });

  it('an HTTP request is not a handshake', () => {
    const r = record();
    r.decoder.push(Buffer.from('GET /announce HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3)));
    expect(codes(r)).toEqual(['bad-handshake']);
  });

  it('reports once and ignores everything after', () => {
    const r = afterHandshake();
    r.decoder.push(Buffer.concat([frame(2, MessageId.choke, [0]), encodeMessage(SAMPLES.have)]));
    r.decoder.push(encodeMessage(SAMPLES.have));
    r.decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(r.events.filter((e) => e.kind !== 'handshake')).toEqual([{ kind: 'error', value: expect.any(ProtocolError) }]);
    expect(r.decoder.failed).toBe(true);
  });
});

describe('unknown ids', () => {
  it('are surfaced with their payload, not refused (BEP 3)', () => {
    const r = record({ expectHandshake: false });
    r.decoder.push(frame(4, 0x42, [1, 2, 3]));
    r.decoder.push(frame(1, 0xff));
    expect(r.messages()).toEqual([
      { type: 'unknown', id: 0x42, payload: Buffer.from([1, 2, 3]) },
      { type: 'unknown', id: 0xff, payload: Buffer.alloc(0) },
    ]);
  });
});

describe('the session learning the piece count mid-stream', () => {
  it('setPieceCount from onHandshake applies to the bitfield in the same chunk', () => {
    const errors: ProtocolError[] = [];
    const decoder: WireDecoder = new WireDecoder({
      onHandshake: () => decoder.setPieceCount(4),
      onMessage: () => {},
      onError: (e) => errors.push(e),
    });
    decoder.push(Buffer.concat([encodeHandshake(HANDSHAKE), encodeMessage({ type: 'bitfield', bitfield: Buffer.from([0xf8]) })]));
    expect(errors.map((e) => e.code)).toEqual(['bad-bitfield']);
  });

  it('setPieceCount from onMessage(bitfield) applies to the next message in the same chunk', () => {
    const seen: WireMessage[] = [];
    const errors: ProtocolError[] = [];
    const decoder: WireDecoder = new WireDecoder(
      {
        onHandshake: () => {},
        onMessage: (m) => {
          seen.push(m);
          if (m.type === 'bitfield') decoder.setPieceCount(m.bitfield.length * 8);
        },
        onError: (e) => errors.push(e),
      },
      { expectHandshake: false },
    );
    const bitfield = encodeMessage({ type: 'bitfield', bitfield: Buffer.from([0x80]) });
    decoder.push(Buffer.concat([bitfield, encodeMessage({ type: 'have', index: 7 }), encodeMessage({ type: 'have', index: 8 })]));
    expect(seen.map((m) => m.type)).toEqual(['bitfield', 'have']);
    expect(errors.map((e) => e.code)).toEqual(['bad-index']);
  });

  it('refuses a nonsensical piece count from the caller', () => {
    const r = record();
    expect(() => r.decoder.setPieceCount(-1)).toThrow(RangeError);
    expect(() => r.decoder.setPieceCount(1.5)).toThrow(RangeError);
  });
});

describe('callbacks that misbehave', () => {
  it('a throwing onMessage stops the decoder with an internal error instead of throwing out of push', () => {
    const boom = new Error('sink bug');
    const errors: ProtocolError[] = [];
    const decoder = new WireDecoder(
      {
        onHandshake: () => {},
        onMessage: () => {
          throw boom;
        },
        onError: (e) => errors.push(e),
      },
      { expectHandshake: false },
    );
    expect(() => decoder.push(encodeMessage(SAMPLES.choke))).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('internal');
    expect(errors[0]!.cause).toBe(boom);
    expect(decoder.failed).toBe(true);
  });

  it('a throwing onError is contained', () => {
    const decoder = new WireDecoder({
      onHandshake: () => {},
      onMessage: () => {},
      onError: () => {
        throw new Error('handler bug');
      },
    });
    expect(() => decoder.push(Buffer.from([0]))).not.toThrow();
    expect(decoder.failed).toBe(true);
  });

  it('a push from inside onMessage is decoded after the current chunk, in order', () => {
    const seen: number[] = [];
    let fed = false;
    const decoder: WireDecoder = new WireDecoder(
      {
        onHandshake: () => {},
        onMessage: (m) => {
          if (m.type === 'have') seen.push(m.index);
          if (!fed) {
            fed = true;
            decoder.push(encodeMessage({ type: 'have', index: 3 }));
          }
        },
        onError: (e) => {
          throw e;
        },
      },
      { expectHandshake: false },
    );
    decoder.push(Buffer.concat([encodeMessage({ type: 'have', index: 1 }), encodeMessage({ type: 'have', index: 2 })]));
    expect(seen).toEqual([1, 2, 3]);
  });
});

describe('keep-alive', () => {
  it('is four zero bytes, also when they arrive one at a time', () => {
    const r = record({ expectHandshake: false });
    for (const b of [0, 0, 0, 0]) r.decoder.push(Buffer.from([b]));
    r.decoder.push(Buffer.alloc(8));
    expect(r.messages()).toEqual([{ type: 'keep-alive' }, { type: 'keep-alive' }, { type: 'keep-alive' }]);
  });

  it('shared message objects cannot be changed by one listener for the next', () => {
    const r = record({ expectHandshake: false });
    r.decoder.push(encodeMessage(SAMPLES.choke));
    expect(Object.isFrozen(r.messages()[0])).toBe(true);
  });
});
