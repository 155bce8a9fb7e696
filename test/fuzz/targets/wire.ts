/**
 * libs/wire: the streaming `WireDecoder` on mutated streams of real frames, and
 * `parseExtensionHandshake` on mutated BEP 10 dictionaries.
 *
 * The decoder must never throw, report at most one ProtocolError (never 'internal'),
 * deliver nothing after it, keep fewer buffered bytes than one frame can hold, and
 * produce the same events whether the bytes come in one chunk, in random pieces, byte
 * by byte, or in pieces of a buffer the caller scribbles over after each push.
 */
import fc from 'fast-check';
import { encode, type Encodable } from '../../../libs/bencode/src/index.js';
import {
  DEFAULT_MAX_MESSAGE_LENGTH,
  HANDSHAKE_LENGTH,
  ProtocolError,
  WireDecoder,
  encodeExtensionHandshake,
  encodeHandshake,
  encodeMessage,
  parseExtensionHandshake,
  type ExtensionHandshake,
  type Handshake,
  type WireDecoderOptions,
  type WireMessage,
} from '../../../libs/wire/src/index.js';
import { extensionHandshake, splitAt, validMessage } from '../../../libs/wire/test/wire-fixtures.js';
import { PROTOTYPE_KEYS, applyByteOps, byteOp, mutatedBytes, mutatedTree, type Tree } from '../mutate.js';
import { check, expectTyped, violation, type FuzzTarget, type Outcome } from '../runner.js';
import { BENCODE_TOKENS, bencodeValue } from './bencode.js';

const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('latin1');
};

/** Length prefixes on every limit, ids of every kind, the handshake's own prefix. */
const WIRE_TOKENS = [
  be32(0), be32(1), be32(2), be32(3), be32(5), be32(9), be32(13), be32(0xffffffff), be32(0x80000000), be32(DEFAULT_MAX_MESSAGE_LENGTH),
  be32(DEFAULT_MAX_MESSAGE_LENGTH + 1), be32(16 * 1024 + 9), '\x00', '\x04', '\x05', '\x06', '\x07', '\x09', '\x0d', '\x0e', '\x10', '\x11',
  '\x14', '\x14\x00', '\xff', '\x13BitTorrent protocol', '\x13BitTorrent protocoL', 'd1:md11:ut_metadatai1eee',
];

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const handshake: fc.Arbitrary<Handshake> = fc.record({
  reserved: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((u) => Buffer.from(u)),
  infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)),
  peerId: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)),
});

interface WireInput {
  options: WireDecoderOptions;
  bytes: Buffer;
  cuts: number[];
}

const decoderOptions: fc.Arbitrary<WireDecoderOptions> = fc.record({
  expectHandshake: fc.boolean(),
  pieceCount: fc.option(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(1, 8, 9, 4099)), { nil: undefined }),
  maxMessageLength: fc.constantFrom(8, 13, 64, 300, DEFAULT_MAX_MESSAGE_LENGTH),
  maxRequestLength: fc.constantFrom(1, 16, 16 * 1024),
});

const wireInput: fc.Arbitrary<WireInput> = decoderOptions.chain((options) => {
  const valid = fc
    .record({ hs: handshake, messages: fc.array(validMessage(options.pieceCount, options.maxRequestLength!), { maxLength: 12 }) })
    .map(({ hs, messages }) => Buffer.concat([...(options.expectHandshake ? [encodeHandshake(hs)] : []), ...messages.map(encodeMessage)]));
  const stream = fc.oneof(
    { weight: 1, arbitrary: valid },
    { weight: 6, arbitrary: mutatedBytes(valid, WIRE_TOKENS) },
    { weight: 1, arbitrary: bytes(200) },
    // A valid start with garbage after it reaches the checks of later frames.
    { weight: 1, arbitrary: fc.tuple(valid, bytes(40), fc.array(byteOp(WIRE_TOKENS), { maxLength: 2 })).map(([v, tail, ops]) => applyByteOps(Buffer.concat([v, tail]), ops, WIRE_TOKENS)) },
  );
  return fc.record({ options: fc.constant(options), bytes: stream, cuts: fc.array(fc.nat({ max: 3000 }), { maxLength: 12 }) });
});

type Event = { kind: 'handshake'; hex: string } | { kind: 'message'; message: WireMessage; hex: string } | { kind: 'error'; code: string };

