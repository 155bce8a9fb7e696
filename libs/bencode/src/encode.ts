import { BencodeError, MAX_DEPTH, type Encodable } from './value.js';

/**
 * Encodes a value as canonical bencode: dictionary keys sorted by raw bytes, integers
 * without leading zeros. What `decodeStrict` returns encodes back to the same bytes.
 *
 * Keys are binary strings (one char per byte, 0–255) as `decodeStrict` returns them;
 * string *values* are written as UTF-8. Dictionary entries whose value is `undefined`
 * are left out, so optional fields can be written inline. Anything that has no exact
 * bencode form (fractions, unsafe integers, null, booleans, keys with chars above 0xFF,
 * cycles or nesting deeper than `MAX_DEPTH`) is a `BencodeError` with code 'unencodable'
 * or 'too-deep', rather than being rounded or skipped silently.
 */
export function encode(value: Encodable): Buffer {
  const writer = new Writer();
  writer.value(value, 0);
  return writer.finish();
}

class Writer {
  private readonly parts: Buffer[] = [];
  /** ASCII framing (lengths, 'd', 'i…e') gathered into one string between byte strings. */
  private pending = '';
  private readonly path: (string | number)[] = [];

  finish(): Buffer {
    this.flush();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
  }

  private flush(): void {
    if (this.pending) {
      this.parts.push(Buffer.from(this.pending, 'latin1'));
      this.pending = '';
    }
  }

  private bytes(b: Uint8Array): void {
    this.pending += `${b.byteLength}:`;
    if (b.byteLength === 0) return;
    this.flush();
    this.parts.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  private fail(detail: string, code: 'unencodable' | 'too-deep' = 'unencodable'): never {
    throw new BencodeError(code, -1, this.path.slice(), detail);
  }

  value(v: unknown, depth: number): void {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) this.fail(`${v} is not an integer within ±(2^53 − 1)`);
      // `${-0}` is '0', so negative zero comes out canonical too.
      this.pending += `i${v}e`;
    } else if (typeof v === 'string') {
      this.bytes(Buffer.from(v, 'utf8'));
    } else if (v instanceof Uint8Array) {
      this.bytes(v);
    } else if (Array.isArray(v)) {
      if (depth >= MAX_DEPTH) this.fail(`lists and dictionaries nested deeper than ${MAX_DEPTH} (or a cycle)`, 'too-deep');
      this.pending += 'l';
      for (let i = 0; i < v.length; i++) {
        this.path.push(i);
        this.value(v[i], depth + 1);
        this.path.pop();
      }
      this.pending += 'e';
    } else if (isPlainObject(v)) {
      if (depth >= MAX_DEPTH) this.fail(`lists and dictionaries nested deeper than ${MAX_DEPTH} (or a cycle)`, 'too-deep');
      // Keys are checked to be ≤ 0xFF, so UTF-16 code unit order is raw byte order.
      const keys = Object.keys(v).sort();
      this.pending += 'd';
      for (const key of keys) {
        const item = v[key];
        if (item === undefined) continue;
        this.path.push(key);
        if (!isBinaryString(key)) this.fail('dictionary key has a character above 0xFF (keys are binary strings; use Buffer.from(key).toString("latin1") for UTF-8)');
        this.pending += `${key.length}:${key}`;
        this.value(item, depth + 1);
        this.path.pop();
      }
      this.pending += 'e';
    } else {
      this.fail(`${v === null ? 'null' : typeof v} has no bencode form`);
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === null || proto === Object.prototype;
}

function isBinaryString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}
