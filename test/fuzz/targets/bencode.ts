/**
 * libs/bencode: `decodeStrict` and `dictionarySpans` on hostile bytes, `encode` on any
 * JavaScript value. Canonical form makes the round trip exact both ways: what the
 * decoder accepts re-encodes to the very same bytes, and what the encoder writes the
 * decoder accepts.
 */
import fc from 'fast-check';
import { BencodeError, decodeStrict, dictionarySpans, encode, type BencodeValue, type Encodable } from '../../../libs/bencode/src/index.js';
import { PROTOTYPE_KEYS, isDict, mutatedBytes, mutatedTree, type Tree } from '../mutate.js';
import { check, expectTyped, violation, type FuzzTarget, type Outcome } from '../runner.js';

export const BENCODE_TOKENS = [
  'i', 'e', 'l', 'd', 'le', 'de', 'ie', 'i-e', '0:', '1:', '4:spam', ':', '-', '0', 'i-0e', 'i01e', 'i-01e', 'i+1e', 'i1.5e',
  'i9007199254740991e', 'i9007199254740992e', 'i-9007199254740992e', '9007199254740993:', '99999999999:', '01:a',
  'd1:ai1e1:ai2ee', 'd1:bi1e1:ai1ee', 'di1ei2ee', 'l'.repeat(63), 'l'.repeat(65), 'd1:a'.repeat(40), 'e'.repeat(8),
];

/** Dictionary keys are binary strings (one char per byte); mostly short ASCII, sometimes any byte. */
export const binaryKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('a', 'b', 'info', 'length', 'path', 'name', 'pieces', 'piece length', ...PROTOTYPE_KEYS),
  fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u).toString('latin1')),
);

export const bencodeInteger: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.maxSafeInteger(),
  fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 32, 2 ** 32 - 1),
);

export const byteString: fc.Arbitrary<Buffer> = fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u));

/** Any bencode value, as plain JavaScript (dictionaries are ordinary objects). */
export const bencodeValue: fc.Arbitrary<Encodable> = fc.letrec<{ value: Encodable; list: Encodable[]; dict: Record<string, Encodable> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, bencodeInteger, byteString, tie('list'), tie('dict')),
  list: fc.array(tie('value'), { maxLength: 5 }),
  dict: fc.dictionary(binaryKey, tie('value'), { maxKeys: 5 }),
})).value;

/** Leaves a tree mutation swaps in: every bencode type, boundary integers, empty containers. */
export const bencodeLeaf: fc.Arbitrary<Tree> = fc.oneof(bencodeInteger, byteString, fc.constantFrom<Tree>([], {}, Buffer.alloc(0), -1, 0, 2 ** 53 - 1), bencodeValue);

type BencodeInput = { decode: Buffer } | { encode: unknown };

const validBytes = bencodeValue.map((v) => encode(v));

/** Random bytes over bencode's own alphabet reach further than uniformly random ones. */
const bencodeAlphabetBytes = fc
  .array(fc.constantFrom(...'ilde0123456789:-'.split('')), { maxLength: 40 })
  .map((chars) => Buffer.from(chars.join(''), 'latin1'));

const deepNesting = fc
  .record({ open: fc.constantFrom('l', 'd1:a'), depth: fc.integer({ min: 50, max: 20_000 }), close: fc.boolean() })
  .map(({ open, depth, close }) => Buffer.from(open.repeat(depth) + 'i1e' + (close ? 'e'.repeat(depth) : ''), 'latin1'));

export const bencodeInput: fc.Arbitrary<BencodeInput> = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((u) => ({ decode: Buffer.from(u) })) },
  { weight: 1, arbitrary: bencodeAlphabetBytes.map((b) => ({ decode: b })) },
  { weight: 2, arbitrary: validBytes.map((b) => ({ decode: b })) },
  { weight: 6, arbitrary: mutatedBytes(validBytes, BENCODE_TOKENS).map((b) => ({ decode: b })) },
  { weight: 1, arbitrary: deepNesting.map((b) => ({ decode: b })) },
  { weight: 1, arbitrary: mutatedTree(bencodeValue, bencodeLeaf, binaryKey).map((t) => ({ encode: t })) },
  {
    weight: 1,
    arbitrary: fc
      .anything({ withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true, withTypedArray: true, withSparseArray: true, withBigInt: true, withDate: true })
      .map((v) => ({ encode: v })),
  },
);

