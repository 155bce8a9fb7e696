import { createHash } from 'node:crypto';

/** One file of a torrent, in the order its bytes appear in the pieces. */
export interface MetainfoFile {
  /** Path elements below the torrent's directory; single-file torrents have `[name]`. */
  path: string[];
  length: number;
  /** Where the file's first byte sits in the concatenation of all files. */
  offset: number;
  /**
   * A BEP 47 padding file (attr 'p'): its bytes are zeros that only align the next file
   * to a piece boundary, and it is never written to disk. libtorrent adds them to hybrid
   * v1/v2 torrents. Absent on ordinary files.
   */
  pad?: true;
}

/** The info key swarmship puts each piece's SHA-256 under (32 bytes a piece); other clients ignore it. */
export const PIECES_SHA256_KEY = 'pieces sha256';

/** A parsed .torrent (BEP 3 v1 info dictionary plus the outer fields we use). */
export interface Metainfo {
  /** SHA-1 of `rawInfo`. */
  infoHash: Buffer;
  infoHashHex: string;
  name: string;
  pieceLength: number;
  pieceCount: number;
  /** 20 bytes per piece; a view into the parsed bytes. */
  pieceHashes: Buffer;
  /** 32 bytes per piece (SHA-256), when the info dictionary has `pieces sha256` (torrents swarmship makes for releases). */
  pieceSha256?: Buffer;
  /** Total bytes of all files. */
  length: number;
  files: MetainfoFile[];
  singleFile: boolean;
  private: boolean;
  announce?: string;
  /** BEP 12 tiers; empty when the torrent has none. */
  announceList: string[][];
  /** BEP 19 web seeds. */
  urlList: string[];
  comment?: string;
  createdBy?: string;
  /** Seconds since the Unix epoch. */
  creationDate?: number;
  /** The bencoded info dictionary exactly as it appeared: a view into the parsed bytes. */
  rawInfo: Buffer;
}

export type MetainfoErrorCode =
  /** Not bencode at all: truncated, garbage, trailing bytes. */
  | 'malformed'
  /** Bencode, but not in its one canonical form (unsorted keys, leading zeros, '+', '-0'). */
  | 'not-canonical'
  | 'missing'
  | 'wrong-type'
  | 'bad-value'
  | 'piece-count-mismatch'
  | 'unsafe-path'
  | 'duplicate-path'
  /** Valid, but a kind of torrent we do not handle (v2-only, BEP 52). */
  | 'unsupported';

/**
 * Why a .torrent was refused: `field` names the key path (`info.files[3].path[1]`, or ''
 * for the document itself) and the message reads as one line:
 * `invalid torrent: info.pieces: length 61 is not a multiple of 20`.
 */
export class MetainfoError extends Error {
  override name = 'MetainfoError';

  constructor(
    readonly field: string,
    readonly code: MetainfoErrorCode,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`invalid torrent: ${field ? `${field}: ` : ''}${detail}`, options);
  }
}

/** The 20-byte SHA-1 of piece `index`. */
export function pieceHash(m: Metainfo, index: number): Buffer {
  checkPieceIndex(m, index);
  return m.pieceHashes.subarray(index * 20, index * 20 + 20);
}

/** Bytes in piece `index`: the piece length, except for a shorter last piece. */
export function pieceSize(m: Metainfo, index: number): number {
  checkPieceIndex(m, index);
  return index < m.pieceCount - 1 ? m.pieceLength : m.length - (m.pieceCount - 1) * m.pieceLength;
}

function checkPieceIndex(m: Metainfo, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= m.pieceCount) {
    throw new RangeError(`piece index ${index} is outside 0..${m.pieceCount - 1}`);
  }
}

/** The v1 info hash: SHA-1 of the bencoded info dictionary, byte for byte. */
export function infoHashOf(rawInfo: Uint8Array): Buffer {
  return createHash('sha1').update(rawInfo).digest();
}

export const MIN_PIECE_LENGTH = 16 * 1024;
/** libtorrent refuses anything larger, and a verifier holds a whole piece in memory. */
export const MAX_PIECE_LENGTH = 512 * 1024 * 1024;

export function isValidPieceLength(n: number): boolean {
  return Number.isSafeInteger(n) && n >= MIN_PIECE_LENGTH && n <= MAX_PIECE_LENGTH && (n & (n - 1)) === 0;
}

/**
 * Why a path element (a file or directory name) could escape or confuse the directory
 * it is placed in, or undefined when it is safe. The same rule applies when creating and
 * when parsing, so we never make a torrent we would refuse.
 */
export function unsafePathElement(element: string): string | undefined {
  if (element === '') return 'empty path element';
  if (element === '.' || element === '..') return `path element '${element}' leaves the directory`;
  if (element.includes('/') || element.includes('\\')) return `path element ${JSON.stringify(element)} contains a path separator`;
  if (element.includes('\0')) return `path element ${JSON.stringify(element)} contains a NUL byte`;
  // A drive prefix makes the element absolute (or drive-relative) on Windows.
  if (/^[A-Za-z]:/.test(element)) return `path element ${JSON.stringify(element)} starts with a drive letter`;
  return undefined;
}
