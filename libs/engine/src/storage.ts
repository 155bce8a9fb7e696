import { mkdir, stat } from 'node:fs/promises';
import { close, constants, fstat, ftruncate, fdatasync, open, read, write } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { DIRECT_IO_ALIGNMENT, type WriteSegment } from '../../hashing/src/hash-pool.js';
import { directReadView } from './aligned-memory.js';

/** One file of a torrent, placed on disk. */
export interface StoredFile {
  /** Absolute path on disk. */
  path: string;
  length: number;
  /** Where the file starts in the torrent's byte stream. */
  offset: number;
  /** A BEP 47 padding file: reads as zeros, never touches the disk. */
  pad?: boolean;
}

/**
 * Positional reads and writes over the torrent's byte stream. Implementations: files on
 * disk (below); others (a read-only origin, memory for tests) implement the same calls.
 */
export interface PieceStorage {
  readonly length: number;
  /** Fills `target` with the bytes at `offset` of the torrent. */
  read(offset: number, target: Uint8Array): Promise<void>;
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Flushes written data to stable storage. */
  sync(): Promise<void>;
  /**
   * Where the bytes at [offset, offset+length) live as descriptor writes, so another
   * thread may write them itself; undefined when this storage has no descriptors.
   */
  segments?(offset: number, length: number): WriteSegment[] | undefined;
  close(): Promise<void>;
}

export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * Lays out a torrent's files under `root`: a single-file torrent is `root/<name>`, a
 * multi-file torrent `root/<name>/<path…>`. Refuses any path that would resolve outside
 * `root` (the metainfo parser already refuses `..` and absolute elements; this is the
 * second lock on the same door).
 */
export function layoutFiles(
  root: string,
  name: string,
  files: { path: string[]; length: number; offset: number; pad?: boolean }[],
  singleFile: boolean,
): StoredFile[] {
  const base = resolve(root);
  return placeFiles(singleFile ? base : resolve(base, name), files, singleFile ? name : undefined, base);
}

/**
 * Places the files at an explicit content path: the file itself for a single-file
 * torrent, the torrent's top directory otherwise (as `swarmship seed FILE.torrent PATH`).
 */
export function placeFiles(
  contentRoot: string,
  files: { path: string[]; length: number; offset: number; pad?: boolean }[],
  singleFileName?: string,
  guard = contentRoot,
): StoredFile[] {
  const top = resolve(contentRoot);
  const base = resolve(guard);
  return files.map((f) => {
    const path = singleFileName !== undefined ? resolve(top, singleFileName) : resolve(top, ...f.path);
    if (!path.startsWith(base + sep)) throw new StorageError(`file path escapes the destination: ${f.path.join('/')}`, 'EPATH', path);
    return { path, length: f.length, offset: f.offset, ...(f.pad ? { pad: true } : {}) };
  });
}