interface Decoded {
  events: Event[];
  /** Largest `bufferedBytes` seen after a push. */
  maxBuffered: number;
}

/**
 * Decodes `chunks` and records every event as its re-encoded bytes (copied inside the
 * callback, as a caller reusing chunks must). With `scribble`, each chunk is copied into
 * one buffer that is overwritten after the push returns, like a socket reading into a
 * fixed buffer.
 */
function decode(options: WireDecoderOptions, chunks: Buffer[], scribble: boolean): Decoded {
  const events: Event[] = [];
  let errors = 0;
  const decoder = new WireDecoder(
    {
      onHandshake: (h) => {
        check(errors === 0, 'a handshake after the error');
        events.push({ kind: 'handshake', hex: encodeHandshake(h).toString('hex') });
      },
      onMessage: (m) => {
        check(errors === 0, 'a message after the error');
        events.push({ kind: 'message', message: copyMessage(m), hex: encodeMessage(m).toString('hex') });
      },
      onError: (e) => {
        errors++;
        check(e instanceof ProtocolError, 'onError got something other than a ProtocolError');
        events.push({ kind: 'error', code: e.code });
      },
    },
    { ...options, reusesChunks: scribble },
  );
  const bound = Math.max(HANDSHAKE_LENGTH, options.maxMessageLength! + 4);
  const scratch = scribble ? Buffer.alloc(chunks.reduce((n, c) => Math.max(n, c.length), 0)) : undefined;
  let maxBuffered = 0;
  for (const chunk of chunks) {
    try {
      if (scratch) {
        chunk.copy(scratch);
        decoder.push(scratch.subarray(0, chunk.length));
        scratch.fill(0xee);
      } else {
        decoder.push(chunk);
      }
    } catch (err) {
      violation(`push threw ${(err as Error).name}: ${(err as Error).message}`, err);
    }
    maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
    check(decoder.bufferedBytes <= bound, `${decoder.bufferedBytes} bytes buffered, more than a frame can hold (${bound})`);
  }
  check(errors <= 1, `${errors} errors reported`);
  check(decoder.failed === (errors === 1), 'failed flag disagrees with the errors reported');
  return { events, maxBuffered };
}

function copyMessage(m: WireMessage): WireMessage {
  if (m.type === 'piece') return { ...m, block: Buffer.from(m.block) };
  if (m.type === 'bitfield') return { ...m, bitfield: Buffer.from(m.bitfield) };
  if (m.type === 'extended' || m.type === 'unknown') return { ...m, payload: Buffer.from(m.payload) };
  return m;
}

