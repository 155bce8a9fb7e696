import { isValidPieceLength } from '../../metainfo/src/metainfo.js';
import { DIGEST_BYTES_PER_PIECE } from '../../contracts/src/rest.js';
import { badRequest } from './errors.js';
import type { UploadClaim } from './release-store.js';

/**
 * The largest piece length an announced upload may use: the largest the controller picks
 * itself. The ingest holds a few pieces in memory at once.
 */
const MAX_UPLOAD_PIECE_LENGTH = 16 * 1024 * 1024;

/** The headers that describe an announced upload, as they arrived. */
export interface RawUploadClaim {
  size: unknown;
  pieceLength: unknown;
  sha256: unknown;
  contentLength: number | undefined;
}

/** Checks the headers and says how long the digests at the body's start are. */
export function parseUploadClaim(raw: RawUploadClaim): { bytes: number; pieceLength: number; sha256: string; digestBytes: number } {
  const bytes = Number(raw.size);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw badRequest('X-Swarmship-Size', `the artifact's length in bytes is required (got ${String(raw.size)})`);
  const pieceLength = Number(raw.pieceLength);
  if (!isValidPieceLength(pieceLength) || pieceLength > MAX_UPLOAD_PIECE_LENGTH) {
    throw badRequest('X-Swarmship-Piece-Length', `${String(raw.pieceLength)} is not a power of two from 16 KiB to 16 MiB`);
  }
  const sha256 = String(raw.sha256 ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw badRequest('X-Swarmship-Sha256', "the artifact's SHA-256 is required, as 64 hex digits");
  const digestBytes = Math.ceil(bytes / pieceLength) * DIGEST_BYTES_PER_PIECE;
  if (raw.contentLength !== digestBytes + bytes) {
    throw badRequest('Content-Length', `expected ${digestBytes} bytes of piece digests and the ${bytes} of the artifact (${digestBytes + bytes}), got ${raw.contentLength ?? 'none'}`);
  }
  return { bytes, pieceLength, sha256, digestBytes };
}

/**
 * Splits a body into its first `n` bytes and the rest, without copying the rest: the
 * chunk that straddles the boundary is cut in two views.
 */
export async function readOpening(body: AsyncIterable<Buffer>, n: number): Promise<{ opening: Buffer; rest: AsyncIterable<Buffer> }> {
  const it = body[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let have = 0;
  let leftover: Buffer | undefined;
  while (have < n) {
    const next = await it.next();
    if (next.done) throw badRequest('body', `the upload ended within its piece digests (${have} of ${n} bytes)`);
    const chunk = next.value;
    const take = Math.min(chunk.length, n - have);
    parts.push(chunk.subarray(0, take));
    have += take;
    if (take < chunk.length) leftover = chunk.subarray(take);
  }
  // Stopping early does not end `body`: a request destroyed with it could not be answered
  // (as `destroyOnReturn: false` for a plain upload).
  async function* rest(): AsyncGenerator<Buffer> {
    if (leftover) yield leftover;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { opening: Buffer.concat(parts, n), rest: rest() };
}

/** The claim an opening of `digestBytes` carries. */
export function claimOf(parsed: ReturnType<typeof parseUploadClaim>, opening: Buffer): UploadClaim {
  const pieces = parsed.digestBytes / DIGEST_BYTES_PER_PIECE;
  return {
    bytes: parsed.bytes,
    pieceLength: parsed.pieceLength,
    sha256: parsed.sha256,
    digests: { sha1: opening.subarray(0, pieces * 20), sha256: opening.subarray(pieces * 20) },
  };
}
