import type { HashPool, PieceDigests } from '../../hashing/src/hash-pool.js';
import { FileStorage } from '../../engine/src/storage.js';

/** Bytes of pieces being hashed and written at once (at least two pieces, whatever their size). */
const IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/** Why an ingest stopped: a write failed (`code` is the errno name, e.g. ENOSPC). */
export class IngestWriteError extends Error {
  override name = 'IngestWriteError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** A piece of an upload whose digests were sent ahead of it did not match them. */
export class IngestDigestError extends Error {
  override name = 'IngestDigestError';
}

export interface PieceIngestOptions {
  /**
   * The SHA-256 of every piece, as the sender announced them before the bytes: each piece
   * is verified by its own (as agents verify it) and written only if it matches, instead
   * of having its digests taken. Each one on disk is handed to `onPiece` (an origin seeds
   * it from then on).
   */
  expectedSha256?: Buffer;
  onPiece?: (index: number) => void;
}

/**
 * Receives an upload of known size and makes its torrent's piece digests on the way to
 * disk: bytes are gathered into whole pieces, and each full piece goes to a hash worker
 * that takes its SHA-1 and SHA-256 and writes it past the page cache (O_DIRECT, where the
 * filesystem has it). When the last byte is in, the digests are too, so the torrent is
 * made without reading the artifact back, and a big upload does not push everything
 * else out of the controller's page cache on its way through.
 *
 * push() resolves once there is room for more, so a caller that awaits it reads from the
 * socket no faster than the workers hash and the disk takes.
 */
export class PieceIngest {
  private readonly pieceCount: number;
  private readonly sha1: Buffer;
  private readonly sha256: Buffer;
  private readonly free: Buffer[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxInFlight: number;
  private current: Buffer | undefined;
  private filled = 0;
  private nextPiece = 0;
  private failure: IngestWriteError | IngestDigestError | undefined;

  private constructor(
    private readonly pool: HashPool,
    private readonly storage: FileStorage,
    /** The file being written. */
    readonly path: string,
    readonly totalBytes: number,
    readonly pieceLength: number,
    private readonly options: PieceIngestOptions,
  ) {
    this.pieceCount = Math.ceil(totalBytes / pieceLength);
    // Digests are taken only when none were sent ahead to verify against.
    const taken = options.expectedSha256 ? 0 : this.pieceCount;
    this.sha1 = Buffer.alloc(taken * 20);
    this.sha256 = Buffer.alloc(taken * 32);
    this.maxInFlight = Math.max(2, Math.floor(IN_FLIGHT_BYTES / pieceLength));
  }

  /** Creates `path` (sparse, `totalBytes` long) and gets ready to receive it. */
  static async create(pool: HashPool, path: string, totalBytes: number, pieceLength: number, options: PieceIngestOptions = {}): Promise<PieceIngest> {
    if (!(totalBytes > 0)) throw new RangeError(`an ingest needs at least one byte, not ${totalBytes}`);
    const pieces = Math.ceil(totalBytes / pieceLength);
    if (options.expectedSha256 && options.expectedSha256.length !== pieces * 32) throw new RangeError(`expected digests are not those of ${pieces} pieces`);
    const storage = await FileStorage.openForWriting([{ path, length: totalBytes, offset: 0 }], { directIo: true });
    return new PieceIngest(pool, storage, path, totalBytes, pieceLength, options);
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.nextPiece * this.pieceLength + this.filled;
  }

  /** Takes the next bytes of the upload; rejects with IngestWriteError once a write has failed (IngestDigestError once a piece did not match). */
  async push(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.bytes + chunk.length > this.totalBytes) throw new RangeError(`more than the ${this.totalBytes} bytes announced`);
    let from = 0;
    while (from < chunk.length) {
      this.current ??= this.free.pop() ?? Buffer.allocUnsafeSlow(this.pieceLength);
      const n = Math.min(chunk.length - from, this.pieceLength - this.filled);
      chunk.copy(this.current, this.filled, from, from + n);
      this.filled += n;
      from += n;
      if (this.filled === this.pieceLength) this.dispatch();
      // Waiting here holds the caller's reads: the socket fills and the sender slows down.
      while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
      if (this.failure) throw this.failure;
    }
  }

  /** The digests taken of each piece (empty when verifying against expected ones): whole once finish() has resolved. */
  get digests(): PieceDigests {
    return { sha1: this.sha1, sha256: this.sha256 };
  }

  /** Once every announced byte is in: waits for the last pieces and flushes the file to disk. */
  async finish(): Promise<void> {
    if (this.bytes !== this.totalBytes) throw new RangeError(`received ${this.bytes} of ${this.totalBytes} bytes`);
    if (this.filled > 0) this.dispatch();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    try {
      await this.storage.sync();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new IngestWriteError(e.message, e.code);
    }
    await this.storage.close();
  }

  /** Gives up: waits for pieces under way (their memory is the workers'), then closes the file. */
  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    await this.storage.close();
  }

  private dispatch(): void {
    const piece = this.nextPiece++;
    const buffer = this.current!;
    const length = this.filled;
    this.current = undefined;
    this.filled = 0;
    const writes = this.storage.segments(piece * this.pieceLength, length)!;
    const expected = this.options.expectedSha256?.subarray(piece * 32, piece * 32 + 32);
    const done = (r: { buffer: Buffer; writeError?: { code: string | undefined; message: string } }, matched: boolean) => {
      this.free.push(r.buffer);
      if (r.writeError) this.failure ??= new IngestWriteError(r.writeError.message, r.writeError.code);
      else if (!matched) this.failure ??= new IngestDigestError(`piece ${piece} of the upload does not match the SHA-256 sent ahead of it (did the file change after it was hashed?)`);
      else if (!this.failure) this.options.onPiece?.(piece);
    };
    const job = (
      expected
        ? this.pool.verifyAndWrite(buffer, length, expected, writes).then((r) => done(r, r.ok))
        : this.pool.digestAndWrite(buffer, length, writes).then((r) => {
            r.sha1.copy(this.sha1, piece * 20);
            r.sha256.copy(this.sha256, piece * 32);
            done(r, true);
          })
    ).catch((err: unknown) => {
      this.failure ??= new IngestWriteError((err as Error).message, undefined);
    });
    const tracked = job.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }
}