function sameEvents(a: Event[], b: Event[]): string | undefined {
  if (a.length !== b.length) return `${a.length} events against ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const kx = x.kind === 'error' ? `error ${x.code}` : x.hex;
    const ky = y.kind === 'error' ? `error ${y.code}` : y.hex;
    if (kx !== ky) return `event ${i}: ${kx.slice(0, 60)} against ${ky.slice(0, 60)}`;
  }
  return undefined;
}

function checkWire({ options, bytes, cuts }: WireInput): Outcome {
  const whole = decode(options, [bytes], false);
  const split = decode(options, splitAt(bytes, cuts), false);
  const reused = decode(options, splitAt(bytes, cuts), true);
  let diff = sameEvents(whole.events, split.events);
  if (diff) violation(`split at ${JSON.stringify(cuts)} decodes differently from one chunk: ${diff}`);
  diff = sameEvents(whole.events, reused.events);
  if (diff) violation(`chunks overwritten after push decode differently: ${diff}`);
  if (bytes.length <= 400) {
    const single = decode(options, splitAt(bytes, Array.from({ length: bytes.length }, (_, i) => i)), true);
    diff = sameEvents(whole.events, single.events);
    if (diff) violation(`byte by byte decodes differently: ${diff}`);
  }
  // Delivered events are exactly the bytes they came from (the codec is canonical).
  const delivered = Buffer.from(whole.events.map((e) => (e.kind === 'error' ? '' : e.hex)).join(''), 'hex');
  check(delivered.equals(bytes.subarray(0, delivered.length)), 'delivered messages re-encode to other bytes than were received');
  // Extension handshakes go on to their own parser, as the engine does.
  for (const e of whole.events) {
    if (e.kind === 'message' && e.message.type === 'extended' && e.message.id === 0) checkExtensionPayload(e.message.payload);
  }
  const error = whole.events.find((e) => e.kind === 'error');
  if (error && error.kind === 'error') {
    check(error.code !== 'internal', 'the decoder failed internally');
    return { rejected: 'ProtocolError', code: error.code };
  }
  return 'accepted';
}

export const wireTarget: FuzzTarget<WireInput> = {
  name: 'wire',
  about: 'WireDecoder.push (whole, split, byte by byte, reused chunks)',
  arbitrary: wireInput,
  setup: () => ({ check: checkWire }),
};

// ---- extension handshake -----------------------------------------------------------------

function checkExtensionPayload(payload: Buffer, expected?: ExtensionHandshake): Outcome {
  const parsed = expectTyped(() => parseExtensionHandshake(payload), ProtocolError);
  if ('rejected' in parsed) {
    check(parsed.rejected.code === 'bad-extension-handshake', `refused with code ${parsed.rejected.code}`);
    check(expected === undefined, () => `our own extension handshake was refused: ${parsed.message}`);
    return parsed.rejected;
  }
  const h = parsed.value;
  check(Object.getPrototypeOf(h.m) === null, 'extension map has a prototype');
  for (const [name, id] of Object.entries(h.m)) check(Number.isInteger(id) && id >= 0 && id <= 255, `m.${name} = ${id}`);
  check(h.v === undefined || typeof h.v === 'string', 'v is not text');
  check(h.p === undefined || (Number.isInteger(h.p) && h.p >= 0 && h.p <= 0xffff), `p = ${h.p}`);
  check(h.reqq === undefined || (Number.isSafeInteger(h.reqq) && h.reqq >= 0), `reqq = ${h.reqq}`);
  check(h.yourip === undefined || h.yourip.length === 4 || h.yourip.length === 16, 'yourip length');
  check(h.metadata_size === undefined || (Number.isSafeInteger(h.metadata_size) && h.metadata_size >= 0), `metadata_size = ${h.metadata_size}`);
  if (expected) {
    check(JSON.stringify(Object.entries(h.m).sort()) === JSON.stringify(Object.entries(expected.m).sort()), 'm differs from what was written');
    check(h.v === expected.v && h.p === expected.p && h.reqq === expected.reqq && h.metadata_size === expected.metadata_size, 'v, p, reqq or metadata_size differ');
    check((h.yourip === undefined) === (expected.yourip === undefined) && (!h.yourip || h.yourip.equals(expected.yourip!)), 'yourip differs');
  }
  return 'accepted';
}

type ExtensionInput = { payload: Buffer; expected?: ExtensionHandshake };

const handshakeTree = extensionHandshake.map((h) => {
  const t: Record<string, Tree> = { m: { ...h.m } };
  for (const k of ['v', 'p', 'reqq', 'yourip', 'metadata_size'] as const) if (h[k] !== undefined) t[k] = h[k];
  return t as Tree;
});

const extensionKey = fc.oneof(fc.constantFrom('m', 'v', 'p', 'reqq', 'yourip', 'metadata_size', 'ut_metadata', ...PROTOTYPE_KEYS), fc.string({ maxLength: 6 }));
const extensionLeaf = fc.oneof(fc.constantFrom<Tree>(-1, 256, 65_536, 2 ** 53 - 1, -(2 ** 53 - 1), Buffer.alloc(5), Buffer.alloc(0), [], {}), bencodeValue);

const extensionInput: fc.Arbitrary<ExtensionInput> = fc.oneof(
  { weight: 1, arbitrary: extensionHandshake.map((h) => ({ payload: encodeExtensionHandshake(h).subarray(6), expected: h })) },
  { weight: 3, arbitrary: mutatedBytes(extensionHandshake.map((h) => encodeExtensionHandshake(h).subarray(6)), BENCODE_TOKENS).map((payload) => ({ payload })) },
  {
    weight: 3,
    arbitrary: mutatedTree(handshakeTree, extensionLeaf, extensionKey).map((t) => {
      try {
        return { payload: encode(t as Encodable) };
      } catch {
        return { payload: Buffer.alloc(0) };
      }
    }),
  },
  { weight: 1, arbitrary: bytes(60).map((payload) => ({ payload })) },
);

export const extensionTarget: FuzzTarget<ExtensionInput> = {
  name: 'wire-extension',
  about: 'parseExtensionHandshake, encodeExtensionHandshake',
  arbitrary: extensionInput,
  setup: () => ({ check: ({ payload, expected }) => checkExtensionPayload(payload, expected) }),
};
