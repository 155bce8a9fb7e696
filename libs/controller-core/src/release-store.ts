import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, realpath, rename, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join, relative, isAbsolute, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { choosePieceLength, createTorrent, CreateTorrentError, type CreateTorrentOptions } from '../../metainfo/src/create.js';
import { parseTorrent } from '../../metainfo/src/parse.js';
import type { Metainfo } from '../../metainfo/src/metainfo.js';
import type { HashPool, PieceDigests } from '../../hashing/src/hash-pool.js';
import { IngestDigestError, PieceIngest } from './piece-ingest.js';
import { placeFiles } from '../../engine/src/storage.js';
import type { SigningKey } from '../../signing/src/keys.js';
import { decodeManifest, piecesSha256Digest, signManifest, type ReleaseManifest } from '../../signing/src/manifest.js';
import { syncDir, writeFileAtomic } from '../../durable-files/src/atomic.js';
import { badRequest, ControllerError, isNoSpace } from './errors.js';

/** A release as stored in <data>/releases/<name>/<version>/release.json. */
export interface ReleaseRecord {
  name: string;
  version: string;
  infoHash: string;
  bytes: number;
  createdAt: string;
  retiredAt?: string;
  selector: Record<string, string>;
  metadata: Record<string, string>;
  /** Agents unpack a .tar/.tar.gz artifact after verifying it. */
  unpack: boolean;
  /** SHA-256 of the artifact (its files' bytes in the torrent's order). Absent in records written before releases were signed. */
  sha256?: string;
  /** The signed manifest (base64 of its canonical bytes), its Ed25519 signature (base64) and the signing key's id. */
  manifest?: string;
  signature?: string;
  signingKey?: string;
  /**
   * The content the torrent was made from: relative to the release's directory when it
   * was uploaded (content/<file>), absolute when it was published from a path already
   * on this volume (then it is re-checked against its hashes at every start).
   */
  content: string;
}

export interface Release {
  record: ReleaseRecord;
  metainfo: Metainfo;
  torrent: Buffer;
  /** Absolute path of the content. */
  contentPath: string;
  /** Content lives outside the data dir, so it may have changed since it was hashed. */
  external: boolean;
}

export interface PublishFields {
  name: string;
  version: string;
  selector: Record<string, string>;
  metadata: Record<string, string>;
  unpack: boolean;
}

export interface ReleaseStoreOptions {
  dataDir: string;
  hashPool: HashPool;
  /** The tracker URL put into new torrents. */
  announceUrl: () => string;
  /** Directories a path publish may name. */
  pathRoots: string[];
  /** Every release's manifest is signed with this key. */
  signingKey: SigningKey;
  now?: () => number;
}

interface Reservation {
  bytes: number;
  written: () => number;
}

/** Bytes of an upload queued for the disk while more is read from the socket. */
const UPLOAD_WRITE_QUEUE_BYTES = 4 * 1024 * 1024;
/** Bytes kept free beyond an upload's own size: the torrent, the record, the filesystem's own needs. */
const SPACE_MARGIN_BYTES = 16 * 1024 * 1024;
const RECORD_FILE = 'release.json';
const TORRENT_FILE = 'release.torrent';
const CONTENT_DIR = 'content';

/**
 * The controller's releases on disk. A release is assembled in <data>/staging/<id>/ and
 * renamed into <data>/releases/<name>/<version>/ only once its content, torrent and
 * record are written and synced, so the releases directory only ever holds whole
 * releases: a crash or a refused upload leaves at most a staging directory, cleared at
 * the next start.
 */
export class ReleaseStore {
  private readonly releases = new Map<string, Release>();
  /** name@version being published right now: a second publish of the same is a conflict, not a race. */
  private readonly inFlight = new Set<string>();
  /** Room promised to uploads under way: what each declared, less what it has written. */
  private readonly reservations = new Set<Reservation>();
  private readonly now: () => number;

