import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

/** Where part of a piece goes on disk: `length` bytes from `from` in the piece, at `position` of descriptor `fd`. */
export interface WriteSegment {
  fd: number;
  position: number;
  from: number;
  length: number;
  /**
   * The same file opened with O_DIRECT: the whole 4 KiB blocks of the segment are written
   * through it, past the page cache; the unaligned head and tail go through `fd`.
   */
  directFd?: number;
}

/** File offsets and lengths of direct writes are multiples of this (every device's logical block divides it). */
export const DIRECT_IO_ALIGNMENT = 4096;

/** Part of a byte stream to hash: `length` bytes of the file at `path` from `position`. */
export interface ReadSegment {
  path: string;
  position: number;
  length: number;
}

export class HashReadError extends Error {
  override name = 'HashReadError';
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly path: string | undefined,
  ) {
    super(message);
  }
}

export interface VerifyResult {
  /** The digest matched, and every segment was written. */
  ok: boolean;
  /** The piece's memory, handed back (the caller's buffer was moved to the worker). */
  buffer: Buffer;
  /** Set when the digest matched but a write failed. */
  writeError?: { code: string | undefined; message: string };
  /**
   * Verified by SHA-256 and it failed, but the piece's SHA-1 matched: the bytes are the
   * torrent's, so the SHA-256 digests disagree with the torrent (not the peer's fault).
   */
  sha1Matched?: boolean;
}

/** A piece hashed and written by digestAndWrite(): its digests, and its memory handed back. */
export interface DigestWriteResult {
  sha1: Buffer;
  sha256: Buffer;
  buffer: Buffer;
  /** Set when a write failed (the digests are still the piece's). */
  writeError?: { code: string | undefined; message: string };
}

/** Per-piece digests of a byte stream: SHA-1 (20 bytes a piece), and SHA-256 (32 bytes a piece) when asked. */
export interface PieceDigests {
  sha1: Buffer;
  sha256?: Buffer;
}

/**
 * SHA-1 on worker threads, so hashing never blocks the thread that moves bytes.
 *
 * Two ways in:
 * - `sha1(view)`: views of a SharedArrayBuffer are hashed in place; any other view is
 *   copied once into the message.
 * - `verifyAndWrite(piece, …)`: the piece's ArrayBuffer is moved (transferred, not
 *   copied) to a worker that hashes it and, if it matches, writes it to disk itself
 *   with positional writes, then moves it back. A downloaded piece thus costs the
 *   thread that moves bytes nothing after its last block arrives: profiles showed the
 *   kernel's copy into the page cache and lock contention between concurrent writes to
 *   one file as a leecher's largest costs, and a worker writing alone avoids both.
 *
 * Jobs go to the worker with the fewest bytes queued.
 */
export class HashPool {
  private readonly workers: PoolWorker[] = [];
  private nextJobId = 1;
  private closed = false;

  constructor(size: number = availableParallelism()) {
    const writeLock = new SharedArrayBuffer(4);
    for (let i = 0; i < Math.max(1, size); i++) this.workers.push(new PoolWorker(writeLock));
  }

  get size(): number {
    return this.workers.length;
  }

