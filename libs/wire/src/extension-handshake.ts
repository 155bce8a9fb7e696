/**
 * BEP 10 extension handshake: the bencoded dictionary carried by extended message 0.
 */
import bencode from 'bencode';
import { MessageId, ProtocolError, type ExtensionHandshake } from './messages.js';

/** Extended message ids are one byte on the wire. */
const MAX_EXTENSION_ID = 255;
/** Deeper nesting than this is an attack, not a handshake; it also bounds bencode's recursion. */
const MAX_NESTING = 32;

/**
 * Message "extended" handshake (BEP 10): <len=0002+X><id=20><extended id=0><bencoded dictionary>
 *
 * Only the known keys are written; bencode sorts dictionary keys as BEP 3 requires.
 */
export function encodeExtensionHandshake(h: ExtensionHandshake): Buffer {
  const dict: Record<string, unknown> = { m: { ...h.m } };
  if (h.v !== undefined) dict.v = h.v;
  if (h.p !== undefined) dict.p = h.p;
  if (h.reqq !== undefined) dict.reqq = h.reqq;
  if (h.yourip !== undefined) dict.yourip = h.yourip;
  if (h.metadata_size !== undefined) dict.metadata_size = h.metadata_size;
  const body = bencode.encode(dict);
  const out = Buffer.allocUnsafe(6 + body.length);
  out.writeUInt32BE(2 + body.length, 0);
  out[4] = MessageId.extended;
  out[5] = 0;
  out.set(body, 6);
  return out;
}

/**
 * Reads the payload of extended message 0 (the bytes after the extended id). Unknown keys
 * are ignored; a known key of the wrong type, or bytes that are not exactly one bencoded
 * dictionary, is a ProtocolError('bad-extension-handshake') and nothing else is thrown.
 */
export function parseExtensionHandshake(payload: Buffer): ExtensionHandshake {
  // bencode's decoder trusts its input: a negative string length sends it backwards into
  // an endless loop, and a truncated string is silently shortened. So the syntax is
  // checked here first and bencode only ever sees well-formed bytes.
  const syntaxError = checkBencodeSyntax(payload);
  if (syntaxError !== undefined) throw bad(syntaxError);
  let value: unknown;
  try {
    value = bencode.decode(payload);
  } catch (err) {
    throw bad('not bencoded', err);
  }
  if (!isDictionary(value)) throw bad('not a dictionary');

  // Own keys only: a "__proto__" key in the input becomes the decoded object's prototype.
  const result: ExtensionHandshake = { m: readExtensionMap(ownValue(value, 'm')) };
  const v = ownValue(value, 'v');
  if (v !== undefined) {
    if (!isBytes(v)) throw bad('v must be a string');
    result.v = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  }
  const p = ownValue(value, 'p');
  if (p !== undefined) result.p = readInteger('p', p, 0, 0xffff);
  const reqq = ownValue(value, 'reqq');
  if (reqq !== undefined) result.reqq = readInteger('reqq', reqq, 0, Number.MAX_SAFE_INTEGER);
  const yourip = ownValue(value, 'yourip');
  if (yourip !== undefined) {
    if (!isBytes(yourip) || (yourip.length !== 4 && yourip.length !== 16)) {
      throw bad('yourip must be a 4 or 16 byte string');
    }
    result.yourip = Buffer.from(yourip.buffer, yourip.byteOffset, yourip.byteLength);
  }
  const metadataSize = ownValue(value, 'metadata_size');
  if (metadataSize !== undefined) {
    result.metadata_size = readInteger('metadata_size', metadataSize, 0, Number.MAX_SAFE_INTEGER);
  }
  return result;
}

/**
 * The map has no prototype, so a peer naming an extension "constructor" or "toString"
 * cannot make a lookup find an inherited function.
 */
function readExtensionMap(m: unknown): Record<string, number> {
  const out = Object.create(null) as Record<string, number>;
  // BEP 10 lets a later handshake carry only some keys, so a missing "m" is an empty map.
  if (m === undefined) return out;
  if (!isDictionary(m)) throw bad('m must be a dictionary');
  for (const name of Object.keys(m)) out[name] = readInteger(`m.${name}`, m[name], 0, MAX_EXTENSION_ID);
  return out;
}