  constructor(private readonly options: ReleaseStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  get releasesDir(): string {
    return join(this.options.dataDir, 'releases');
  }

  private get stagingDir(): string {
    return join(this.options.dataDir, 'staging');
  }

  /** Reads every stored release; a damaged one is reported and left out, never fatal. */
  async load(): Promise<{ loaded: Release[]; skipped: { dir: string; reason: string }[]; signed: string[]; unsigned: { release: string; reason: string }[] }> {
    await rm(this.stagingDir, { recursive: true, force: true });
    await mkdir(this.stagingDir, { recursive: true });
    await mkdir(this.releasesDir, { recursive: true });
    const skipped: { dir: string; reason: string }[] = [];
    for (const name of await readdir(this.releasesDir)) {
      const nameDir = join(this.releasesDir, name);
      // A stray file, a dangling link or an unreadable dir is left out like a damaged release.
      let versions: string[];
      try {
        if (!(await stat(nameDir)).isDirectory()) continue;
        versions = await readdir(nameDir);
      } catch (err) {
        skipped.push({ dir: nameDir, reason: (err as Error).message });
        continue;
      }
      for (const version of versions) {
        const dir = join(nameDir, version);
        try {
          const release = await this.readRelease(dir);
          if (release.record.name !== name || release.record.version !== version) throw new Error(`record names ${release.record.name}@${release.record.version}`);
          this.releases.set(key(name, version), release);
        } catch (err) {
          skipped.push({ dir, reason: (err as Error).message });
        }
      }
    }
    const signed: string[] = [];
    const unsigned: { release: string; reason: string }[] = [];
    for (const release of this.list()) {
      try {
        if (await this.signIfNeeded(release)) signed.push(key(release.record.name, release.record.version));
      } catch (err) {
        // Left unsigned, and so refused by agents, rather than left out: the record is fine.
        unsigned.push({ release: key(release.record.name, release.record.version), reason: (err as Error).message });
      }
    }
    return { loaded: this.list(), skipped, signed, unsigned };
  }

  /**
   * Signs a release stored before releases were signed, or signed with another key
   * than today's (after a key rotation), or whose manifest no longer matches its record
   * (one signed before manifests carried `unpack`, for a release that is unpacked).
   * The artifact's SHA-256 is computed from the content when the record lacks it.
   */
  private async signIfNeeded(release: Release): Promise<boolean> {
    const r = release.record;
    const pieces = piecesSha256Of(release.metainfo);
    if (r.manifest !== undefined && r.signature !== undefined && r.signingKey === this.options.signingKey.keyId && r.sha256 !== undefined) {
      try {
        const m = decodeManifest(Buffer.from(r.manifest, 'base64'));
        const same = m.name === r.name && m.version === r.version && m.infoHash === r.infoHash && m.sha256 === r.sha256 && m.size === r.bytes;
        if (same && m.unpack === (r.unpack === true) && m.piecesSha256 === pieces) return false;
      } catch {
        // Re-signed below.
      }
    }
    const sha256 = r.sha256 ?? (await this.sha256Of(release.contentPath, release.metainfo));
    const manifest: ReleaseManifest = { name: r.name, version: r.version, infoHash: r.infoHash, sha256, size: r.bytes, created: r.createdAt, unpack: r.unpack === true, piecesSha256: pieces };
    const record = { ...r, ...this.sign(manifest) };
    await writeFileAtomic(join(this.releasesDir, r.name, r.version, RECORD_FILE), JSON.stringify(record, null, 2) + '\n');
    release.record = record;
    return true;
  }

  private sign(m: ReleaseManifest): Pick<ReleaseRecord, 'sha256' | 'manifest' | 'signature' | 'signingKey'> {
    const s = signManifest(m, this.options.signingKey);
    return { sha256: m.sha256, manifest: s.manifest.toString('base64'), signature: s.signature.toString('base64'), signingKey: s.keyId };
  }

  /** SHA-256 of the content's files in the torrent's order, read and hashed on a worker. */
  private async sha256Of(contentPath: string, metainfo: Metainfo): Promise<string> {
    const files = placeFiles(metainfo.singleFile ? dirname(contentPath) : contentPath, metainfo.files, metainfo.singleFile ? basename(contentPath) : undefined);
    const digest = await this.options.hashPool.sha256Files(files.filter((f) => !f.pad).map((f) => ({ path: f.path, position: 0, length: f.length })));
    return digest.toString('hex');
  }

  private async readRelease(dir: string): Promise<Release> {
    const record = JSON.parse(await readFile(join(dir, RECORD_FILE), 'utf8')) as ReleaseRecord;
    const torrent = await readFile(join(dir, TORRENT_FILE));
    const metainfo = parseTorrent(torrent);
    if (metainfo.infoHashHex !== record.infoHash) throw new Error(`torrent info hash ${metainfo.infoHashHex} differs from the record's ${record.infoHash}`);
    const external = isAbsolute(record.content);
    return { record, metainfo, torrent, contentPath: external ? record.content : join(dir, record.content), external };
  }

  /** Every release, live and retired, oldest first. */
  list(): Release[] {
    return [...this.releases.values()].sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || key(a.record.name, a.record.version).localeCompare(key(b.record.name, b.record.version)));
  }

