import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { HashPool } from '../../hashing/src/hash-pool.js';
import { SWARMSHIP_VERSION } from '../../contracts/src/version.js';
import type { Handshake, ProtocolError, WireMessage } from '../../wire/src/messages.js';
import { Bitfield } from './bitfield.js';
import { checkPieces } from './check.js';
import { systemClock, type Clock, type Random } from './clock.js';
import { PeerConnection, type ConnectionHandler } from './peer-connection.js';
import type { PeerAddress } from './peer-book.js';
import { FileStorage, layoutFiles, placeFiles, type PieceStorage } from './storage.js';
import { RateGate } from './token-bucket.js';
import { DEFAULT_WRITE_BUFFER_BYTES, Torrent, type TorrentInfo } from './torrent.js';
import type { ChokerSettings } from './choker.js';

/** Azureus-style peer id prefix: client SW, then four version digits (0.1.0 → 0010). */
const PEER_ID_PREFIX = `-SW${SWARMSHIP_VERSION.split('.').map((n) => n.slice(-1)).join('').padStart(4, '0')}-`;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface EngineOptions {
  /** Address to listen on for peers; default all interfaces. */
  host?: string;
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  peerId?: Buffer;
  clock?: Clock;
  random?: Random;
  hashPool?: HashPool;
  /** Bytes per second, all torrents together; Infinity (default) is unlimited. */
  uploadRateLimit?: number;
  downloadRateLimit?: number;
  maxPeersPerTorrent?: number;
  choker?: Partial<ChokerSettings>;
  /** Memory for pieces being assembled, per torrent. */
  writeBufferBytes?: number;
  /** Memory for whole pieces read for upload, per torrent (freed when idle). */
  readCacheBytes?: number;
  /**
   * Write verified pieces, and read pieces for peers, past the page cache (O_DIRECT)
   * where the filesystem allows: the kernel's copy into fresh cache pages was the largest
   * cost of a download, and a release streaming through does not evict what the node's
   * own work keeps cached. A torrent's own `directIo` overrides it. Default false.
   */
  directIo?: boolean;
}

/** The metainfo the engine needs to place files; the metainfo lib's type satisfies it. */
export interface TorrentDescriptor extends TorrentInfo {
  files: { path: string[]; length: number; offset: number }[];
  singleFile: boolean;
}

export interface AddTorrentOptions {
  /** Directory the torrent's files live in (single file: dir/name; many: dir/name/…). */
  dir?: string;
  /** Or the content itself: the file of a single-file torrent, the top directory of a multi-file one. */
  contentPath?: string;
  /**
   * 'seed': the files are complete and read-only to us; 'download': fetch what is
   * missing; 'growing': the files are being written by someone else (an upload arriving)
   * and each piece is seeded once they say it is in (`Torrent.pieceLanded`), never fetched.
   */
  mode: 'seed' | 'download' | 'growing';
  superSeed?: boolean;
  /** Peers to dial, retried with backoff for as long as the torrent runs. */
  peers?: PeerAddress[];
  /** Seed only: trust the files without hashing them (they were just hashed to make the torrent). */
  trustFiles?: boolean;
  onCheckProgress?: (checkedPieces: number, total: number) => void;
  /** Overrides the engine's `directIo` for this torrent. */
  directIo?: boolean;
}

/**
 * The BitTorrent engine of one process: one listening socket, one peer id, one pool of
 * hash workers, and the torrents. Incoming connections are routed to a torrent by the
 * info hash of their handshake.
 */
export class Engine implements ConnectionHandler {
  readonly peerId: Buffer;
  readonly clock: Clock;
  readonly random: Random;
  private readonly hashPool: HashPool;
  private readonly ownsHashPool: boolean;
  private readonly torrents = new Map<string, Torrent>();
  private readonly pending = new Set<PeerConnection>();
  private readonly uploadGate: RateGate;
  private readonly downloadGate: RateGate;
  private server: Server | undefined;
  private listenPort = 0;

  constructor(private readonly options: EngineOptions = {}) {
    this.peerId = options.peerId ?? Buffer.concat([Buffer.from(PEER_ID_PREFIX, 'latin1'), randomBytes(12)]);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.ownsHashPool = !options.hashPool;
    this.hashPool = options.hashPool ?? new HashPool();
    const burst = 1024 * 1024;
    this.uploadGate = new RateGate(options.uploadRateLimit ?? Infinity, burst, this.clock);
    this.downloadGate = new RateGate(options.downloadRateLimit ?? Infinity, burst, this.clock);
  }