function readInteger(key: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw bad(`${key} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

function isDictionary(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isBytes(value);
}

/**
 * A byte string as bencode decodes it. Not `instanceof Uint8Array`: a dictionary whose
 * "__proto__" key holds a string gets a Uint8Array as its prototype, passes instanceof,
 * and throws a TypeError on `.length`.
 */
function isBytes(value: unknown): value is Uint8Array {
  return ArrayBuffer.isView(value);
}

function ownValue(dict: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(dict, key) ? dict[key] : undefined;
}

function bad(why: string, cause?: unknown): ProtocolError {
  return new ProtocolError('bad-extension-handshake', `bad extension handshake: ${why}`, cause === undefined ? undefined : { cause });
}

const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_D = 0x64;
const CH_E = 0x65;
const CH_I = 0x69;
const CH_L = 0x6c;

const IN_LIST = 0;
const EXPECT_KEY = 1;
const EXPECT_VALUE = 2;

/**
 * Checks that `b` is exactly one canonical-enough bencoded value: lengths and integers
 * without sign tricks or leading zeros, strings inside the buffer, dictionary keys that
 * are strings, nothing after the end. Returns why not, or undefined.
 */
function checkBencodeSyntax(b: Uint8Array): string | undefined {
  const open: number[] = [];
  let pos = 0;
  do {
    if (pos >= b.length) return 'truncated';
    const c = b[pos]!;
    const top = open.length === 0 ? -1 : open[open.length - 1]!;
    if (c === CH_E) {
      if (top !== IN_LIST && top !== EXPECT_KEY) return `unexpected end at byte ${pos}`;
      open.pop();
      pos++;
    } else if (top === EXPECT_KEY && (c < CH_0 || c > CH_9)) {
      return `dictionary key at byte ${pos} is not a string`;
    } else if (c === CH_L || c === CH_D) {
      if (open.length >= MAX_NESTING) return 'nested too deeply';
      open.push(c === CH_L ? IN_LIST : EXPECT_KEY);
      pos++;
      continue;
    } else if (c === CH_I) {
      const end = scanDigits(b, pos + 1, true, CH_E);
      if (end < 0) return `bad integer at byte ${pos}`;
      pos = end + 1;
    } else if (c >= CH_0 && c <= CH_9) {
      const colon = scanDigits(b, pos, false, CH_COLON);
      if (colon < 0) return `bad string length at byte ${pos}`;
      const length = Number(Buffer.from(b.buffer, b.byteOffset + pos, colon - pos).toString('latin1'));
      if (length > b.length - colon - 1) return `string at byte ${pos} runs past the end`;
      pos = colon + 1 + length;
    } else {
      return `unexpected byte 0x${c.toString(16)} at ${pos}`;
    }
    // A complete value (scalar or closed container) flips the enclosing dictionary
    // between expecting a key and expecting its value.
    const parent = open.length - 1;
    if (parent >= 0 && open[parent] !== IN_LIST) open[parent] = open[parent] === EXPECT_KEY ? EXPECT_VALUE : EXPECT_KEY;
  } while (open.length > 0);
  return pos === b.length ? undefined : 'trailing bytes after the dictionary';
}

/**
 * Digits from `start` up to `terminator`: at least one, no leading zero, at most 15 (so
 * the number stays exact), a minus sign only where allowed and never on zero. Returns
 * the terminator's position or -1.
 */
function scanDigits(b: Uint8Array, start: number, signed: boolean, terminator: number): number {
  let pos = start;
  const negative = signed && b[pos] === CH_MINUS;
  if (negative) pos++;
  const first = pos;
  while (pos < b.length && b[pos]! >= CH_0 && b[pos]! <= CH_9) pos++;
  const digits = pos - first;
  if (digits === 0 || digits > 15 || pos >= b.length || b[pos] !== terminator) return -1;
  if (b[first] === CH_0 && (digits > 1 || negative)) return -1;
  return pos;
}
