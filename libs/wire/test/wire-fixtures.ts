/** Shared test inputs: one sample of every message, generators of valid messages, a recording sink. */
import fc from 'fast-check';
import {
  WireDecoder,
  encodeExtensionHandshake,
  encodeHandshake,
  encodeMessage,
  type ExtensionHandshake,
  type Handshake,
  type ProtocolError,
  type WireDecoderOptions,
  type WireMessage,
  type WireMessageType,
} from '../src/index.js';

export const HANDSHAKE: Handshake = {
  reserved: Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0x05]),
  infoHash: Buffer.alloc(20, 0xab),
  peerId: Buffer.from('-SW0001-abcdefghijkl'),
};

/** Keyed by type, so adding a message type to the contract fails to compile until it has a sample here. */
export const SAMPLES: { [K in WireMessageType]: Extract<WireMessage, { type: K }> } = {
  'keep-alive': { type: 'keep-alive' },
  choke: { type: 'choke' },
  unchoke: { type: 'unchoke' },
  interested: { type: 'interested' },
  'not-interested': { type: 'not-interested' },
  have: { type: 'have', index: 7 },
  bitfield: { type: 'bitfield', bitfield: Buffer.from([0xff, 0x80]) },
  request: { type: 'request', index: 3, begin: 16384, length: 16384 },
  piece: { type: 'piece', index: 3, begin: 16384, block: Buffer.from('some block bytes') },
  cancel: { type: 'cancel', index: 3, begin: 16384, length: 16384 },
  port: { type: 'port', port: 6881 },
  suggest: { type: 'suggest', index: 8 },
  'have-all': { type: 'have-all' },
  'have-none': { type: 'have-none' },
  reject: { type: 'reject', index: 2, begin: 0, length: 1000 },
  'allowed-fast': { type: 'allowed-fast', index: 1 },
  extended: { type: 'extended', id: 3, payload: Buffer.from('d1:ai1ee') },
  unknown: { type: 'unknown', id: 0xc8, payload: Buffer.from([1, 2, 3]) },
};

/** Piece count that the samples fit: indexes below it, and a 2-byte bitfield with spare bits clear. */
export const SAMPLE_PIECE_COUNT = 9;

export const ALL_SAMPLES: WireMessage[] = Object.values(SAMPLES);

export type Event = { kind: 'handshake'; value: Handshake } | { kind: 'message'; value: WireMessage } | { kind: 'error'; value: ProtocolError };

export interface Recorder {
  decoder: WireDecoder;
  events: Event[];
  messages(): WireMessage[];
  errors(): ProtocolError[];
}

export function record(options?: WireDecoderOptions): Recorder {
  const events: Event[] = [];
  const decoder = new WireDecoder(
    {
      onHandshake: (value) => events.push({ kind: 'handshake', value }),
      onMessage: (value) => events.push({ kind: 'message', value }),
      onError: (value) => events.push({ kind: 'error', value }),
    },
    options,
  );
  return {
    decoder,
    events,
    messages: () => events.flatMap((e) => (e.kind === 'message' ? [e.value] : [])),
    errors: () => events.flatMap((e) => (e.kind === 'error' ? [e.value] : [])),
  };
}

/** The bytes a decoder consumed to produce `events` (the codec is canonical, so this is exact). */
export function reencode(events: Event[]): Buffer {
  return Buffer.concat(
    events.flatMap((e) => (e.kind === 'handshake' ? [encodeHandshake(e.value)] : e.kind === 'message' ? [encodeMessage(e.value)] : [])),
  );
}

/** Splits `bytes` at the given offsets (any order, duplicates and out-of-range values allowed). */
export function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(c, 0), bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(start, p));
    start = p;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

const KNOWN_IDS = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 20]);
const UNKNOWN_IDS = Array.from({ length: 256 }, (_, i) => i).filter((i) => !KNOWN_IDS.has(i));

const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const uint32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff));