// The callback fs API on plain descriptors, not FileHandle: FileHandle.write is an order
// of magnitude slower on SharedArrayBuffer-backed buffers (measured on Node 20), and
// callers may hand in views of shared memory.
const openFd = (path: string, flags: number, mode?: number) =>
  new Promise<number>((res, rej) => open(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
const closeFd = (fd: number) => new Promise<void>((res) => close(fd, () => res()));
const sizeOf = (fd: number) => new Promise<number>((res, rej) => fstat(fd, (e, st) => (e ? rej(e) : res(st.size))));
const truncateFd = (fd: number, len: number) => new Promise<void>((res, rej) => ftruncate(fd, len, (e) => (e ? rej(e) : res())));
const datasyncFd = (fd: number) => new Promise<void>((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res())));
const readFd = (fd: number, buf: Uint8Array, off: number, len: number, pos: number) =>
  new Promise<number>((res, rej) => read(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
const writeFd = (fd: number, buf: Uint8Array, off: number, len: number, pos: number) =>
  new Promise<number>((res, rej) => write(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));

/** Files on disk, opened once and kept open; reads and writes at positions, never streams. */
export class FileStorage implements PieceStorage {
  readonly length: number;
  private readonly handles: (number | undefined)[];
  private readonly directHandles: (number | undefined)[];
  private opening: Promise<void> | undefined;
  /** The filesystem opened O_DIRECT but refuses the reads: through the page cache from then on. */
  private directRefused = false;

  private constructor(
    private readonly files: StoredFile[],
    private readonly writable: boolean,
  ) {
    this.length = files.reduce((n, f) => n + f.length, 0);
    this.handles = new Array(files.length);
    this.directHandles = new Array(files.length);
  }

  /**
   * Opens existing files for reading; every file must exist with its full length. With
   * `directIo`, reads into aligned memory bypass the page cache (see read()).
   */
  static async openForReading(files: StoredFile[], options: { directIo?: boolean } = {}): Promise<FileStorage> {
    for (const f of files) {
      if (f.pad) continue;
      const s = await stat(f.path).catch((err: NodeJS.ErrnoException) => {
        throw new StorageError(`cannot read ${f.path}: ${err.code ?? err.message}`, err.code, f.path);
      });
      if (!s.isFile()) throw new StorageError(`not a regular file: ${f.path}`, 'EISDIR', f.path);
      if (s.size < f.length) throw new StorageError(`${f.path} is ${s.size} bytes, the torrent says ${f.length}`, 'ESIZE', f.path);
    }
    const storage = new FileStorage(files, false);
    await storage.openAll();
    if (options.directIo) await storage.openDirect();
    return storage;
  }

  /**
   * Creates (or reopens) every file for reading and writing, sized to its length and
   * sparse, so a write never has to extend a file. Existing bytes are kept: resume.
   */
  static async openForWriting(files: StoredFile[], options: { directIo?: boolean } = {}): Promise<FileStorage> {
    const storage = new FileStorage(files, true);
    await storage.openAll();
    if (options.directIo) await storage.openDirect();
    return storage;
  }

  /**
   * Opens each file a second time with O_DIRECT, for segments() to offer and read() to
   * use. Where the platform or the filesystem has no direct I/O (macOS; some FUSE and
   * network filesystems, tmpfs before Linux 6.6), the files are simply read and written
   * through the page cache.
   */
  private async openDirect(): Promise<void> {
    const direct = constants.O_DIRECT as number | undefined;
    if (direct === undefined) return;
    for (let i = 0; i < this.files.length; i++) {
      const f = this.files[i]!;
      if (f.pad) continue;
      // EINVAL from a filesystem without it; any other refusal likewise only costs speed.
      const access = this.writable ? constants.O_RDWR : constants.O_RDONLY;
      this.directHandles[i] = await openFd(f.path, access | constants.O_NOFOLLOW | direct).catch(() => undefined);
    }
  }

  private async openAll(): Promise<void> {
    for (let i = 0; i < this.files.length; i++) {
      const f = this.files[i]!;
      if (f.pad) continue;
      try {
        if (this.writable) {
          await mkdir(dirname(f.path), { recursive: true });
          // O_NOFOLLOW: a symlink planted at a file's place must not redirect our writes.
          const fd = await openFd(f.path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
          this.handles[i] = fd;
          if ((await sizeOf(fd)) !== f.length) await truncateFd(fd, f.length);
        } else {
          this.handles[i] = await openFd(f.path, constants.O_RDONLY);
        }
      } catch (err) {
        await this.close();
        const e = err as NodeJS.ErrnoException;
        throw new StorageError(`cannot open ${f.path}: ${e.code ?? e.message}`, e.code, f.path);
      }
    }
  }

  /**
   * Reads straight from the device, past the page cache, where the storage was opened
   * for direct I/O and `target` is aligned memory (aligned-memory.ts): what it holds was
   * written past the page cache too, so a buffered read would find nothing cached and
   * pay for filling fresh cache pages and copying out of them. Any other target is read
   * through the page cache.
   */
  async read(offset: number, target: Uint8Array): Promise<void> {
    await this.span(offset, target.byteLength, true, target, async (h, filePos, from, len, direct) => {
      let done = direct === undefined ? 0 : await this.readDirect(direct, target, filePos, from, len);
      while (done < len) {
        const bytesRead = await readFd(h, target, from + done, len - done, filePos + done);
        if (bytesRead === 0) {
          // A hole past the end of a short file reads as zeros (it will fail its hash).
          target.fill(0, from + done, from + len);
          return;
        }
        done += bytesRead;
      }
    });
  }

  /** Bytes read into `target` at `from` with one direct read; 0 when it cannot be done. */
  private async readDirect(fd: number, target: Uint8Array, filePos: number, from: number, len: number): Promise<number> {
    const view = this.directRefused || filePos % DIRECT_IO_ALIGNMENT !== 0 ? undefined : directReadView(target, from, len);
    if (!view) return 0;
    try {
      // Whole blocks: the tail past `len` lands in the target's slack, or is not there (EOF).
      return Math.min(len, await readFd(fd, view, 0, view.byteLength, filePos));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      this.directRefused = true;
      return 0;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (!this.writable) throw new StorageError('storage is read-only', 'EROFS', this.files[0]?.path ?? '');
    await this.span(offset, data.byteLength, false, undefined, async (h, filePos, from, len) => {
      let done = 0;
      while (done < len) {
        const bytesWritten = await writeFd(h, data, from + done, len - done, filePos + done);
        done += bytesWritten;
      }
    });
  }

  segments(offset: number, length: number): WriteSegment[] | undefined {
    if (!this.writable) return undefined;
    const out: WriteSegment[] = [];
    let from = 0;
    for (let i = 0; i < this.files.length && from < length; i++) {
      const f = this.files[i]!;
      const at = offset + from;
      if (at >= f.offset + f.length || f.length === 0) continue;
      const len = Math.min(length - from, f.offset + f.length - at);
      const fd = this.handles[i];
      if (!f.pad) {
        if (fd === undefined) return undefined;
        const directFd = this.directHandles[i];
        out.push({ fd, position: at - f.offset, from, length: len, ...(directFd !== undefined ? { directFd } : {}) });
      }
      from += len;
    }
    return out;
  }

  async sync(): Promise<void> {
    if (!this.writable) return;
    await Promise.all(this.handles.map((h) => (h === undefined ? undefined : datasyncFd(h))));
  }

  async close(): Promise<void> {
    const handles = [
      ...this.handles.splice(0, this.handles.length, ...new Array(this.handles.length)),
      ...this.directHandles.splice(0, this.directHandles.length, ...new Array(this.directHandles.length)),
    ];
    await Promise.all(handles.map((h) => (h === undefined ? undefined : closeFd(h))));
  }

  /** Splits [offset, offset+length) across the files it covers. */
  private async span(
    offset: number,
    length: number,
    reading: boolean,
    target: Uint8Array | undefined,
    io: (h: number, filePos: number, from: number, len: number, direct: number | undefined) => Promise<void>,
  ): Promise<void> {
    let from = 0;
    // Files are few for release artifacts; a linear walk is cheaper than a search here.
    for (let i = 0; i < this.files.length && from < length; i++) {
      const f = this.files[i]!;
      const end = f.offset + f.length;
      const at = offset + from;
      if (at >= end || f.length === 0) continue;
      const len = Math.min(length - from, end - at);
      if (f.pad) {
        if (reading) target?.fill(0, from, from + len);
        from += len;
        continue;
      }
      const h = this.handles[i];
      if (h === undefined) throw new StorageError(`storage is closed: ${f.path}`, 'ECLOSED', f.path);
      try {
        await io(h, at - f.offset, from, len, this.directHandles[i]);
      } catch (err) {
        if (err instanceof StorageError) throw err;
        const e = err as NodeJS.ErrnoException;
        throw new StorageError(`I/O error on ${f.path}: ${e.code ?? e.message}`, e.code, f.path);
      }
      from += len;
    }
  }
}