  get port(): number {
    return this.listenPort;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      // Paused until PeerConnection.accept has given the socket its own read buffer.
      const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host, () => {
        server.off('error', reject);
        this.server = server;
        const addr = server.address();
        this.listenPort = typeof addr === 'object' && addr ? addr.port : 0;
        resolve(this.listenPort);
      });
    });
  }

  private accept(socket: import('node:net').Socket): void {
    const conn = PeerConnection.accept(socket, this, () => this.clock.now());
    this.pending.add(conn);
    // Only a connection still without a handshake has timed out; the timer outlives the
    // handshake (it is cleared on close), and used to cut every incoming peer at 10 s.
    const timer = this.clock.setTimeout(() => {
      if (!conn.remoteHandshake) conn.destroy(new Error('handshake timed out'));
    }, HANDSHAKE_TIMEOUT_MS);
    conn.socket.once('close', () => this.clock.clearTimeout(timer));
  }

  onHandshake(conn: PeerConnection, h: Handshake): void {
    this.pending.delete(conn);
    const torrent = this.torrents.get(h.infoHash.toString('hex'));
    if (!torrent) return conn.destroy(new Error('unknown info hash'));
    torrent.acceptIncoming(conn, h);
  }
  onMessage(_conn: PeerConnection, _m: WireMessage): void {}
  onProtocolError(conn: PeerConnection, e: ProtocolError): void {
    conn.destroy(e);
  }
  onClose(conn: PeerConnection): void {
    this.pending.delete(conn);
  }
  onDrain(): void {}
  onChunkDone(): void {}

  async addTorrent(info: TorrentDescriptor, options: AddTorrentOptions): Promise<Torrent> {
    const key = info.infoHash.toString('hex');
    if (this.torrents.has(key)) throw new Error(`torrent ${key} is already added`);
    const files = options.contentPath === undefined
      ? layoutFiles(options.dir ?? '.', info.name, info.files, info.singleFile)
      : info.singleFile
        ? placeFiles(dirname(options.contentPath), info.files, basename(options.contentPath))
        : placeFiles(options.contentPath, info.files);
    let storage: PieceStorage;
    let have: Bitfield;
    const directIo = options.directIo ?? this.options.directIo ?? false;
    if (options.mode === 'seed') {
      storage = await FileStorage.openForReading(files, { directIo });
      have = options.trustFiles ? Bitfield.full(info.pieceCount) : await checkPieces(info, storage, this.hashPool, options.onCheckProgress);
    } else if (options.mode === 'growing') {
      storage = await FileStorage.openForReading(files, { directIo });
      have = new Bitfield(info.pieceCount);
    } else {
      const existed = await anyFileHasData(files.map((f) => f.path));
      storage = await FileStorage.openForWriting(files, { directIo });
      have = existed ? await checkPieces(info, storage, this.hashPool, options.onCheckProgress) : new Bitfield(info.pieceCount);
    }
    const torrent = new Torrent({
      info,
      storage,
      have,
      peerId: this.peerId,
      listenPort: this.listenPort,
      hashPool: this.hashPool,
      clock: this.clock,
      random: this.random,
      uploadGate: this.uploadGate,
      downloadGate: this.downloadGate,
      superSeed: options.superSeed ?? false,
      growing: options.mode === 'growing',
      maxPeers: this.options.maxPeersPerTorrent ?? 80,
      choker: this.options.choker ?? {},
      writeBufferBytes: this.options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES,
      ...(this.options.readCacheBytes !== undefined ? { readCacheBytes: this.options.readCacheBytes } : {}),
      clientName: `swarmship ${SWARMSHIP_VERSION}`,
    });
    this.torrents.set(key, torrent);
    torrent.start();
    if (options.peers) torrent.addPeers(options.peers, true);
    return torrent;
  }

  getTorrent(infoHashHex: string): Torrent | undefined {
    return this.torrents.get(infoHashHex);
  }

  async removeTorrent(infoHashHex: string): Promise<void> {
    const torrent = this.torrents.get(infoHashHex);
    if (!torrent) return;
    this.torrents.delete(infoHashHex);
    await torrent.stop();
  }

  async close(): Promise<void> {
    for (const conn of this.pending) conn.destroy(undefined);
    await Promise.all([...this.torrents.keys()].map((k) => this.removeTorrent(k)));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.uploadGate.clear();
    this.downloadGate.clear();
    if (this.ownsHashPool) await this.hashPool.close();
  }
}

async function anyFileHasData(paths: string[]): Promise<boolean> {
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (s && s.size > 0) return true;
  }
  return false;
}
