import { BencodeError, decodeStrict, dictionarySpans, formatPath, type BencodeDict, type BencodeErrorCode, type BencodeValue } from '../../bencode/src/index.js';
import {
  infoHashOf,
  isValidPieceLength,
  MAX_PIECE_LENGTH,
  MetainfoError,
  MIN_PIECE_LENGTH,
  PIECES_SHA256_KEY,
  unsafePathElement,
  type Metainfo,
  type MetainfoErrorCode,
  type MetainfoFile,
} from './metainfo.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });

/** Bencode faults that are valid bencode written the wrong way, not garbage. */
const NOT_CANONICAL: ReadonlySet<BencodeErrorCode> = new Set(['bad-integer', 'integer-leading-zero', 'negative-zero', 'string-length-leading-zero', 'unsorted-keys', 'duplicate-key']);

/**
 * Parses and checks a .torrent. Every fault is a `MetainfoError` naming the field; no
 * other exception escapes, whatever the bytes.
 *
 * The whole document must be canonical bencode, not only `info`: every mainstream tool
 * writes it that way, and a document that is not is more likely damaged than foreign.
 * Unknown keys are ignored (BEP 3 asks for that). Files are checked to stay inside the
 * torrent's directory and not to collide, since their paths end up on every node's disk.
 *
 * `rawInfo` and `pieceHashes` are views into `buf`, not copies (the pieces of a large
 * torrent are 100 MB and more): do not change or reuse `buf` while the result is in use.
 */