  live(): Release[] {
    return this.list().filter((r) => r.record.retiredAt === undefined);
  }

  get(name: string, version: string): Release {
    const release = this.releases.get(key(name, version));
    if (!release) throw new ControllerError('not-found', `no release ${name}@${version}`);
    return release;
  }

  /** Free bytes on the data dir's volume, for unprivileged writers. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.options.dataDir);
    return Number(s.bavail) * Number(s.bsize);
  }

  /**
   * Stores an artifact streamed from `body` (never held whole in memory) and makes its
   * torrent. Refuses before reading a byte when the release exists or `spaceNeeded`
   * (by default the artifact's declared size) does not fit; a disk that fills up mid-stream is a 'no-space' error too.
   */
  async publishStream(fields: PublishFields, fileName: string, body: Readable, declaredBytes: number | undefined, spaceNeeded = declaredBytes): Promise<Release> {
    return this.publish(fields, spaceNeeded, async (stagingDir, reservation) => {
      const contentDir = join(stagingDir, CONTENT_DIR);
      await mkdir(contentDir);
      const path = join(contentDir, fileName);
      const received =
        declaredBytes !== undefined && declaredBytes > 0 ? await this.receiveHashingPieces(body, path, declaredBytes, reservation) : await this.receive(body, path, declaredBytes, reservation);
      return { contentPath: path, content: join(CONTENT_DIR, fileName), field: 'body', ...received };
    });
  }

  /**
   * An upload whose torrent can be made before its bytes arrive: the sender hashed it
   * first and `claim` carries its piece digests and SHA-256. The release is registered
   * and handed to `live.opened` (the controller lists and seeds it, agents start) as soon
   * as its torrent is made; each piece then goes to `live.pieceLanded` once it is on disk
   * and matches its digests, and the release is committed to the releases directory
   * when the last has. If the bytes fail (cut off, a digest or the SHA-256 differs, the
   * disk fills), the release is unregistered and handed to `live.withdrawn`: nothing of
   * it stays, as with any refused upload.
   */
  async publishAnnounced(fields: PublishFields, fileName: string, body: AsyncIterable<Buffer>, claim: UploadClaim, live: AnnouncedUploadHooks): Promise<Release> {
    return this.staged(fields, claim.bytes, async (stagingDir, reservation) => {
      await mkdir(join(stagingDir, CONTENT_DIR));
      const path = join(stagingDir, CONTENT_DIR, fileName);
      // Pieces land only once bytes are pushed, after the release below exists.
      let release: Release | undefined;
      const ingest = await PieceIngest.create(this.options.hashPool, path, claim.bytes, claim.pieceLength, {
        expectedSha256: claim.digests.sha256,
        onPiece: (i) => live.pieceLanded(release!, i),
      }).catch((err: unknown) => {
        throw err instanceof RangeError ? badRequest('X-Swarmship-Piece-Length', err.message) : this.uploadError(err);
      });
      reservation!.written = () => ingest.bytes;
      try {
        // The file exists at its full length (sparse), so the torrent is made from its size and the claim.
        const made = await createTorrent(path, { ...this.torrentOptions(fields), pieceLength: claim.pieceLength, pieces: claim.digests });
        const record = this.recordOf(fields, made.metainfo, claim.sha256, join(CONTENT_DIR, fileName));
        this.refuseDuplicate(record);
        release = { record, metainfo: made.metainfo, torrent: made.torrent, contentPath: path, external: false };
      } catch (err) {
        await ingest.abort();
        if (err instanceof CreateTorrentError) throw badRequest('X-Swarmship-Piece-Length', err.message);
        throw err;
      }
      const k = key(fields.name, fields.version);
      this.releases.set(k, release);
      try {
        await live.opened(release);
        await this.receiveAnnounced(body, ingest, claim);
        await this.commit(release, stagingDir);
        return release;
      } catch (err) {
        this.releases.delete(k);
        await live.withdrawn(release);
        throw err;
      }
    });
  }

