import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import bencode from 'bencode';
import { BencodeError, decodeStrict, dictionarySpans, encode, MAX_DEPTH, type BencodeDict, type BencodeErrorCode, type BencodeValue } from '../src/index.js';

const binaryKey = fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1'));

function dictOf(entries: [string, BencodeValue][]): BencodeDict {
  const d = Object.create(null) as BencodeDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

const { value: bencodeValue } = fc.letrec<{ value: BencodeValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.array(fc.tuple(binaryKey, tie('value')), { maxLength: 5 }).map(dictOf),
  ),
}));

/** Values whose keys are ASCII: the only ones the `bencode` package handles faithfully. */
const { value: asciiKeyedValue } = fc.letrec<{ value: BencodeValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.array(fc.tuple(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 8 }), tie('value')), { maxLength: 5 }).map(dictOf),
  ),
}));

function codeOf(input: string | Buffer, decoder: (b: Buffer) => unknown = decodeStrict): { code: BencodeErrorCode; offset: number } {
  try {
    decoder(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  } catch (err) {
    if (err instanceof BencodeError) return { code: err.code, offset: err.offset };
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be refused`);
}

describe('decodeStrict and encode', () => {
  it('round-trips every value: encode → decodeStrict gives the value back, and its bytes again', () => {
    fc.assert(
      fc.property(bencodeValue, (v) => {
        const bytes = encode(v);
        const back = decodeStrict(bytes);
        expect(back).toEqual(v);
        expect(encode(back).equals(bytes)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes the same bytes as the bencode package, and reads them back the same way, where keys are ASCII', () => {
    fc.assert(
      fc.property(asciiKeyedValue, (v) => {
        const ours = encode(v);
        expect(Buffer.from(bencode.encode(v)).equals(ours)).toBe(true);
        const theirs = bencode.decode(ours);
        expect(encode(theirs as BencodeValue).equals(ours)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps non-UTF-8 keys apart (the package turns them into hex, where "\\xff" and "ff" would collide)', () => {
    const bytes = Buffer.concat([Buffer.from('d2:ffi1e1:'), Buffer.from([0xff]), Buffer.from('i2ee')]);
    const d = decodeStrict(bytes) as BencodeDict;
    expect(Object.keys(d)).toEqual(['ff', '\xff']);
    expect(encode(d).equals(bytes)).toBe(true);
  });

  it('returns byte strings as views of the input, so a huge pieces string is not copied', () => {
    const pieces = Buffer.alloc(20 * 1024 * 1024, 7);
    const bytes = Buffer.concat([Buffer.from(`d6:pieces${pieces.length}:`), pieces, Buffer.from('e')]);
    const d = decodeStrict(bytes) as BencodeDict;
    const p = d['pieces'] as Buffer;
    expect(p.length).toBe(pieces.length);
    expect(p.buffer).toBe(bytes.buffer);
  });

  it('gives dictionaries no prototype, so keys like __proto__ are plain data', () => {
    const d = decodeStrict(Buffer.from('d9:__proto__i1e11:constructori2ee')) as BencodeDict;
    expect(Object.getPrototypeOf(d)).toBe(null);
    expect(d['__proto__']).toBe(1);
    expect(d['constructor']).toBe(2);
  });

  it('accepts the integer limits and refuses what has no exact form when encoding', () => {
    expect(decodeStrict(Buffer.from(`i${Number.MAX_SAFE_INTEGER}e`))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeStrict(Buffer.from(`i${-Number.MAX_SAFE_INTEGER}e`))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeStrict(Buffer.from('i0e'))).toBe(0);
    expect(encode(-0).toString()).toBe('i0e');
    expect(encode({ b: 'é', a: undefined }).toString('latin1')).toBe('d1:b2:\xc3\xa9e');
    for (const bad of [1.5, Number.MAX_SAFE_INTEGER + 1, NaN, null, true, { k: null }, { '\u0100': 1 }]) {
      expect(() => encode(bad as never)).toThrow(BencodeError);
    }
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => encode(cycle as never)).toThrow(/nested deeper/);
  });
});

describe('each non-canonical form has its own error code and offset', () => {
  const cases: [string, string, BencodeErrorCode, number][] = [
    ['empty input', '', 'empty', 0],
    ['a byte that starts nothing', 'x', 'unexpected-byte', 0],
    ['an integer cut short', 'i12', 'truncated', 3],
    ["'+' in an integer", 'i+1e', 'bad-integer', 1],
    ['a fraction', 'i1.5e', 'bad-integer', 2],
    ['an integer without digits', 'ie', 'bad-integer', 0],
    ['a lone minus', 'i-e', 'bad-integer', 0],
    ['a leading zero', 'i03e', 'integer-leading-zero', 0],
    ['negative zero', 'i-0e', 'negative-zero', 0],
    ['an integer beyond 2^53 − 1', 'i9007199254740992e', 'integer-too-large', 0],
    ['a string length with a leading zero', '03:abc', 'string-length-leading-zero', 0],
    ['a string past the end', 'l4:abe', 'string-out-of-bounds', 1],
    ['a huge string length', '99999999999999999999999:a', 'string-out-of-bounds', 0],
    ['a non-digit in a string length', '3x:abc', 'bad-string-length', 1],
    ['a string length cut short', '1', 'truncated', 1],
    ['an integer key', 'di1ei2ee', 'key-not-string', 1],
    ['unsorted keys', 'd1:bi1e1:ai2ee', 'unsorted-keys', 7],
    ['keys sorted as text but not as bytes', 'd2:aai1e1:ai2ee', 'unsorted-keys', 8],
    ['a duplicate key', 'd1:ai1e1:ai2ee', 'duplicate-key', 7],
    ['an unterminated list', 'li1e', 'truncated', 4],
    ['an unterminated dictionary', 'd1:a', 'truncated', 4],
    ['a key without a value', 'd1:ae', 'unexpected-byte', 4],
    ['bytes after the value', 'i1ei2e', 'trailing-bytes', 3],
    ['nesting deeper than the limit', 'l'.repeat(MAX_DEPTH + 1) + 'e'.repeat(MAX_DEPTH + 1), 'too-deep', MAX_DEPTH],
  ];
  it.each(cases)('%s', (_name, input, code, offset) => {
    expect(codeOf(input)).toEqual({ code, offset });
  });

  it('nests exactly to the limit', () => {
    expect(() => decodeStrict(Buffer.from('l'.repeat(MAX_DEPTH) + 'e'.repeat(MAX_DEPTH)))).not.toThrow();
  });

  it('names where the fault is in one line', () => {
    try {
      decodeStrict(Buffer.from('d4:infod5:filesld6:lengthi-0eeeee'));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(BencodeError);
      expect((err as BencodeError).path).toEqual(['info', 'files', 0, 'length']);
      expect((err as Error).message).toBe("'-0' is not canonical at byte 25 (info.files[0].length)");
    }
  });
});

describe('dictionarySpans', () => {
  it('gives each top-level value exactly as it appears', () => {
    const bytes = Buffer.from('d8:announce3:url4:infod4:name1:xe3:zzzli1eee');
    const spans = dictionarySpans(bytes);
    expect([...spans.keys()]).toEqual(['announce', 'info', 'zzz']);
    const info = spans.get('info')!;
    expect(bytes.subarray(info.start, info.end).toString()).toBe('d4:name1:xe');
    const zzz = spans.get('zzz')!;
    expect(bytes.subarray(zzz.start, zzz.end).toString()).toBe('li1ee');
  });

  it('validates the whole document and wants a dictionary', () => {
    expect(codeOf('li1ee', dictionarySpans).code).toBe('not-a-dictionary');
    expect(codeOf('d4:infod1:bi1e1:ai1eee', dictionarySpans).code).toBe('unsorted-keys');
    expect(codeOf('d4:infodeex', dictionarySpans).code).toBe('trailing-bytes');
  });
});

describe('any bytes give a value or a BencodeError, nothing else', () => {
  const mustOnlyThrowBencodeError = (bytes: Uint8Array) => {
    for (const f of [decodeStrict, dictionarySpans]) {
      try {
        f(Buffer.from(bytes));
      } catch (err) {
        if (!(err instanceof BencodeError)) throw err;
      }
    }
  };

  it('for arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), mustOnlyThrowBencodeError), { numRuns: 5000 });
  });

  it('for bytes drawn from the bencode alphabet', () => {
    const alphabet = Buffer.from('ilde0123456789:-+.x');
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: alphabet.length - 1 }), { maxLength: 120 }).map((ix) => Uint8Array.from(ix, (i) => alphabet[i]!)), mustOnlyThrowBencodeError), { numRuns: 5000 });
  });

  it('for valid encodings with a few bytes changed, and whatever decodes re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(bencodeValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (v, edits) => {
        const bytes = Buffer.from(encode(v));
        for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
        mustOnlyThrowBencodeError(bytes);
        let decoded: BencodeValue | undefined;
        try {
          decoded = decodeStrict(bytes);
        } catch {
          return;
        }
        expect(encode(decoded).equals(bytes)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