export function parseTorrent(buf: Uint8Array): Metainfo {
  try {
    return parse(Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  } catch (err) {
    if (err instanceof MetainfoError) throw err;
    if (err instanceof BencodeError) {
      const code: MetainfoErrorCode = NOT_CANONICAL.has(err.code) ? 'not-canonical' : err.code === 'integer-too-large' ? 'bad-value' : 'malformed';
      throw new MetainfoError(formatPath(err.path), code, `${err.detail} at byte ${err.offset}`, { cause: err });
    }
    // A bug of ours, not the input's fault; still reported as this one error type so
    // callers handling untrusted torrents have one thing to catch.
    throw new MetainfoError('', 'malformed', `could not be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function parse(buf: Buffer): Metainfo {
  const top = decodeStrict(buf);
  if (!isDict(top)) throw new MetainfoError('', 'wrong-type', `expected a dictionary, got ${typeName(top)}`);
  const info = dict(top, 'info', '');
  const infoSpan = dictionarySpans(buf).get('info')!;

  if (info['meta version'] === 2 && info['pieces'] === undefined) {
    throw new MetainfoError('info', 'unsupported', 'v2-only torrents (BEP 52) are not supported; create a v1 or hybrid torrent');
  }

  const name = pathText(bytes(info, 'name', 'info'), 'info.name');
  const pieceLength = integer(info, 'piece length', 'info');
  if (!isValidPieceLength(pieceLength)) {
    throw new MetainfoError('info.piece length', 'bad-value', `${pieceLength} is not a power of two from ${MIN_PIECE_LENGTH} to ${MAX_PIECE_LENGTH}`);
  }
  const pieces = bytes(info, 'pieces', 'info');
  if (pieces.length % 20 !== 0) throw new MetainfoError('info.pieces', 'bad-value', `length ${pieces.length} is not a multiple of 20`);

  const hasLength = info['length'] !== undefined;
  const hasFiles = info['files'] !== undefined;
  if (hasLength && hasFiles) throw new MetainfoError('info', 'bad-value', "has both 'length' (single file) and 'files' (multi-file)");
  if (!hasLength && !hasFiles) throw new MetainfoError('info.length', 'missing', "neither 'length' (single file) nor 'files' (multi-file) is present");

  let files: MetainfoFile[];
  let length: number;
  if (hasLength) {
    length = integer(info, 'length', 'info');
    if (length < 0) throw new MetainfoError('info.length', 'bad-value', `${length} is negative`);
    files = [{ path: [name], length, offset: 0 }];
  } else {
    files = parseFiles(info);
    const last = files[files.length - 1]!;
    length = last.offset + last.length;
  }
  // libtorrent refuses such torrents too, and there is nothing to verify or transfer.
  if (length === 0) throw new MetainfoError(hasLength ? 'info.length' : 'info.files', 'bad-value', 'the torrent holds no data');

  const pieceCount = Math.ceil(length / pieceLength);
  if (pieces.length / 20 !== pieceCount) {
    throw new MetainfoError('info.pieces', 'piece-count-mismatch', `${pieces.length / 20} piece hashes for ${length} bytes in ${pieceLength}-byte pieces; expected ${pieceCount}`);
  }

  let pieceSha256: Buffer | undefined;
  if (info[PIECES_SHA256_KEY] !== undefined) {
    pieceSha256 = bytes(info, PIECES_SHA256_KEY, 'info');
    if (pieceSha256.length !== pieceCount * 32) {
      throw new MetainfoError(`info.${PIECES_SHA256_KEY}`, 'piece-count-mismatch', `${pieceSha256.length} bytes; ${pieceCount} pieces need ${pieceCount * 32}`);
    }
  }

  let isPrivate = false;
  if (info['private'] !== undefined) {
    const p = integer(info, 'private', 'info');
    if (p !== 0 && p !== 1) throw new MetainfoError('info.private', 'bad-value', `${p} is neither 0 nor 1`);
    isPrivate = p === 1;
  }

  const rawInfo = buf.subarray(infoSpan.start, infoSpan.end);
  const infoHash = infoHashOf(rawInfo);

  const m: Metainfo = {
    infoHash,
    infoHashHex: infoHash.toString('hex'),
    name,
    pieceLength,
    pieceCount,
    pieceHashes: pieces,
    ...(pieceSha256 ? { pieceSha256 } : {}),
    length,
    files,
    singleFile: hasLength,
    private: isPrivate,
    announceList: announceList(top),
    urlList: urlList(top),
    rawInfo,
  };
  if (top['announce'] !== undefined) m.announce = text(bytes(top, 'announce', ''), 'announce');
  if (top['comment'] !== undefined) m.comment = utf8Lossy.decode(bytes(top, 'comment', ''));
  if (top['created by'] !== undefined) m.createdBy = utf8Lossy.decode(bytes(top, 'created by', ''));
  if (top['creation date'] !== undefined) m.creationDate = integer(top, 'creation date', '');
  return m;
}

function parseFiles(info: BencodeDict): MetainfoFile[] {
  const list = value(info, 'files', 'info');
  if (!Array.isArray(list)) throw new MetainfoError('info.files', 'wrong-type', `expected a list, got ${typeName(list)}`);
  if (list.length === 0) throw new MetainfoError('info.files', 'bad-value', 'the file list is empty');

  const files: MetainfoFile[] = [];
  /** File path (elements joined by '/', which no element contains) → its index. */
  const filePaths = new Map<string, number>();
  /** Directory path → the first file inside it. */
  const dirPaths = new Map<string, number>();
  let offset = 0;
  for (let i = 0; i < list.length; i++) {
    const field = `info.files[${i}]`;
    const entry = list[i];
    if (!isDict(entry)) throw new MetainfoError(field, 'wrong-type', `expected a dictionary, got ${typeName(entry)}`);
    const length = integer(entry, 'length', field);
    if (length < 0) throw new MetainfoError(`${field}.length`, 'bad-value', `${length} is negative`);
    const rawPath = value(entry, 'path', field);
    if (!Array.isArray(rawPath)) throw new MetainfoError(`${field}.path`, 'wrong-type', `expected a list, got ${typeName(rawPath)}`);
    if (rawPath.length === 0) throw new MetainfoError(`${field}.path`, 'unsafe-path', 'the path has no elements');
    const path = rawPath.map((element, j) => {
      const f = `${field}.path[${j}]`;
      if (!Buffer.isBuffer(element)) throw new MetainfoError(f, 'wrong-type', `expected a string, got ${typeName(element)}`);
      return pathText(element, f);
    });
    let pad = false;
    if (entry['attr'] !== undefined) pad = bytes(entry, 'attr', field).includes(0x70 /* 'p' */);
    if (offset + length > Number.MAX_SAFE_INTEGER) throw new MetainfoError(`${field}.length`, 'bad-value', 'the files add up to more than 2^53 − 1 bytes');

    // Padding files are never written, and libtorrent gives equal-sized ones equal names.
    if (!pad) {
      const key = path.join('/');
      const sameFile = filePaths.get(key);
      if (sameFile !== undefined) throw new MetainfoError(`${field}.path`, 'duplicate-path', `'${key}' is also info.files[${sameFile}]`);
      const inside = dirPaths.get(key);
      if (inside !== undefined) throw new MetainfoError(`${field}.path`, 'duplicate-path', `'${key}' is a file but also the directory of info.files[${inside}]`);
      let dir = '';
      for (let j = 0; j < path.length - 1; j++) {
        dir = j === 0 ? path[0]! : `${dir}/${path[j]}`;
        const clash = filePaths.get(dir);
        if (clash !== undefined) throw new MetainfoError(`${field}.path`, 'duplicate-path', `'${dir}' is a directory here but the file info.files[${clash}]`);
        if (!dirPaths.has(dir)) dirPaths.set(dir, i);
      }
      filePaths.set(key, i);
    }
    const file: MetainfoFile = { path, length, offset };
    if (pad) file.pad = true;
    files.push(file);
    offset += length;
  }
  return files;
}

function announceList(top: BencodeDict): string[][] {
  if (top['announce-list'] === undefined) return [];
  const tiers = value(top, 'announce-list', '');
  if (!Array.isArray(tiers)) throw new MetainfoError('announce-list', 'wrong-type', `expected a list of lists, got ${typeName(tiers)}`);
  const out: string[][] = [];
  tiers.forEach((tier, i) => {
    if (!Array.isArray(tier)) throw new MetainfoError(`announce-list[${i}]`, 'wrong-type', `expected a list, got ${typeName(tier)}`);
    const urls = tier.map((url, j) => {
      if (!Buffer.isBuffer(url)) throw new MetainfoError(`announce-list[${i}][${j}]`, 'wrong-type', `expected a string, got ${typeName(url)}`);
      return text(url, `announce-list[${i}][${j}]`);
    });
    // Empty tiers and empty URLs occur in the wild and mean nothing.
    const kept = urls.filter((u) => u !== '');
    if (kept.length > 0) out.push(kept);
  });
  return out;
}

function urlList(top: BencodeDict): string[] {
  const v = top['url-list'];
  if (v === undefined) return [];
  // BEP 19 allows a single string as well as a list.
  if (Buffer.isBuffer(v)) return v.length ? [text(v, 'url-list')] : [];
  if (!Array.isArray(v)) throw new MetainfoError('url-list', 'wrong-type', `expected a string or a list, got ${typeName(v)}`);
  return v
    .map((u, i) => {
      if (!Buffer.isBuffer(u)) throw new MetainfoError(`url-list[${i}]`, 'wrong-type', `expected a string, got ${typeName(u)}`);
      return text(u, `url-list[${i}]`);
    })
    .filter((u) => u !== '');
}

function isDict(v: BencodeValue | undefined): v is BencodeDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function typeName(v: BencodeValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number') return 'an integer';
  if (Buffer.isBuffer(v)) return 'a string';
  if (Array.isArray(v)) return 'a list';
  return 'a dictionary';
}

function join(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

function value(d: BencodeDict, key: string, parent: string): BencodeValue {
  const v = d[key];
  if (v === undefined) throw new MetainfoError(join(parent, key), 'missing', 'is required');
  return v;
}

function dict(d: BencodeDict, key: string, parent: string): BencodeDict {
  const v = value(d, key, parent);
  if (!isDict(v)) throw new MetainfoError(join(parent, key), 'wrong-type', `expected a dictionary, got ${typeName(v)}`);
  return v;
}

function integer(d: BencodeDict, key: string, parent: string): number {
  const v = value(d, key, parent);
  if (typeof v !== 'number') throw new MetainfoError(join(parent, key), 'wrong-type', `expected an integer, got ${typeName(v)}`);
  return v;
}

function bytes(d: BencodeDict, key: string, parent: string): Buffer {
  const v = value(d, key, parent);
  if (!Buffer.isBuffer(v)) throw new MetainfoError(join(parent, key), 'wrong-type', `expected a string, got ${typeName(v)}`);
  return v;
}

function text(b: Buffer, field: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new MetainfoError(field, 'bad-value', 'is not valid UTF-8');
  }
}

/** A name that becomes a file or directory: UTF-8, so it round-trips, and safe. */
function pathText(b: Buffer, field: string): string {
  const s = text(b, field);
  const problem = unsafePathElement(s);
  if (problem) throw new MetainfoError(field, 'unsafe-path', problem);
  return s;
}