  /** The bytes of an announced upload, into `ingest`, and its SHA-256 checked against the claim. */
  private async receiveAnnounced(body: AsyncIterable<Buffer>, ingest: PieceIngest, claim: UploadClaim): Promise<void> {
    try {
      for await (const chunk of body) await ingest.push(chunk);
      if (ingest.bytes !== claim.bytes) throw badRequest('body', `received ${ingest.bytes} bytes of the ${claim.bytes} announced`);
      await ingest.finish();
    } catch (err) {
      await ingest.abort();
      if (err instanceof IngestDigestError) throw badRequest('body', err.message);
      throw this.uploadError(err);
    }
    // Read back on a worker (past the page cache, as it was written) once the fleet has
    // the pieces, rather than hashed on the way in on the thread that also serves them
    // (the origin's; 0.1-0.2 s slower at 8 nodes): the manifest must not vouch for a
    // SHA-256 nobody checked, but no agent waits for this one.
    const sha256 = (await this.options.hashPool.sha256Files([{ path: ingest.path, position: 0, length: claim.bytes }], { direct: true })).toString('hex');
    if (sha256 !== claim.sha256) throw badRequest('X-Swarmship-Sha256', `the upload's SHA-256 is ${sha256}, not the ${claim.sha256} sent ahead of it`);
  }