  /** SHA-1 of `data` (a view; only its bytes are hashed). */
  sha1(data: Uint8Array): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    return this.leastBusy().hash(this.nextJobId++, data, 'sha1');
  }

  /** SHA-256 of `data`, as sha1(). */
  sha256(data: Uint8Array): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    return this.leastBusy().hash(this.nextJobId++, data, 'sha256');
  }

  /**
   * SHA-1 of every piece of a byte stream that a worker reads from disk itself: the
   * concatenation of `segments`, cut into pieces of `pieceLength` (the last may be
   * shorter). Returns the digests, 20 bytes a piece. Reading in the worker keeps the
   * thread that asked free and both the read and the hash on the same core.
   */
  hashFiles(segments: ReadSegment[], pieceLength: number): Promise<Buffer> {
    return this.pieceDigests(segments, pieceLength, false).then((d) => d.sha1);
  }

  /** Like hashFiles, with each piece's SHA-256 as well when `sha256` is set (one read, two digests). */
  pieceDigests(segments: ReadSegment[], pieceLength: number, sha256: boolean): Promise<PieceDigests> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    const bytes = segments.reduce((n, s) => n + s.length, 0);
    // Weighed by the hashing it costs (two digests a byte with SHA-256), so that jobs of
    // both kinds spread evenly over the workers.
    return this.leastBusy().hashFiles(this.nextJobId++, segments, pieceLength, sha256 ? 2 * bytes : bytes, sha256);
  }

  /**
   * SHA-256 of the concatenation of `segments`, read from disk by a worker in 1 MiB
   * chunks. Between chunks the worker turns to its other jobs, so a large artifact
   * delays the pieces it verifies by one chunk's hashing at most (under a millisecond).
   * With `direct`, files are read past the page cache where the filesystem allows (a
   * file written so is not cached, and a read-back should not fill the cache with it).
   */
  sha256Files(segments: ReadSegment[], options: { direct?: boolean } = {}): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    const bytes = segments.reduce((n, s) => n + s.length, 0);
    return this.leastBusy().sha256Files(this.nextJobId++, segments, bytes, options.direct === true);
  }

  /**
   * Hashes `piece` and, if the digest equals `expected`, writes it to `writes`. `piece`
   * must be the whole of its own ArrayBuffer (byteOffset 0, not shared): that buffer is
   * moved to the worker, so `piece` is empty until the result hands the memory back.
   * A 32-byte `expected` is a SHA-256, a 20-byte one a SHA-1; with a SHA-256, `sha1` (the
   * torrent's digest) is checked only when it fails, to tell whose fault it is.
   */
  verifyAndWrite(piece: Buffer, length: number, expected: Buffer, writes: WriteSegment[], sha1?: Buffer): Promise<VerifyResult> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    if (!ownsWholeBuffer(piece)) return Promise.reject(new Error('verifyAndWrite needs a buffer that owns its whole ArrayBuffer'));
    return this.leastBusy().verifyAndWrite(this.nextJobId++, piece, length, expected, writes, sha1);
  }

  /**
   * SHA-1 and SHA-256 of `piece` (its first `length` bytes), which is then written to
   * `writes`: how a piece that nobody has hashed yet (an upload) reaches the disk. The
   * buffer is moved to the worker and back, as with verifyAndWrite().
   */
  digestAndWrite(piece: Buffer, length: number, writes: WriteSegment[]): Promise<DigestWriteResult> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    if (!ownsWholeBuffer(piece)) return Promise.reject(new Error('digestAndWrite needs a buffer that owns its whole ArrayBuffer'));
    return this.leastBusy().digestAndWrite(this.nextJobId++, piece, length, writes);
  }

  private leastBusy(): PoolWorker {
    let target = this.workers[0]!;
    for (const w of this.workers) if (w.queuedBytes < target.queuedBytes) target = w;
    return target;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

interface Pending {
  resolve: (msg: WorkerReply) => void;
  reject: (err: Error) => void;
  bytes: number;
}

interface WorkerReply {
  id: number;
  digest?: Uint8Array;
  digest256?: Uint8Array;
  ok?: boolean;
  sha1Matched?: boolean;
  buffer?: ArrayBuffer;
  writeError?: { code: string | undefined; message: string };
  readError?: { code: string | undefined; message: string; path: string | undefined };
}

// Writes take one lock shared by all workers. Buffered writes to one file serialise on
// the kernel's inode lock anyway, and two workers contending for it spun in the kernel
// (7 % of a leecher's CPU in a profile); waiting on a futex costs nothing.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { writeSync } = require('node:fs');
const lock = new Int32Array(workerData.writeLock);
function acquire() {
  while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1);
}
function release() {
  Atomics.store(lock, 0, 0);
  Atomics.notify(lock, 0, 1);
}
const { openSync, readSync, closeSync, constants } = require('node:fs');
let scratch;
// Direct writes need memory aligned to the device's block, and JavaScript cannot choose
// an allocation's address: a WebAssembly memory starts on a page boundary, so whole
// blocks are copied through it (a memcpy of a piece costs far less than the page cache).
const ALIGN = ${DIRECT_IO_ALIGNMENT};
const STAGING_BYTES = 1024 * 1024;
let staging;
// A filesystem that opened O_DIRECT but refuses the writes (EINVAL), or a node without
// WebAssembly (--jitless): buffered from then on.
let directRefused = false;
function stagingBuffer() {
  if (!staging) {
    try {
      staging = Buffer.from(new WebAssembly.Memory({ initial: STAGING_BYTES / 65536 }).buffer);
    } catch {
      directRefused = true;
    }
  }
  return staging;
}
function writeSegment(view, s) {
  let done = 0;
  if (s.directFd !== undefined && !directRefused && stagingBuffer()) {
    const head = Math.min(s.length, (ALIGN - (s.position % ALIGN)) % ALIGN);
    const blocks = s.length - head - ((s.length - head) % ALIGN);
    while (done < head) done += writeSync(s.fd, view, s.from + done, head - done, s.position + done);
    if (blocks > 0) {
      try {
        while (done < head + blocks) {
          const n = Math.min(STAGING_BYTES, head + blocks - done);
          staging.set(view.subarray(s.from + done, s.from + done + n));
          let put = 0;
          while (put < n) put += writeSync(s.directFd, staging, put, n - put, s.position + done + put);
          done += n;
        }
      } catch (e) {
        if (e.code !== 'EINVAL') throw e;
        directRefused = true;
      }
    }
  }
  while (done < s.length) done += writeSync(s.fd, view, s.from + done, s.length - done, s.position + done);
}
function writeAll(view, writes) {
  acquire();
  try {
    for (const s of writes) writeSegment(view, s);
  } catch (e) {
    return { code: e.code, message: e.message };
  } finally {
    release();
  }
}
function hashFiles(job) {
  const fds = new Map();
  try {
    const count = Math.ceil(job.segments.reduce((n, s) => n + s.length, 0) / job.pieceLength);
    const digests = Buffer.alloc(count * 20);
    const digests256 = job.sha256 ? Buffer.alloc(count * 32) : undefined;
    if (!scratch || scratch.length < job.pieceLength) scratch = Buffer.allocUnsafe(job.pieceLength);
    let filled = 0;
    let piece = 0;
    const flush = () => {
      createHash('sha1').update(scratch.subarray(0, filled)).digest().copy(digests, piece * 20);
      if (digests256) createHash('sha256').update(scratch.subarray(0, filled)).digest().copy(digests256, piece * 32);
      piece++;
      filled = 0;
    };
    for (const s of job.segments) {
      let fd = fds.get(s.path);
      if (fd === undefined) {
        fd = openSync(s.path, 'r');
        fds.set(s.path, fd);
      }
      let done = 0;
      while (done < s.length) {
        const n = readSync(fd, scratch, filled, Math.min(s.length - done, job.pieceLength - filled), s.position + done);
        if (n === 0) throw Object.assign(new Error(s.path + ' shrank while it was being hashed'), { code: 'ESHRANK', path: s.path });
        filled += n;
        done += n;
        if (filled === job.pieceLength) flush();
      }
    }
    if (filled > 0) flush();
    return { id: job.id, digest: digests, digest256: digests256 };
  } catch (e) {
    return { id: job.id, readError: { code: e.code, message: e.message, path: e.path } };
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}
const SHA256_CHUNK = 1024 * 1024;
let sha256Scratch;
// With job.direct, a segment starting on a block boundary is read past the page cache
// into the staging memory (hashed before the next yield, so no write reuses it first):
// a file written that way is not in the cache, and reading it back must not fill the
// cache with it either.
function openForHashing(s, direct) {
  const flag = constants.O_DIRECT;
  if (direct && flag !== undefined && s.position % ALIGN === 0 && !directRefused && stagingBuffer()) {
    try {
      return { fd: openSync(s.path, constants.O_RDONLY | flag), buffer: staging };
    } catch {
      // Not on this filesystem: through the page cache.
    }
  }
  if (!sha256Scratch) sha256Scratch = Buffer.allocUnsafe(SHA256_CHUNK);
  return { fd: openSync(s.path, 'r'), buffer: sha256Scratch };
}
async function sha256Files(job) {
  const hash = createHash('sha256');
  try {
    for (const s of job.segments) {
      let { fd, buffer } = openForHashing(s, job.direct);
      try {
        let done = 0;
        while (done < s.length) {
          const want = Math.min(SHA256_CHUNK, s.length - done);
          let n;
          try {
            // A direct read asks for whole blocks; the file's end cuts the last one short.
            n = readSync(fd, buffer, 0, buffer === staging ? Math.ceil(want / ALIGN) * ALIGN : want, s.position + done);
          } catch (e) {
            if (buffer !== staging || e.code !== 'EINVAL') throw e;
            closeSync(fd);
            ({ fd, buffer } = openForHashing(s, false));
            continue;
          }
          n = Math.min(n, want);
          if (n === 0) throw Object.assign(new Error(s.path + ' is shorter than expected'), { code: 'ESHRANK', path: s.path });
          hash.update(buffer.subarray(0, n));
          done += n;
          // Let queued piece verifications run between chunks.
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        closeSync(fd);
      }
    }
    return { id: job.id, digest: hash.digest() };
  } catch (e) {
    return { id: job.id, readError: { code: e.code, message: e.message, path: e.path } };
  }
}
parentPort.on('message', (job) => {
  if (job.sha256Files) {
    void sha256Files(job).then((reply) => parentPort.postMessage(reply));
    return;
  }
  if (job.segments) {
    parentPort.postMessage(hashFiles(job));
    return;
  }
  const view = new Uint8Array(job.buffer, job.offset, job.length);
  if (job.digestWrite) {
    const digest = createHash('sha1').update(view).digest();
    const digest256 = createHash('sha256').update(view).digest();
    parentPort.postMessage({ id: job.id, digest, digest256, writeError: writeAll(view, job.writes), buffer: job.buffer }, [job.buffer]);
    return;
  }
  if (!job.expected) {
    parentPort.postMessage({ id: job.id, digest: createHash(job.algorithm).update(view).digest() });
    return;
  }
  const digest = createHash(job.expected.length === 32 ? 'sha256' : 'sha1').update(view).digest();
  const ok = digest.equals(Buffer.from(job.expected));
  const sha1Matched = !ok && job.sha1 ? createHash('sha1').update(view).digest().equals(Buffer.from(job.sha1)) : undefined;
  const writeError = ok ? writeAll(view, job.writes) : undefined;
  parentPort.postMessage({ id: job.id, ok, writeError, sha1Matched, buffer: job.buffer }, [job.buffer]);
});
`;

/** A view of a digest that came back from a worker, without copying it. */
function asBuffer(d: Uint8Array): Buffer {
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** Whether `piece` may be moved to a worker: all of its own, unshared ArrayBuffer. */
function ownsWholeBuffer(piece: Buffer): boolean {
  return piece.byteOffset === 0 && !(piece.buffer instanceof SharedArrayBuffer) && piece.buffer.byteLength === piece.length;
}

class PoolWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  queuedBytes = 0;

  constructor(writeLock: SharedArrayBuffer) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { writeLock } });
    // An idle pool must not keep the process alive.
    this.worker.unref();
    this.worker.on('message', (msg: WorkerReply) => {
      const job = this.pending.get(msg.id);
      if (!job) return;
      this.pending.delete(msg.id);
      this.queuedBytes -= job.bytes;
      if (this.pending.size === 0) this.worker.unref();
      job.resolve(msg);
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new Error(`hash worker exited with code ${code}`)));
  }

  private submit(id: number, bytes: number, message: object, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, bytes });
      this.queuedBytes += bytes;
      this.worker.ref();
      this.worker.postMessage({ id, ...message }, transfer);
    });
  }

  async hash(id: number, data: Uint8Array, algorithm: 'sha1' | 'sha256'): Promise<Buffer> {
    let reply: WorkerReply;
    if (data.buffer instanceof SharedArrayBuffer) {
      reply = await this.submit(id, data.byteLength, { buffer: data.buffer, offset: data.byteOffset, length: data.byteLength, algorithm }, []);
    } else {
      // Uint8Array's slice copies; Buffer's would be a view, and moving it would detach the caller's memory.
      const copy = Uint8Array.prototype.slice.call(data);
      reply = await this.submit(id, data.byteLength, { buffer: copy.buffer, offset: 0, length: copy.byteLength, algorithm }, [copy.buffer as ArrayBuffer]);
    }
    return asBuffer(reply.digest!);
  }

  async hashFiles(id: number, segments: ReadSegment[], pieceLength: number, bytes: number, sha256: boolean): Promise<PieceDigests> {
    const reply = await this.submit(id, bytes, { segments, pieceLength, sha256 }, []);
    if (reply.readError) throw new HashReadError(reply.readError.message, reply.readError.code, reply.readError.path);
    return { sha1: asBuffer(reply.digest!), ...(reply.digest256 ? { sha256: asBuffer(reply.digest256) } : {}) };
  }

  async sha256Files(id: number, segments: ReadSegment[], bytes: number, direct: boolean): Promise<Buffer> {
    const reply = await this.submit(id, bytes, { segments, sha256Files: true, direct }, []);
    if (reply.readError) throw new HashReadError(reply.readError.message, reply.readError.code, reply.readError.path);
    return asBuffer(reply.digest!);
  }

  async verifyAndWrite(id: number, piece: Buffer, length: number, expected: Buffer, writes: WriteSegment[], sha1: Buffer | undefined): Promise<VerifyResult> {
    const arrayBuffer = piece.buffer as ArrayBuffer;
    const message = { buffer: arrayBuffer, offset: 0, length, expected: Uint8Array.from(expected), sha1: sha1 && Uint8Array.from(sha1), writes };
    const reply = await this.submit(id, length, message, [arrayBuffer]);
    const result: VerifyResult = { ok: reply.ok === true && !reply.writeError, buffer: Buffer.from(reply.buffer!) };
    if (reply.writeError) result.writeError = reply.writeError;
    if (reply.sha1Matched) result.sha1Matched = true;
    return result;
  }

  async digestAndWrite(id: number, piece: Buffer, length: number, writes: WriteSegment[]): Promise<DigestWriteResult> {
    const arrayBuffer = piece.buffer as ArrayBuffer;
    const reply = await this.submit(id, length, { buffer: arrayBuffer, offset: 0, length, writes, digestWrite: true }, [arrayBuffer]);
    const result: DigestWriteResult = { sha1: asBuffer(reply.digest!), sha256: asBuffer(reply.digest256!), buffer: Buffer.from(reply.buffer!) };
    if (reply.writeError) result.writeError = reply.writeError;
    return result;
  }

  private failAll(err: Error): void {
    for (const job of this.pending.values()) job.reject(err);
    this.pending.clear();
    this.queuedBytes = 0;
  }

  async terminate(): Promise<void> {
    // Whoever still awaits a digest learns the pool is gone rather than waiting forever.
    this.failAll(new Error('hash pool is closed'));
    await this.worker.terminate();
  }
}
