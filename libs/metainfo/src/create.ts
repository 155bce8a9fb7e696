import { readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { encode, type Encodable } from '../../bencode/src/index.js';
import { HashPool, HashReadError, type PieceDigests, type ReadSegment } from '../../hashing/src/index.js';
import { isValidPieceLength, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, PIECES_SHA256_KEY, unsafePathElement, type Metainfo } from './metainfo.js';
import { parseTorrent } from './parse.js';
import { SWARMSHIP_VERSION } from '../../contracts/src/version.js';


export interface CreateTorrentOptions {
  /** A power of two from 16 KiB to 512 MiB; chosen by `choosePieceLength` when absent. */
  pieceLength?: number;
  /**
   * Tracker URLs. The first becomes `announce`; with more than one, `announce-list` has
   * each in a tier of its own, so clients fail over in the given order (what mktorrent
   * does for repeated -a). Put the primary first.
   */
  announce?: string[];
  private?: boolean;
  /** BEP 19 web seeds. */
  urlList?: string[];
  comment?: string;
  /**
   * `source` in the info dictionary (as libtorrent and mktorrent -s write it): makes the
   * info hash unique to a swarm, so the same bytes published twice (two releases, two
   * trackers) are two torrents rather than one.
   */
  source?: string;
  /** Default `swarmship/<version>`. */
  createdBy?: string;
  /** Seconds since the epoch; default now; `false` leaves it out (reproducible output). */
  creationDate?: number | false;
  /**
   * Also put each piece's SHA-256 in the info dictionary (`pieces sha256`, 32 bytes a
   * piece), read in the same pass as the SHA-1s. Other clients ignore the key; swarmship
   * agents verify pieces by it once a signed manifest vouches for the list.
   */
  pieceSha256?: boolean;
  /**
   * The pieces' digests, already made (as the controller does while an upload arrives):
   * nothing is read or hashed. Only for a single file, with `pieceLength` given; with
   * `pieceSha256`, `sha256` must be there too.
   */
  pieces?: PieceDigests;
  /** Hash on this pool; otherwise one is made for the call and closed after. */
  hashPool?: HashPool;
  onProgress?: (hashedBytes: number, totalBytes: number) => void;
  /** Stops reading and hashing; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type CreateTorrentErrorCode = 'bad-option' | 'unreadable' | 'unsafe-name' | 'no-data' | 'changed' | 'symlink-loop';

/** Why a torrent could not be made from a path; `path` is the file at fault, if one is. */
export class CreateTorrentError extends Error {
  override name = 'CreateTorrentError';

  constructor(
    readonly code: CreateTorrentErrorCode,
    message: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const MIB = 1024 * 1024;
const AUTO_MIN = 256 * 1024;
const AUTO_MAX = 16 * MIB;
const AUTO_MAX_PIECES = 2000;
/** Pieces shorter than this are doubled while there would be more than AUTO_FEW_PIECES. */
const AUTO_SMALL_PIECE = 512 * 1024;
const AUTO_FEW_PIECES = 1000;

/**
 * The piece length for `totalBytes` when none is given: the smallest power of two that
 * keeps the torrent at 2000 pieces or fewer, within [256 KiB, 16 MiB], and at 1000 or
 * fewer while that keeps pieces at 512 KiB. A torrent then has 500–2000 pieces from
 * 250 MiB to 32 GiB; artifacts of 1–16 GB get the 1–8 MiB pieces that move well between
 * fleet nodes (fewer hash jobs and `have` messages than small pieces, yet enough pieces
 * for every node to have something to trade early on).
 *
 * Why the second limit: each piece costs every node a HAVE to each peer, a hash job and
 * a write, and at 16 nodes on two cores the agents' CPU sets the pace. 512 KiB pieces
 * instead of 256 KiB for a 256 MiB artifact took about 8 % less agent CPU in the fleet
 * benchmark. Halving piece counts everywhere would not do: an agent's memory grows with
 * the piece length (pieces pinned while their blocks sit in peers' send queues), and a
 * 1 GiB artifact in 2 MiB pieces peaked agents at 221 MiB (docs/decisions/0018).
 */
export function choosePieceLength(totalBytes: number): number {
  let p = AUTO_MIN;
  while (p < AUTO_MAX && (totalBytes / p > AUTO_MAX_PIECES || (p < AUTO_SMALL_PIECE && totalBytes / p > AUTO_FEW_PIECES))) p *= 2;
  return p;
}

interface SourceFile {
  /** Where to read it. */
  fsPath: string;
  /** Its path inside the torrent. */
  path: string[];
  length: number;
  mtimeMs: number;
}

/**
 * Makes a v1 .torrent of a file or a directory, hashing on every core.
 *
 * It makes the same info dictionary as mktorrent (and libtorrent's v1-only mode) for the
 * same files and piece length, so the info hash is the same: files sorted by their
 * '/'-joined path bytes; symlinks followed (their targets' contents are shared); hidden
 * files included; empty files kept, empty directories and non-regular files (sockets,
 * FIFOs, devices) left out; no BEP 47 attributes or padding. Unlike mktorrent it refuses
 * an unreadable file instead of leaving it out: a release missing a file is worse than
 * an error. A file that changes while hashed is an error too.
 *
 * Files are read in large positional reads into a bounded ring of shared buffers that the
 * hash workers read in place; memory stays at about 64 MiB (two pieces when larger).
 */
export async function createTorrent(path: string, opts: CreateTorrentOptions = {}): Promise<{ torrent: Buffer; metainfo: Metainfo }> {
  if (opts.pieceLength !== undefined && !isValidPieceLength(opts.pieceLength)) {
    throw new CreateTorrentError('bad-option', `piece length ${opts.pieceLength} is not a power of two from ${MIN_PIECE_LENGTH} to ${MAX_PIECE_LENGTH} bytes`);
  }
  const root = resolve(path);
  const name = basename(root);
  checkName(name, root);
  const rootStat = await statOrFail(root);
  let files: SourceFile[];
  let singleFile: boolean;
  if (rootStat.isFile()) {
    files = [{ fsPath: root, path: [name], length: rootStat.size, mtimeMs: rootStat.mtimeMs }];
    singleFile = true;
  } else if (rootStat.isDirectory()) {
    files = await listDirectory(root, rootStat);
    singleFile = false;
  } else {
    throw new CreateTorrentError('unreadable', `${root} is neither a regular file nor a directory`, root);
  }
  const total = files.reduce((sum, f) => sum + f.length, 0);
  if (total === 0) throw new CreateTorrentError('no-data', `${root} holds no data (no files, or only empty ones); a torrent needs at least one byte`, root);

  const pieceLength = opts.pieceLength ?? choosePieceLength(total);
  const pieces = opts.pieces ? givenPieces(opts.pieces, opts, singleFile, total, pieceLength) : await hashWithPool(files, total, pieceLength, opts);

  const info: Record<string, Encodable | undefined> = {
    name,
    'piece length': pieceLength,
    pieces: pieces.sha1,
    [PIECES_SHA256_KEY]: pieces.sha256,
    private: opts.private ? 1 : undefined,
    source: opts.source,
  };
  if (singleFile) info['length'] = total;
  else info['files'] = files.map((f) => ({ length: f.length, path: f.path }));

  const trackers = opts.announce ?? [];
  const creationDate = opts.creationDate === false ? undefined : (opts.creationDate ?? Math.floor(Date.now() / 1000));
  const torrent = encode({
    announce: trackers[0],
    'announce-list': trackers.length > 1 ? trackers.map((t) => [t]) : undefined,
    comment: opts.comment,
    'created by': opts.createdBy ?? `swarmship/${SWARMSHIP_VERSION}`,
    'creation date': creationDate,
    info,
    'url-list': opts.urlList?.length ? opts.urlList : undefined,
  });
  // Parsing our own output checks it against the same rules every consumer applies.
  return { torrent, metainfo: parseTorrent(torrent) };
}

async function hashWithPool(files: SourceFile[], total: number, pieceLength: number, opts: CreateTorrentOptions): Promise<PieceDigests> {
  const pool = opts.hashPool ?? new HashPool();
  try {
    return await hashPieces(files, total, pieceLength, pool, opts);
  } finally {
    if (!opts.hashPool) await pool.close();
  }
}

/** `opts.pieces`, checked against what they must describe. */
function givenPieces(pieces: PieceDigests, opts: CreateTorrentOptions, singleFile: boolean, total: number, pieceLength: number): PieceDigests {
  const count = Math.ceil(total / pieceLength);
  const problem = !singleFile
    ? 'digests given for a directory'
    : opts.pieceLength === undefined
      ? 'digests given without their piece length'
      : pieces.sha1.length !== count * 20
        ? `${pieces.sha1.length / 20} SHA-1 digests given for ${count} pieces`
        : opts.pieceSha256 && pieces.sha256?.length !== count * 32
          ? `SHA-256 digests missing or not ${count}`
          : undefined;
  if (problem) throw new CreateTorrentError('bad-option', problem);
  return opts.pieceSha256 ? pieces : { sha1: pieces.sha1 };
}

function checkName(element: string, fsPath: string): void {
  const problem = unsafePathElement(element);
  if (problem) throw new CreateTorrentError('unsafe-name', `${fsPath}: ${problem}`, fsPath);
}

async function statOrFail(fsPath: string): Promise<Stats> {
  try {
    return await stat(fsPath);
  } catch (err) {
    throw unreadable(fsPath, err);
  }
}

function unreadable(fsPath: string, err: unknown): CreateTorrentError {
  const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
  return new CreateTorrentError('unreadable', `cannot read ${fsPath}: ${reason}`, fsPath, { cause: err });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

async function listDirectory(root: string, rootStat: Stats): Promise<SourceFile[]> {
  const files: SourceFile[] = [];
  // Directories on the way down, by device and inode: a symlink back up would loop forever.
  const ancestors = new Set<string>([`${rootStat.dev}:${rootStat.ino}`]);

  async function walk(dir: string, rel: string[]): Promise<void> {
    let names: Buffer[];
    try {
      names = await readdir(dir, { encoding: 'buffer' });
    } catch (err) {
      throw unreadable(dir, err);
    }
    for (const raw of names) {
      let name: string;
      try {
        name = strictUtf8.decode(raw);
      } catch {
        throw new CreateTorrentError('unsafe-name', `${join(dir, raw.toString('latin1'))}: file name is not valid UTF-8`, dir);
      }
      const fsPath = join(dir, name);
      checkName(name, fsPath);
      const st = await statOrFail(fsPath);
      if (st.isDirectory()) {
        const id = `${st.dev}:${st.ino}`;
        if (ancestors.has(id)) throw new CreateTorrentError('symlink-loop', `${fsPath} leads back to a directory above it`, fsPath);
        ancestors.add(id);
        await walk(fsPath, [...rel, name]);
        ancestors.delete(id);
      } else if (st.isFile()) {
        files.push({ fsPath, path: [...rel, name], length: st.size, mtimeMs: st.mtimeMs });
      }
    }
  }

  await walk(root, []);
  // strcmp order of the joined path, as mktorrent sorts; note 'a-b' < 'a/b' < 'a0'.
  const keyed = files.map((f) => ({ f, key: Buffer.from(f.path.join('/'), 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.f);
}

/** Bytes of the stream in one worker job: big enough that messages are rare. */
const JOB_TARGET = 16 * MIB;
/** Jobs queued per worker, so a worker never waits for the next one. */
const JOBS_PER_WORKER = 2;

/**
 * Hashes the files as one byte stream. The stream is cut into jobs of whole pieces, and
 * each hash worker reads its job's bytes from disk itself and hashes them: the main
 * thread never touches the data, and a core's read and hash share its cache.
 */
async function hashPieces(files: SourceFile[], total: number, pieceLength: number, pool: HashPool, opts: CreateTorrentOptions): Promise<PieceDigests> {
  const pieceCount = Math.ceil(total / pieceLength);
  const pieces = Buffer.alloc(pieceCount * 20);
  const pieces256 = opts.pieceSha256 ? Buffer.alloc(pieceCount * 32) : undefined;
  const piecesPerJob = Math.max(1, Math.floor(JOB_TARGET / pieceLength));
  const layout = new StreamLayout(files);
  let hashedBytes = 0;
  let nextPiece = 0;

  async function lane(): Promise<void> {
    while (nextPiece < pieceCount) {
      opts.signal?.throwIfAborted();
      const first = nextPiece;
      nextPiece += piecesPerJob;
      const start = first * pieceLength;
      const bytes = Math.min(piecesPerJob * pieceLength, total - start);
      let digests: PieceDigests;
      try {
        digests = await pool.pieceDigests(layout.segments(start, bytes), pieceLength, pieces256 !== undefined);
      } catch (err) {
        throw err instanceof HashReadError
          ? err.code === 'ESHRANK'
            ? new CreateTorrentError('changed', err.message, err.path)
            : unreadable(err.path ?? '?', err)
          : err;
      }
      digests.sha1.copy(pieces, first * 20);
      if (pieces256) digests.sha256!.copy(pieces256, first * 32);
      hashedBytes += bytes;
      opts.onProgress?.(hashedBytes, total);
    }
  }

  await Promise.all(Array.from({ length: Math.max(1, pool.size * JOBS_PER_WORKER) }, lane));
  // The size and mtime seen when listing must still hold, or the hashes describe bytes
  // that no longer exist.
  for (const f of files) {
    const st = await statOrFail(f.fsPath);
    if (st.size !== f.length || st.mtimeMs !== f.mtimeMs) {
      throw new CreateTorrentError('changed', `${f.fsPath} changed while it was being hashed`, f.fsPath);
    }
  }
  return pieces256 ? { sha1: pieces, sha256: pieces256 } : { sha1: pieces };
}

/** The files, one after the other, as a single byte stream. */
class StreamLayout {
  /** Where each file starts in the stream. */
  private readonly starts: number[] = [];

  constructor(private readonly files: SourceFile[]) {
    let offset = 0;
    for (const f of files) {
      this.starts.push(offset);
      offset += f.length;
    }
  }

  /** The file reads that make up stream bytes [position, position + bytes). */
  segments(position: number, bytes: number): ReadSegment[] {
    const out: ReadSegment[] = [];
    let filled = 0;
    for (let i = this.fileAt(position); filled < bytes && i < this.files.length; i++) {
      const file = this.files[i]!;
      const fileOffset = position + filled - this.starts[i]!;
      const length = Math.min(bytes - filled, file.length - fileOffset);
      if (length <= 0) continue;
      out.push({ path: file.fsPath, position: fileOffset, length });
      filled += length;
    }
    return out;
  }

  /** The file holding stream byte `position` (the last such one, skipping empty files). */
  private fileAt(position: number): number {
    let lo = 0;
    let hi = this.files.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= position) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