  /**
   * An upload of announced size: each piece is hashed (SHA-1 and SHA-256) and written
   * past the page cache by a hash worker as soon as it is complete, so the torrent is
   * ready when the last byte is (see PieceIngest). The artifact's SHA-256 is taken here,
   * on the way through.
   */
  private async receiveHashingPieces(body: Readable, path: string, declaredBytes: number, reservation: Reservation | undefined): Promise<Received> {
    const hash = createHash('sha256');
    const pieceLength = choosePieceLength(declaredBytes);
    const ingest = await PieceIngest.create(this.options.hashPool, path, declaredBytes, pieceLength);
    if (reservation) reservation.written = () => ingest.bytes;
    try {
      // A failed write must not destroy the request: its socket would go with it, and the
      // client, still sending, would see a reset instead of the answer (507).
      for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        await ingest.push(chunk);
      }
      if (ingest.bytes !== declaredBytes) throw badRequest('body', `received ${ingest.bytes} bytes, Content-Length said ${declaredBytes}`);
      await ingest.finish();
      return { sha256: hash.digest('hex'), pieces: { pieceLength, digests: ingest.digests } };
    } catch (err) {
      await ingest.abort();
      throw this.uploadError(err);
    }
  }

  /** An upload of unknown size (chunked, or a multipart part): to disk, then hashed by createTorrent. */
  private async receive(body: Readable, path: string, declaredBytes: number | undefined, reservation: Reservation | undefined): Promise<Received> {
    // Hashed on the way to disk: the artifact is never read twice.
    const hash = createHash('sha256');
    // A few MiB of queue, not the default 16 KiB: with that, each 64 KiB chunk waited
    // for its own write before the next was read from the socket, and receiving and
    // writing took turns. Now the stream batches queued chunks into one writev while the
    // next arrive: a 256 MiB publish on loopback 1.8-2.0 s -> 1.2-1.5 s.
    const sink = createWriteStream(path, { flags: 'wx', highWaterMark: UPLOAD_WRITE_QUEUE_BYTES });
    if (reservation) reservation.written = () => sink.bytesWritten;
    try {
      await pipeline(
        body.iterator({ destroyOnReturn: false }),
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            yield chunk;
          }
        },
        sink,
      );
    } catch (err) {
      throw this.uploadError(err);
    }
    const size = (await stat(path)).size;
    if (declaredBytes !== undefined && size !== declaredBytes) throw badRequest('body', `received ${size} bytes, Content-Length said ${declaredBytes}`);
    // The upload reaches the disk while the torrent is made (the hash workers read the
    // page cache meanwhile); publish() registers nothing before it has.
    const synced = open(path, 'r')
      .then((fh) => fh.sync().finally(() => fh.close()))
      .catch((err: unknown) => {
        throw this.uploadError(err);
      });
    synced.catch(() => undefined);
    return { sha256: hash.digest('hex'), synced };
  }

  /** What a client is told when its upload could not be stored. */
  private uploadError(err: unknown): unknown {
    if (isNoSpace(err)) return noSpace(`the disk holding ${this.options.dataDir} filled up during the upload`, err);
    if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error).message === 'aborted') {
      return badRequest('body', 'the upload was cut off before its end');
    }
    return err;
  }

  /** Publishes a file or directory already on this volume, in place (it is hashed, not copied). */
  async publishPath(fields: PublishFields, path: string): Promise<Release> {
    if (!isAbsolute(path)) throw badRequest('path', `'${path}' must be an absolute path on the controller`);
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      throw badRequest('path', `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
    if (this.options.pathRoots.length === 0) {
      throw badRequest('path', 'publishing by path is off: start the controller with --path-roots DIR,… naming the directories it may publish from');
    }
    if (!this.options.pathRoots.some((root) => isUnder(real, root))) {
      throw badRequest('path', `${path} is outside the directories releases may be published from (${this.options.pathRoots.join(', ')})`);
    }
    // Compared as real paths: a data dir reached through a symlink would not contain `real` by name.
    const dataDir = await realpath(this.options.dataDir).catch(() => this.options.dataDir);
    if (isUnder(real, dataDir)) throw badRequest('path', `${path} is inside the controller's data dir`);
    return this.publish(fields, undefined, async () => ({ contentPath: real, content: real, field: 'path' }));
  }

  /**
   * Runs one publish of name@version in a fresh staging directory, with `spaceNeeded`
   * bytes reserved for it when given: a second publish of the same release meanwhile is a
   * conflict; the directory is removed afterwards (a committed release has been renamed
   * out of it by then) and the reservation dropped (the disk says it from then on).
   */
  private async staged<T>(fields: PublishFields, spaceNeeded: number | undefined, work: (stagingDir: string, reservation: Reservation | undefined) => Promise<T>): Promise<T> {
    const k = key(fields.name, fields.version);
    if (this.releases.has(k) || this.inFlight.has(k)) throw new ControllerError('conflict', `release ${fields.name}@${fields.version} already exists`);
    this.inFlight.add(k);
    const stagingDir = join(this.stagingDir, randomBytes(8).toString('hex'));
    let reservation: Reservation | undefined;
    try {
      await mkdir(stagingDir, { recursive: true });
      if (spaceNeeded !== undefined) reservation = await this.reserveSpace(spaceNeeded);
      return await work(stagingDir, reservation);
    } finally {
      if (reservation) this.reservations.delete(reservation);
      this.inFlight.delete(k);
      await rm(stagingDir, { recursive: true, force: true });
    }
  }

  private async publish(
    fields: PublishFields,
    spaceNeeded: number | undefined,
    place: (stagingDir: string, reservation: Reservation | undefined) => Promise<{ contentPath: string; content: string; field: string } & Partial<Received>>,
  ): Promise<Release> {
    return this.staged(fields, spaceNeeded, async (stagingDir, reservation) => {
      const placed = await place(stagingDir, reservation);
      let made: { torrent: Buffer; metainfo: Metainfo };
      try {
        made = await createTorrent(placed.contentPath, { ...this.torrentOptions(fields), pieceLength: placed.pieces?.pieceLength, pieces: placed.pieces?.digests });
      } catch (err) {
        if (err instanceof CreateTorrentError) throw badRequest(placed.field, err.message);
        throw err;
      }
      await placed.synced;
      const sha256 = placed.sha256 ?? (await this.sha256Of(placed.contentPath, made.metainfo));
      const record = this.recordOf(fields, made.metainfo, sha256, placed.content);
      this.refuseDuplicate(record);
      const release: Release = { record, metainfo: made.metainfo, torrent: made.torrent, contentPath: placed.contentPath, external: isAbsolute(record.content) };
      await this.commit(release, stagingDir);
      this.releases.set(key(fields.name, fields.version), release);
      return release;
    });
  }

  private torrentOptions(fields: PublishFields): CreateTorrentOptions {
    return {
      announce: [this.options.announceUrl()],
      private: true,
      // Unique per release: the same artifact published as two versions must be two swarms.
      source: `swarmship:${fields.name}@${fields.version}`,
      // Agents verify each piece by these once the signed manifest vouches for them.
      pieceSha256: true,
      hashPool: this.options.hashPool,
    };
  }

  /** A new release's record, its manifest signed. */
  private recordOf(fields: PublishFields, metainfo: Metainfo, sha256: string, content: string): ReleaseRecord {
    const createdAt = new Date(this.now()).toISOString();
    return {
      name: fields.name,
      version: fields.version,
      infoHash: metainfo.infoHashHex,
      bytes: metainfo.length,
      createdAt,
      selector: fields.selector,
      metadata: fields.metadata,
      unpack: fields.unpack,
      content,
      ...this.sign({
        name: fields.name,
        version: fields.version,
        infoHash: metainfo.infoHashHex,
        sha256,
        size: metainfo.length,
        created: createdAt,
        unpack: fields.unpack,
        piecesSha256: piecesSha256Of(metainfo),
      }),
    };
  }

  private refuseDuplicate(record: ReleaseRecord): void {
    const duplicate = [...this.releases.values()].find((r) => r.record.infoHash === record.infoHash && r.record.retiredAt === undefined);
    if (duplicate) {
      throw new ControllerError('conflict', `the same content is already live as ${duplicate.record.name}@${duplicate.record.version} (info hash ${record.infoHash})`);
    }
  }

  /**
   * Writes the torrent and record beside the content in `stagingDir` and renames it into
   * the releases directory; an uploaded release's contentPath then points there.
   */
  private async commit(release: Release, stagingDir: string): Promise<void> {
    const { name, version } = release.record;
    try {
      await writeFileAtomic(join(stagingDir, TORRENT_FILE), release.torrent);
      await writeFileAtomic(join(stagingDir, RECORD_FILE), JSON.stringify(release.record, null, 2) + '\n');
      const nameDir = join(this.releasesDir, name);
      await mkdir(nameDir, { recursive: true });
      const finalDir = join(nameDir, version);
      await rename(stagingDir, finalDir);
      await syncDir(nameDir);
      if (!release.external) release.contentPath = join(finalDir, release.record.content);
    } catch (err) {
      if (isNoSpace(err)) throw noSpace(`the disk holding ${this.options.dataDir} is full`, err);
      throw err;
    }
  }

  /**
   * Refuses an upload of `bytes` that would not fit beside the uploads already under way,
   * else holds room for it until it is stored or given up: two uploads that each fit but
   * not together used to both start, fill the disk, and both fail.
   */
  private async reserveSpace(bytes: number): Promise<Reservation> {
    const free = await this.freeBytes();
    // No await from here on: the check and the reservation happen as one step.
    let promised = 0;
    for (const r of this.reservations) promised += Math.max(0, r.bytes - r.written());
    const available = Math.max(0, free - SPACE_MARGIN_BYTES - promised);
    if (bytes > available) {
      const others = promised > 0 ? ` (${promised} more are promised to uploads under way)` : '';
      throw noSpace(`the upload is ${bytes} bytes but only ${available} bytes are free for releases on the controller${others}`);
    }
    const reservation: Reservation = { bytes, written: () => 0 };
    this.reservations.add(reservation);
    return reservation;
  }

  /** Marks a release retired (idempotent). Its files stay until it is deleted. */
  async retire(name: string, version: string): Promise<Release> {
    const release = this.get(name, version);
    if (release.record.retiredAt !== undefined) return release;
    const record = { ...release.record, retiredAt: new Date(this.now()).toISOString() };
    await writeFileAtomic(join(this.releasesDir, name, version, RECORD_FILE), JSON.stringify(record, null, 2) + '\n');
    release.record = record;
    return release;
  }
}

