import { BencodeError, MAX_DEPTH, type BencodeDict, type BencodeErrorCode, type BencodeValue } from './value.js';

const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_D = 0x64;
const CH_E = 0x65;
const CH_I = 0x69;
const CH_L = 0x6c;

export interface Span {
  /** First byte of the value. */
  start: number;
  /** One past its last byte. */
  end: number;
}

/**
 * Decodes canonical bencode (BEP 3, as BEP 3 and libtorrent's strict mode read it) and
 * refuses anything else with a `BencodeError`: integers without '+', leading zeros,
 * '-0' or fractions and within ±2^53−1; string lengths without leading zeros and inside
 * the buffer; dictionary keys unique and sorted by their raw bytes; nesting at most
 * `MAX_DEPTH`; nothing after the value.
 *
 * Canonical form matters because an info hash is the SHA-1 of the exact bytes: a lax
 * decoder that re-encodes would compute a different hash than every other client.
 *
 * Byte strings are returned as views into `buf` (no copy, so a 100 MB `pieces` string
 * costs nothing); copy them if `buf` will be reused. Dictionary keys are binary strings
 * (see `BencodeValue`).
 */
export function decodeStrict(buf: Uint8Array): BencodeValue {
  return new Scanner(asBuffer(buf), true, null).document();
}

/**
 * Validates `buf` like `decodeStrict` (it must be a dictionary) and returns where each
 * top-level value lies, so a caller can hash the `info` value exactly as it appears.
 */
export function dictionarySpans(buf: Uint8Array): Map<string, Span> {
  const spans = new Map<string, Span>();
  const b = asBuffer(buf);
  if (b.length > 0 && b[0] !== CH_D) throw new BencodeError('not-a-dictionary', 0, [], 'expected a dictionary');
  new Scanner(b, false, spans).document();
  return spans;
}

function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * One pass over the bytes. Strings are skipped by their length, never walked, so the cost
 * is the number of tokens, not the number of bytes. With `build` off nothing is kept but
 * the key being visited (for error paths).
 */
class Scanner {
  private pos = 0;
  /** Keys and indexes from the top to the current value, for error messages. */
  private readonly path: (string | number)[] = [];

  constructor(
    private readonly buf: Buffer,
    private readonly build: boolean,
    private readonly topSpans: Map<string, Span> | null,
  ) {}

  document(): BencodeValue {
    if (this.buf.length === 0) this.fail('empty', 0, 'no bytes to decode');
    const value = this.value(0);
    if (this.pos !== this.buf.length) this.fail('trailing-bytes', this.pos, `${this.buf.length - this.pos} byte(s) after the end of the value`);
    return value as BencodeValue;
  }

  private fail(code: BencodeErrorCode, offset: number, detail: string): never {
    throw new BencodeError(code, offset, this.path.slice(), detail);
  }

  private value(depth: number): BencodeValue | undefined {
    const buf = this.buf;
    if (this.pos >= buf.length) this.fail('truncated', this.pos, 'input ends where a value should start');
    const c = buf[this.pos]!;
    if (c === CH_I) return this.integer();
    if (c >= CH_0 && c <= CH_9) {
      const start = this.string();
      return this.build ? buf.subarray(start, this.pos) : undefined;
    }
    if (c === CH_L || c === CH_D) {
      if (depth >= MAX_DEPTH) this.fail('too-deep', this.pos, `lists and dictionaries nested deeper than ${MAX_DEPTH}`);
      return c === CH_L ? this.list(depth + 1) : this.dictionary(depth + 1);
    }
    return this.fail('unexpected-byte', this.pos, `byte 0x${c.toString(16).padStart(2, '0')} starts no bencode value`);
  }

