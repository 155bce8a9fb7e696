/**
 * A bencoded value as this library hands it out.
 *
 * - Byte strings are `Buffer`s (bencode strings are bytes, not text).
 * - Dictionaries are objects without a prototype, keyed by *binary strings*: each key
 *   byte becomes one UTF-16 code unit 0–255 (latin1). That is lossless for any key, so
 *   two different raw keys never collapse into one, and it makes JavaScript's string order
 *   equal to the raw byte order bencode sorts by. Every key a torrent or the wire uses is
 *   ASCII, where the binary string is the ordinary string.
 */
export type BencodeValue = number | Buffer | BencodeValue[] | BencodeDict;

export interface BencodeDict {
  [key: string]: BencodeValue;
}

/** What `encode` accepts: a `BencodeValue`, plus text (written as UTF-8) and `undefined` dict entries (left out). */
export type Encodable = number | string | Uint8Array | readonly Encodable[] | { readonly [key: string]: Encodable | undefined };

/** Why a byte sequence is not canonical bencode, or a value cannot be encoded. */
export type BencodeErrorCode =
  | 'empty'
  | 'truncated'
  | 'unexpected-byte'
  | 'bad-integer'
  | 'integer-leading-zero'
  | 'negative-zero'
  | 'integer-too-large'
  | 'bad-string-length'
  | 'string-length-leading-zero'
  | 'string-out-of-bounds'
  | 'key-not-string'
  | 'unsorted-keys'
  | 'duplicate-key'
  | 'too-deep'
  | 'trailing-bytes'
  | 'not-a-dictionary'
  | 'unencodable';

/** Where a fault sits: dictionary keys (binary strings) and list indexes from the top. */
export type BencodePath = (string | number)[];

export class BencodeError extends Error {
  override name = 'BencodeError';

  constructor(
    readonly code: BencodeErrorCode,
    /** Byte offset of the fault in the input; -1 for encoding faults. */
    readonly offset: number,
    readonly path: BencodePath,
    /** The fault alone, without position; `message` adds where it is. */
    readonly detail: string,
  ) {
    super(offset >= 0 ? `${detail} at byte ${offset}${path.length ? ` (${formatPath(path)})` : ''}` : `${detail}${path.length ? ` at ${formatPath(path)}` : ''}`);
  }
}

/** `['info', 'files', 3, 'path']` → `info.files[3].path`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${printableKey(part)}` : printableKey(part);
  }
  return out;
}

function printableKey(key: string): string {
  // Keys are binary strings; anything outside printable ASCII is shown as escapes so an
  // error message stays one readable line.
  return key.replace(/[^\x20-\x7e]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** How deep lists and dictionaries may nest; real torrents and wire messages use 4 or fewer. */
export const MAX_DEPTH = 64;