/** What the sender of an upload said of it before its bytes: enough to make its torrent. */
export interface UploadClaim {
  /** The artifact's length. */
  bytes: number;
  pieceLength: number;
  /** SHA-1 and SHA-256 of each piece. */
  digests: PieceDigests;
  /** Of the whole artifact, hex. */
  sha256: string;
}

/** What the controller does with a release whose upload is still arriving. */
export interface AnnouncedUploadHooks {
  /** Its torrent exists: list and seed it (no piece is in yet). */
  opened(release: Release): Promise<void>;
  /** Piece `index` is on disk and matches its digests. */
  pieceLanded(release: Release, index: number): void;
  /** Its upload failed after opened(): it is no longer registered; stop seeding it. */
  withdrawn(release: Release): Promise<void>;
}

/** What receiving an upload learnt on the way. */
interface Received {
  /** Of the whole artifact, hex. */
  sha256: string;
  /** Settles once the file is on disk, when that is still under way. */
  synced?: Promise<void>;
  /** The torrent's piece digests, when they were made during the upload. */
  pieces?: { pieceLength: number; digests: PieceDigests };
}

function key(name: string, version: string): string {
  return `${name}@${version}`;
}

function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.startsWith(`..${sep}`));
}

function noSpace(message: string, cause?: unknown): ControllerError {
  return new ControllerError('no-space', message, undefined, { cause });
}

/** What a manifest says of the torrent's piece SHA-256 list, when the torrent has one. */
function piecesSha256Of(metainfo: Metainfo): string | undefined {
  return metainfo.pieceSha256 && piecesSha256Digest(metainfo.pieceSha256);
}