  private integer(): number {
    const buf = this.buf;
    const start = this.pos;
    let i = start + 1;
    let negative = false;
    if (i < buf.length && buf[i] === CH_MINUS) {
      negative = true;
      i++;
    }
    const firstDigit = i;
    let n = 0;
    while (i < buf.length) {
      const c = buf[i]!;
      if (c === CH_E) break;
      if (c < CH_0 || c > CH_9) this.fail('bad-integer', i, `byte 0x${c.toString(16).padStart(2, '0')} in an integer (only an optional '-' and digits are allowed)`);
      const d = c - CH_0;
      if (n > (Number.MAX_SAFE_INTEGER - d) / 10) this.fail('integer-too-large', start, 'integer beyond ±(2^53 − 1)');
      n = n * 10 + d;
      i++;
    }
    if (i >= buf.length) this.fail('truncated', buf.length, 'input ends inside an integer');
    if (i === firstDigit) this.fail('bad-integer', start, 'integer without digits');
    if (buf[firstDigit] === CH_0) {
      if (negative) this.fail('negative-zero', start, "'-0' is not canonical");
      if (i - firstDigit > 1) this.fail('integer-leading-zero', start, 'integer with a leading zero');
    }
    this.pos = i + 1;
    return negative ? -n : n;
  }

  /** Skips a byte string and returns where its bytes start; `pos` ends after them. */
  private string(): number {
    const buf = this.buf;
    const start = this.pos;
    let i = start;
    let n = 0;
    while (i < buf.length) {
      const c = buf[i]!;
      if (c === CH_COLON) break;
      if (c < CH_0 || c > CH_9) this.fail('bad-string-length', i, `byte 0x${c.toString(16).padStart(2, '0')} in a string length`);
      n = n * 10 + (c - CH_0);
      // Past the end of the buffer the string cannot fit anyway; stopping here also
      // keeps `n` far from the limit of exact integers.
      if (n > buf.length) this.fail('string-out-of-bounds', start, 'string longer than the input');
      i++;
    }
    if (i >= buf.length) this.fail('truncated', buf.length, 'input ends inside a string length');
    if (buf[start] === CH_0 && i - start > 1) this.fail('string-length-leading-zero', start, 'string length with a leading zero');
    const dataStart = i + 1;
    if (n > buf.length - dataStart) this.fail('string-out-of-bounds', start, `string of ${n} bytes runs past the end of the input`);
    this.pos = dataStart + n;
    return dataStart;
  }

  private list(depth: number): BencodeValue[] | undefined {
    const buf = this.buf;
    const items: BencodeValue[] | undefined = this.build ? [] : undefined;
    this.pos++;
    let index = 0;
    for (;;) {
      if (this.pos >= buf.length) this.fail('truncated', this.pos, 'input ends inside a list');
      if (buf[this.pos] === CH_E) break;
      this.path.push(index);
      const item = this.value(depth);
      this.path.pop();
      if (items) items.push(item!);
      index++;
    }
    this.pos++;
    return items;
  }

  private dictionary(depth: number): BencodeDict | undefined {
    const buf = this.buf;
    const dict: BencodeDict | undefined = this.build ? (Object.create(null) as BencodeDict) : undefined;
    const spans = depth === 1 ? this.topSpans : null;
    this.pos++;
    let prevStart = -1;
    let prevEnd = -1;
    for (;;) {
      if (this.pos >= buf.length) this.fail('truncated', this.pos, 'input ends inside a dictionary');
      const c = buf[this.pos]!;
      if (c === CH_E) break;
      if (c < CH_0 || c > CH_9) this.fail('key-not-string', this.pos, 'dictionary key is not a byte string');
      const keyOffset = this.pos;
      const keyStart = this.string();
      const keyEnd = this.pos;
      if (prevStart >= 0) {
        const order = buf.compare(buf, prevStart, prevEnd, keyStart, keyEnd);
        if (order === 0) this.fail('duplicate-key', keyOffset, `duplicate key '${buf.toString('latin1', keyStart, keyEnd)}'`);
        if (order < 0) this.fail('unsorted-keys', keyOffset, `key '${buf.toString('latin1', keyStart, keyEnd)}' is not sorted after '${buf.toString('latin1', prevStart, prevEnd)}'`);
      }
      prevStart = keyStart;
      prevEnd = keyEnd;
      const key = buf.toString('latin1', keyStart, keyEnd);
      this.path.push(key);
      const valueStart = this.pos;
      const value = this.value(depth);
      this.path.pop();
      if (dict) dict[key] = value!;
      if (spans) spans.set(key, { start: valueStart, end: this.pos });
    }
    this.pos++;
    return dict;
  }
}