/** Structural equality of decoded bencode (Buffers by bytes, dictionaries by own keys). */
export function sameBencode(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameBencode(x, b[i]));
  if (isDict(a) && isDict(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameBencode(a[k], b[k]));
  }
  return false;
}

function checkDecode(buf: Buffer): Outcome {
  const decoded = expectTyped(() => decodeStrict(buf), BencodeError);
  if ('rejected' in decoded) {
    // Whatever refused the bytes must say where, inside them.
    try {
      decodeStrict(buf);
    } catch (err) {
      const e = err as BencodeError;
      check(e.offset >= 0 && e.offset <= buf.length, `error offset ${e.offset} outside the ${buf.length}-byte input`);
    }
    // dictionarySpans validates the same way: it must refuse too.
    const spans = expectTyped(() => dictionarySpans(buf), BencodeError);
    check('rejected' in spans, 'dictionarySpans accepted bytes that decodeStrict refused');
    return decoded.rejected;
  }
  const value = decoded.value;
  const again = encode(value);
  check(again.equals(buf), () => `accepted bytes re-encode differently: ${again.toString('latin1').slice(0, 80)}`);
  if (isDict(value)) {
    const spans = dictionarySpans(buf);
    const keys = Object.keys(value as Record<string, BencodeValue>).sort();
    check(keys.length === spans.size && keys.every((k) => spans.has(k)), 'dictionarySpans keys differ from the decoded dictionary');
    for (const [key, span] of spans) {
      check(span.start >= 0 && span.start < span.end && span.end <= buf.length, `span of '${key}' outside the input`);
      check(encode((value as Record<string, BencodeValue>)[key]!).equals(buf.subarray(span.start, span.end)), `span of '${key}' does not hold its value`);
    }
  } else {
    const spans = expectTyped(() => dictionarySpans(buf), BencodeError);
    check('rejected' in spans && spans.rejected.code === 'not-a-dictionary', 'dictionarySpans accepted a document that is not a dictionary');
  }
  return 'accepted';
}

function checkEncode(value: unknown): Outcome {
  const encoded = expectTyped(() => encode(value as Encodable), BencodeError);
  if ('rejected' in encoded) {
    check(encoded.rejected.code === 'unencodable' || encoded.rejected.code === 'too-deep', `encode refused with code ${encoded.rejected.code}`);
    return encoded.rejected;
  }
  // What we write must be canonical: the strict decoder reads it back to the same value.
  const back = expectTyped(() => decodeStrict(encoded.value), BencodeError);
  if ('rejected' in back) violation(`encode wrote bytes decodeStrict refuses (${back.rejected.code}): ${encoded.value.toString('latin1').slice(0, 80)}`);
  check(encode(back.value).equals(encoded.value), 'encode(decodeStrict(encode(x))) differs from encode(x)');
  if (isPureBencode(value)) check(sameBencode(back.value, value), 'decodeStrict(encode(x)) is not x');
  return 'accepted';
}

/** A value built only of what decodeStrict gives back (no text values, no undefined entries). */
function isPureBencode(v: unknown): boolean {
  if (typeof v === 'number') return true;
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.every(isPureBencode);
  if (isDict(v)) return Object.values(v).every(isPureBencode);
  return false;
}

export const bencodeTarget: FuzzTarget<BencodeInput> = {
  name: 'bencode',
  about: 'decodeStrict, dictionarySpans, encode',
  arbitrary: bencodeInput,
  setup: () => ({ check: (input) => ('decode' in input ? checkDecode(input.decode) : checkEncode(input.encode)) }),
};