/** Valid BEP 10 handshakes. */
export const extensionHandshake: fc.Arbitrary<ExtensionHandshake> = fc.record(
  {
    // '__proto__' is left out: the decoder drops it on purpose (see parseExtensionHandshake).
    m: fc.dictionary(
      fc.oneof(fc.constantFrom('ut_metadata', 'ut_pex', 'lt_donthave', 'upload_only'), fc.string({ maxLength: 12 })).filter((k) => k !== '__proto__'),
      fc.integer({ min: 0, max: 255 }),
      { maxKeys: 6 },
    ),
    v: fc.string({ maxLength: 30 }),
    p: fc.integer({ min: 0, max: 0xffff }),
    reqq: fc.nat(),
    yourip: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })).map((u) => Buffer.from(u)),
    metadata_size: fc.nat(),
  },
  { requiredKeys: ['m'] },
);

/**
 * Valid messages; with a piece count, indexes and bitfields fit it. Request, cancel and
 * reject lengths stay within `maxRequestLength` (the decoder's limit).
 */
export function validMessage(pieceCount?: number, maxRequestLength = 16 * 1024): fc.Arbitrary<WireMessage> {
  const index = pieceCount === undefined || pieceCount === 0 ? uint32 : fc.integer({ min: 0, max: pieceCount - 1 });
  const bitfield =
    pieceCount === undefined
      ? bytes(40)
      : fc.uint8Array({ minLength: Math.ceil(pieceCount / 8), maxLength: Math.ceil(pieceCount / 8) }).map((u) => {
          const b = Buffer.from(u);
          const spare = b.length * 8 - pieceCount;
          if (spare > 0) b[b.length - 1] = b[b.length - 1]! & ~((1 << spare) - 1) & 0xff;
          return b;
        });
  const block = fc.record({ index, begin: uint32, length: fc.integer({ min: 0, max: maxRequestLength }) });
  return fc.oneof(
    fc.constantFrom<WireMessage>(
      { type: 'keep-alive' },
      { type: 'choke' },
      { type: 'unchoke' },
      { type: 'interested' },
      { type: 'not-interested' },
      { type: 'have-all' },
      { type: 'have-none' },
    ),
    index.map((i): WireMessage => ({ type: 'have', index: i })),
    index.map((i): WireMessage => ({ type: 'suggest', index: i })),
    index.map((i): WireMessage => ({ type: 'allowed-fast', index: i })),
    bitfield.map((b): WireMessage => ({ type: 'bitfield', bitfield: b })),
    block.map((b): WireMessage => ({ type: 'request', ...b })),
    block.map((b): WireMessage => ({ type: 'cancel', ...b })),
    block.map((b): WireMessage => ({ type: 'reject', ...b })),
    fc.record({ index, begin: uint32, block: bytes(300) }).map((p): WireMessage => ({ type: 'piece', ...p })),
    fc.integer({ min: 0, max: 0xffff }).map((port): WireMessage => ({ type: 'port', port })),
    extensionHandshake.map((h): WireMessage => ({ type: 'extended', id: 0, payload: encodeExtensionHandshake(h).subarray(6) })),
    fc.record({ id: fc.integer({ min: 0, max: 255 }), payload: bytes(40) }).map((e): WireMessage => ({ type: 'extended', ...e })),
    fc.record({ id: fc.constantFrom(...UNKNOWN_IDS), payload: bytes(40) }).map((u): WireMessage => ({ type: 'unknown', ...u })),
  );
}

/**
 * Frames that look like messages but may lie: any id, a length off by a little, random
 * payload. Random bytes alone almost always die at the first huge length prefix; these
 * reach the per-message checks.
 */
export const almostFrame: fc.Arbitrary<Buffer> = fc
  .record({
    id: fc.oneof(fc.integer({ min: 0, max: 21 }), fc.integer({ min: 0, max: 255 })),
    payload: bytes(20),
    delta: fc.constantFrom(0, 0, 0, 0, -1, 1, 2),
    fullLength: fc.boolean(),
  })
  .map(({ id, payload, delta, fullLength }) => {
    const declared = Math.max(0, 1 + payload.length + delta);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(declared, 0);
    head[4] = id;
    // Truncating to the declared length keeps later frames aligned when the lie is short.
    const body = fullLength ? payload : payload.subarray(0, Math.max(0, declared - 1));
    return declared === 0 ? head.subarray(0, 4) : Buffer.concat([head, body]);
  });
