import type { HashPool, PieceDigests } from './hash-pool.js';

/** Everything a torrent with piece SHA-256s and a signed manifest need to know of one file's bytes. */
export interface FileDigests extends Required<PieceDigests> {
  /** SHA-256 of the whole file, hex. */
  fileSha256: string;
}

/** Pieces hashed per job: small enough for the jobs to spread over the workers and for progress to move. */
const PIECE_BYTES_PER_JOB = 32 * 1024 * 1024;

/**
 * Hashes a file of `bytes` on the pool's workers: each piece's SHA-1 and SHA-256, and the
 * whole file's SHA-256, which cannot be split, on one worker while the others take the
 * pieces in runs. The workers read the file themselves. `onProgress` hears the bytes of
 * pieces done.
 */
export async function fileDigests(pool: HashPool, path: string, bytes: number, pieceLength: number, onProgress?: (bytesDone: number) => void): Promise<FileDigests> {
  const pieceCount = Math.ceil(bytes / pieceLength);
  const sha1 = Buffer.alloc(pieceCount * 20);
  const sha256 = Buffer.alloc(pieceCount * 32);
  const whole = pool.sha256Files([{ path, position: 0, length: bytes }]);
  const perJob = Math.max(1, Math.floor(PIECE_BYTES_PER_JOB / pieceLength));
  let done = 0;
  const jobs: Promise<void>[] = [];
  for (let first = 0; first < pieceCount; first += perJob) {
    const position = first * pieceLength;
    const length = Math.min(bytes, (first + perJob) * pieceLength) - position;
    jobs.push(
      pool.pieceDigests([{ path, position, length }], pieceLength, true).then((d) => {
        d.sha1.copy(sha1, first * 20);
        d.sha256!.copy(sha256, first * 32);
        onProgress?.((done += length));
      }),
    );
  }
  const [fileSha256] = await Promise.all([whole, ...jobs]);
  return { sha1, sha256, fileSha256: (fileSha256 as Buffer).toString('hex') };
}
