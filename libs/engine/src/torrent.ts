import { EventEmitter } from 'node:events';
import type { HashPool } from '../../hashing/src/hash-pool.js';
import { parseExtensionHandshake, encodeExtensionHandshake } from '../../wire/src/encode.js';
import type { BlockRef, Handshake, ProtocolError, WireMessage } from '../../wire/src/messages.js';
import { Bitfield } from './bitfield.js';
import { chokeRound, DEFAULT_CHOKER_SETTINGS, INITIAL_CHOKER_STATE, type ChokerSettings, type ChokerState } from './choker.js';
import type { Clock, Random } from './clock.js';
import { PeerConnection, type ConnectionHandler } from './peer-connection.js';
import { INITIAL_PIPELINE, Peer, blockKey } from './peer.js';
import { PieceBufferPool } from './piece-buffers.js';
import { PiecePicker } from './piece-picker.js';
import { RateMeter } from './rate-meter.js';
import { OUR_REQQ, Uploader } from './uploader.js';
import { StorageError, type PieceStorage } from './storage.js';
import { SuperSeedPolicy } from './super-seed.js';
import type { RateGate } from './token-bucket.js';
import { PeerBook, type PeerAddress } from './peer-book.js';

/** What the engine needs of a torrent's metainfo; the metainfo lib's type satisfies it. */
export interface TorrentInfo {
  infoHash: Buffer;
  name: string;
  pieceLength: number;
  pieceCount: number;
  length: number;
  /** SHA-1, 20 bytes a piece. */
  pieceHashes: Buffer;
  /**
   * SHA-256, 32 bytes a piece, when the torrent carries them: pieces are then verified by
   * these (a SHA-1 collision cannot slip a piece in), and their SHA-1 is checked only when
   * the SHA-256 fails, to tell a bad peer from a digest list that disagrees with the torrent.
   */
  pieceSha256?: Buffer | undefined;
}

/** The digest a piece must have: its SHA-256 when the torrent carries them, else its SHA-1. */
export function expectedDigest(info: TorrentInfo, index: number): Buffer {
  return info.pieceSha256 ? info.pieceSha256.subarray(index * 32, index * 32 + 32) : info.pieceHashes.subarray(index * 20, index * 20 + 20);
}

/** The digest of `view` by which the torrent's pieces are verified (see expectedDigest). */
export function pieceDigest(hashPool: HashPool, info: TorrentInfo, view: Uint8Array): Promise<Buffer> {
  return info.pieceSha256 ? hashPool.sha256(view) : hashPool.sha1(view);
}

/** The torrent's SHA-256 list names other bytes than its SHA-1s: a fault of whoever made it, not of any peer. */
export class DigestListError extends Error {
  override name = 'DigestListError';
}

export interface TorrentOptions {
  info: TorrentInfo;
  storage: PieceStorage;
  /** Pieces already verified on disk (resume); the rest are fetched. */
  have: Bitfield;
  peerId: Buffer;
  listenPort: number;
  hashPool: HashPool;
  clock: Clock;
  random: Random;
  uploadGate: RateGate;
  downloadGate: RateGate;
  /** BEP 16: announce pieces one at a time until a full copy exists outside us. */
  superSeed?: boolean;
  /** Pieces are written by someone else and added with pieceLanded(); nothing is fetched from peers. */
  growing?: boolean;
  maxPeers?: number;
  choker?: Partial<ChokerSettings>;
  /** Memory for pieces being assembled and written (bounds write-back memory). */
  writeBufferBytes?: number;
  /** Memory for whole pieces read for upload. */
  readCacheBytes?: number;
  clientName?: string;
}

export interface TorrentStats {
  infoHash: string;
  name: string;
  length: number;
  pieceCount: number;
  verifiedPieces: number;
  /** Bytes of verified pieces. */
  verifiedBytes: number;
  downloadedBytes: number;
  uploadedBytes: number;
  wastedBytes: number;
  hashFailures: number;
  downloadRate: number;
  uploadRate: number;
  peers: number;
  seeds: number;
  complete: boolean;
  superSeeding: boolean;
  peerStats: PeerStats[];
}

export interface PeerStats {
  address: string;
  /** The port it says it listens on (extension handshake), when it said. */
  listenPort: number | undefined;
  client: string | undefined;
  downloadedBytes: number;
  uploadedBytes: number;
  downloadRate: number;
  uploadRate: number;
  wastedBytes: number;
  hashFailures: number;
  pieces: number;
  amChoking: boolean;
  peerChoking: boolean;
  /** Its round trip as our requests measure it (Peer.minRoundTripMs), once measured: it sets the pipeline of a distant peer. */
  roundTripMs?: number;
  /** While we super-seed: how many offered pieces it may hold at once (by its rate), and holds now. */
  offers?: { limit: number; held: number };
}

/**
 * Memory for pieces being assembled, hashed and written. 32 MiB holds two thousand
 * blocks in flight, a quarter of a second (a pipeline, see PIPELINE_SECONDS) of 128 MB/s
 * from all peers together, and keeps an agent well under its memory target.
 */
export const DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;
/**
 * Pieces a super-seeder keeps offered to each peer at once. One (the BEP's choice) makes
 * every piece wait for a round trip through another peer before the next is offered;
 * a few keep each peer's link busy while still sending each piece out about once.
 */
const SUPER_SEED_OFFERS_PER_PEER = 8;
/**
 * Below this upload rate to the fastest peer, rates say nothing yet (start-up, a
 * rate-limited origin) and every peer keeps the full number of offers.
 */
const OFFER_LIMITS_FROM_RATE = 256 * 1024;
/** A peer's rate means something only after this long; before, it keeps the full number of offers. */
const OFFER_LIMIT_AFTER_MS = 5_000;
/**
 * The fewest offers a measured peer keeps: with one, the wait for each piece to be passed
 * on would cap its rate, and its rate would keep its cap at one.
 */
const MIN_OFFERS_PER_PEER = 2;
/**
 * A peer's requests in flight are capped at this multiple of an equal share of the
 * request budget (the blocks of every piece we may assemble at once) among the peers
 * that unchoke us. Without a cap a fast peer's pipeline (then 3 s of its rate) took the
 * whole budget, no new piece could be started for the others, and peers that had
 * unchoked us sat idle: at 16 nodes half of them got no request at all, their upload
 * went unused, and the last nodes finished on a few deep queues seconds after the rest.
 */
const REQUEST_SHARE_FACTOR = 1.5;
const TICK_MS = 1000;
const CHOKE_EVERY_TICKS = 10;
/** A read cache nobody used for this many ticks is freed. */
const IDLE_CACHE_TRIM_TICKS = 30;
const KEEPALIVE_AFTER_MS = 90_000;
const IDLE_TIMEOUT_MS = 180_000;
/** With requests outstanding and no block for this long, a peer is snubbed: its requests go elsewhere. */
const SNUB_AFTER_MS = 20_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A peer whose data failed the hash this many times (alone) is banned. */
const BAN_AFTER_STRIKES = 2;
/** Frames only a broken or hostile peer sends; the connection's address is banned at once. */
const HOSTILE_PROTOCOL_ERRORS: ReadonlySet<ProtocolError['code']> = new Set(['message-too-long', 'bad-index']);

/**
 * One torrent in the engine: its peers, what to request from whom, what to serve, and
 * the pieces it verifies and stores. Events: 'piece' (index), 'complete', 'error'
 * (Error; the torrent stops), 'banned' (address, reason), 'super-seed-ended'.
 */
export class Torrent extends EventEmitter implements ConnectionHandler {
  readonly info: TorrentInfo;
  readonly infoHashHex: string;
  readonly picker: PiecePicker;
  readonly have: Bitfield;
  readonly peers = new Map<string, Peer>();
  readonly book: PeerBook;
  private readonly o: TorrentOptions;
  private readonly clock: Clock;
  private readonly buffers: PieceBufferPool;
  private readonly assembling = new Map<number, Buffer>();
  /** Pieces on their way through a hash worker (and maybe to disk). */
  private readonly verifying = new Set<Promise<void>>();
  private readonly uploader: Uploader;
  private readonly chokerSettings: ChokerSettings;
  private chokerState: ChokerState = INITIAL_CHOKER_STATE;
  private chokeScheduled = false;
  private superSeed: SuperSeedPolicy | undefined;
  /** While super-seeding: the pieces each peer has been told we have, by peer key. */
  private readonly banned = new Set<string>();
  private readonly strikes = new Map<string, number>();
  private readonly connecting = new Set<PeerConnection>();
  private ticker: unknown;
  private ticks = 0;
  private stopped = false;
  private completeEmitted = false;
  readonly downloaded: RateMeter;
  readonly uploaded: RateMeter;
  wastedBytes = 0;
  hashFailures = 0;
  private readonly scratch: BlockRef[] = [];
  /** The most requests one peer may have in flight (REQUEST_SHARE_FACTOR), set each tick. */
  private requestShare = Infinity;

  constructor(options: TorrentOptions) {
    super();
    this.o = options;
    this.info = options.info;
    this.infoHashHex = options.info.infoHash.toString('hex');
    this.clock = options.clock;
    this.have = options.have;
    this.book = new PeerBook(options.clock, options.random);
    const pieceLength = this.info.pieceLength;
    const writeBudget = options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES;
    const maxPartials = Math.max(4, Math.min(512, Math.floor(writeBudget / pieceLength)));
    this.picker = new PiecePicker({
      pieceCount: this.info.pieceCount,
      pieceLength,
      totalLength: this.info.length,
      random: options.random,
      maxPartialPieces: maxPartials,
    });
    for (let i = 0; i < this.info.pieceCount; i++) if (this.have.has(i)) this.picker.markVerified(i);
    this.buffers = new PieceBufferPool(pieceLength, maxPartials);
    this.uploader = new Uploader({
      storage: options.storage,
      pieceLength,
      pieceSize: (i) => this.picker.pieceSize(i),
      readCacheBytes: options.readCacheBytes ?? 32 * 1024 * 1024,
      gate: options.uploadGate,
      mayServe: (peer, index) =>
        this.have.has(index) && (!this.superSeed || this.superSeed.mayServe(peer.key, index)),
      onSent: (peer, bytes) => {
        peer.upload.add(bytes);
        peer.uploadedSinceUnchoke += bytes;
        this.uploaded.add(bytes);
      },
      onError: (err) => this.fail(err),
      onFlood: (peer, reason) => this.ban(peer.conn.remoteAddress, reason),
    });
    this.chokerSettings = { ...DEFAULT_CHOKER_SETTINGS, ...options.choker };
    // One piece cannot be offered without completing the peer's view of us at once,
    // which libtorrent answers by disconnecting (see SuperSeedPolicy.refill); seed it normally.
    if (options.superSeed && (this.have.complete || options.growing) && this.info.pieceCount > 1) {
      this.superSeed = new SuperSeedPolicy(this.info.pieceCount, options.random, {
        offersPerPeer: SUPER_SEED_OFFERS_PER_PEER,
        available: this.have,
        now: () => this.clock.now(),
      });
    }
    this.downloaded = new RateMeter(this.clock);
    this.uploaded = new RateMeter(this.clock);
  }

  get complete(): boolean {
    return this.have.complete;
  }

  /** Whether we ask peers for pieces: not once complete, nor while the pieces come from outside the swarm. */
  private get fetching(): boolean {
    return !this.complete && this.o.growing !== true;
  }

  get superSeeding(): boolean {
    return this.superSeed !== undefined;
  }

  /**
   * Pieces started and not yet verified and written: requested, arriving, or being
   * hashed and written. What a crash now would cost is at most these pieces.
   */
  get piecesInFlight(): number {
    return this.picker.partialPieces;
  }

  start(): void {
    this.ticker = this.clock.setInterval(() => this.tick(), TICK_MS);
    if (this.complete) this.emitCompleteOnce();
    this.connectToPeers();
  }

  /** Adds addresses to try (from --peer or a tracker); `persistent` ones are retried forever. */
  addPeers(addresses: PeerAddress[], persistent = false): void {
    for (const a of addresses) this.book.add(a, persistent);
    if (this.ticker !== undefined) this.connectToPeers();
  }

  /**
   * Addresses known to be back (an agent's controller answers again after an outage, so
   * its origin restarted): dialled now rather than when their backoff, grown through the
   * outage, would next allow.
   */
  redial(addresses: PeerAddress[]): void {
    const now = this.clock.now();
    for (const a of addresses) {
      this.book.add(a, true);
      this.book.retryNow(this.book.keyOf(a), now);
    }
    if (this.ticker !== undefined) this.connectToPeers();
  }

  // ---- connections ----------------------------------------------------------------

  private connectToPeers(): void {
    if (this.stopped) return;
    const room = (this.o.maxPeers ?? 80) - this.peers.size - this.connecting.size;
    for (const address of this.book.due(room, this.clock.now())) {
      if (this.banned.has(address.host)) continue;
      this.dial(address);
    }
  }

  private dial(address: PeerAddress): void {
    const conn = PeerConnection.dial(address.host, address.port, this, () => this.clock.now());
    const socket = conn.socket;
    conn.readGate = this.o.downloadGate;
    conn.bookKey = this.book.keyOf(address);
    this.connecting.add(conn);
    this.book.attempting(conn.bookKey);
    const timer = this.clock.setTimeout(() => {
      if (!conn.remoteHandshake) conn.destroy(new Error('handshake timed out'));
    }, HANDSHAKE_TIMEOUT_MS);
    socket.once('connect', () => conn.sendHandshake(this.info.infoHash, this.o.peerId));
    socket.once('close', () => this.clock.clearTimeout(timer));
  }

  /** An incoming connection whose handshake named this torrent (routed by the engine). */
  acceptIncoming(conn: PeerConnection, h: Handshake): void {
    conn.handler = this;
    conn.readGate = this.o.downloadGate;
    if (this.stopped || this.peers.size >= (this.o.maxPeers ?? 80) || this.banned.has(conn.remoteAddress)) {
      conn.destroy(undefined);
      return;
    }
    conn.sendHandshake(this.info.infoHash, this.o.peerId);
    this.onHandshake(conn, h);
  }

  onHandshake(conn: PeerConnection, h: Handshake): void {
    this.connecting.delete(conn);
    if (!h.infoHash.equals(this.info.infoHash)) return conn.destroy(new Error('peer handshake names another torrent'));
    if (h.peerId.equals(this.o.peerId)) {
      if (conn.bookKey) this.book.isSelf(conn.bookKey);
      return conn.destroy(new Error('connected to ourselves'));
    }
    for (const other of this.peers.values()) {
      if (!other.peerId.equals(h.peerId)) continue;
      // Both sides dialled each other. Keep the connection dialled by the side with the
      // smaller peer id; both ends reach the same verdict without talking.
      const weDialledThis = conn.outgoing;
      const keepOurs = Buffer.compare(this.o.peerId, h.peerId) < 0;
      if (weDialledThis !== keepOurs) return conn.destroy(new Error('duplicate connection'));
      other.conn.destroy(new Error('duplicate connection'));
    }
    if (conn.bookKey) this.book.connected(conn.bookKey);
    conn.decoder.setPieceCount(this.info.pieceCount);
    const peer = new Peer(conn, this.info.pieceCount, this.clock);
    this.peers.set(peer.key, peer);
    peerOf.set(conn, peer);
    this.sendOpening(peer);
  }

  private sendOpening(peer: Peer): void {
    const conn = peer.conn;
    if (conn.supportsExtensions) {
      conn.send({
        type: 'extended',
        id: 0,
        payload: encodeExtensionHandshake({ m: {}, v: this.o.clientName ?? 'swarmship', p: this.o.listenPort, reqq: OUR_REQQ }).subarray(6),
      });
    }
    const count = this.superSeed ? 0 : this.have.count;
    if (conn.supportsFast && count === 0) conn.send({ type: 'have-none' });
    else if (conn.supportsFast && count === this.info.pieceCount) conn.send({ type: 'have-all' });
    else if (count > 0) conn.send({ type: 'bitfield', bitfield: this.have.toBuffer() });
  }

  onClose(conn: PeerConnection, err: Error | undefined): void {
    this.connecting.delete(conn);
    if (conn.bookKey) this.book.disconnected(conn.bookKey, this.clock.now(), err !== undefined || !conn.remoteHandshake);
    const peer = peerOf.get(conn);
    if (!peer || this.peers.get(peer.key) !== peer) return;
    this.peers.delete(peer.key);
    peer.cancelRateWait?.();
    this.picker.peerGone(peer.key);
    peer.outstanding.clear();
    if (peer.bitfieldSeen) this.picker.peerLostPieces((i) => peer.has.has(i));
    if (this.superSeed && peer.bitfieldSeen) this.sendOffers(this.superSeed.peerLeft(peer.key));
    if (!peer.amChoking) this.scheduleChoke();
    // Its requests may have been the last ones for some blocks: hand them to others.
    for (const p of this.peers.values()) this.fillRequests(p);
    this.connectToPeers();
  }

  onProtocolError(conn: PeerConnection, e: ProtocolError): void {
    // A frame no honest client sends (a 4 GiB length, a piece past the end) is hostile, not
    // a bug worth retrying: its address is banned from this torrent. Other faults only drop.
    if (peerOf.get(conn) && HOSTILE_PROTOCOL_ERRORS.has(e.code)) return this.ban(conn.remoteAddress, e.message);
    conn.destroy(e);
  }

  onDrain(conn: PeerConnection): void {
    const peer = peerOf.get(conn);
    if (peer) this.uploader.serve(peer);
  }

  onChunkDone(conn: PeerConnection): void {
    const peer = peerOf.get(conn);
    if (peer) this.fillRequests(peer);
  }

  // ---- messages -------------------------------------------------------------------

  onMessage(conn: PeerConnection, m: WireMessage): void {
    const peer = peerOf.get(conn);
    if (!peer) return;
    if (!peer.bitfieldSeen && m.type !== 'bitfield' && m.type !== 'have-all' && m.type !== 'have-none' && m.type !== 'extended') {
      this.bitfieldArrived(peer);
    }
    switch (m.type) {
      case 'keep-alive':
        return;
      case 'choke':
        peer.peerChoking = true;
        // Without the fast extension a choke silently drops our requests; with it the
        // peer rejects them one by one, but forgetting them now is harmless either way.
        this.giveUpRequests(peer);
        return;
      case 'unchoke':
        peer.peerChoking = false;
        return this.fillRequests(peer);
      case 'interested':
        peer.peerInterested = true;
        return this.scheduleChoke();
      case 'not-interested':
        // Its slot is taken back at the next regular round, not now: a peer that has
        // everything we offered so far (super-seeding, or early in a swarm) is about to
        // want the next piece, and choking it now would cost a round trip each time.
        peer.peerInterested = false;
        return;
      case 'have':
        return this.peerHas(peer, m.index);
      case 'bitfield':
      case 'have-all':
      case 'have-none':
        return this.bitfieldArrived(peer, m);
      case 'request':
        return this.uploader.request(peer, m);
      case 'cancel':
        return this.uploader.cancel(peer, m);
      case 'piece':
        return this.onPiece(peer, m.index, m.begin, m.block);
      case 'reject': {
        const k = blockKey(m.index, m.begin);
        if (peer.outstanding.delete(k)) this.picker.abandon(m.index, m.begin, peer.key);
        peer.givenUp.delete(k);
        return;
      }
      case 'extended':
        if (m.id === 0) {
          try {
            const ext = parseExtensionHandshake(m.payload);
            if (ext.reqq !== undefined && ext.reqq > 0) peer.reqq = ext.reqq;
            peer.clientName = ext.v;
            peer.listenPort = ext.p;
            // An incoming peer is remembered by the port it listens on, so that when it
            // goes (an agent re-adding a finished download as a seed drops every
            // connection) we dial it back: otherwise neither side knows the other.
            if (!conn.outgoing && !conn.bookKey && ext.p !== undefined && ext.p > 0 && ext.p < 65536) {
              const address = { host: conn.remoteAddress, port: ext.p };
              this.book.add(address, false);
              conn.bookKey = this.book.keyOf(address);
              this.book.connected(conn.bookKey);
            }
          } catch (e) {
            conn.destroy(e as Error);
          }
        }
        return;
      case 'port':
      case 'suggest':
      case 'allowed-fast':
      case 'unknown':
        return;
    }
  }

  private bitfieldArrived(peer: Peer, m?: WireMessage): void {
    if (peer.bitfieldSeen) {
      // BEP 3 allows a bitfield only first, but aria2 sends one later in place of a run
      // of HAVEs, and drops and bans a peer that disconnects it for that. A peer cannot
      // lose pieces, so a late bitfield (or have-all) counts for the pieces it adds.
      if (m?.type !== 'bitfield' && m?.type !== 'have-all') return;
      const late = m.type === 'bitfield' ? new Bitfield(this.info.pieceCount, m.bitfield) : Bitfield.full(this.info.pieceCount);
      for (let i = 0; i < this.info.pieceCount && !peer.conn.closed; i++) if (late.has(i)) this.peerHas(peer, i);
      return;
    }
    peer.bitfieldSeen = true;
    if (m?.type === 'bitfield') peer.has = new Bitfield(this.info.pieceCount, m.bitfield);
    else if (m?.type === 'have-all') peer.has = Bitfield.full(this.info.pieceCount);
    this.picker.peerHasPieces((i) => peer.has.has(i));
    if (this.superSeed) {
      for (const index of this.superSeed.peerJoined(peer.key, peer.has)) peer.conn.send({ type: 'have', index });
    }
    if (peer.isSeed && this.complete) return this.dropSeed(peer);
    this.updateInterest(peer);
  }

  private peerHas(peer: Peer, index: number): void {
    if (!peer.bitfieldSeen) this.bitfieldArrived(peer);
    if (!peer.has.set(index)) return;
    this.picker.peerHasPiece(index);
    if (this.superSeed) {
      this.sendOffers(this.superSeed.peerHas(peer.key, index));
      if (this.superSeed.fullCopyOutside) this.endSuperSeeding();
    }
    if (!peer.amInterested && this.fetching && !this.picker.isVerified(index)) this.setInterested(peer, true);
    if (peer.isSeed && this.complete) this.dropSeed(peer);
  }

  /** Two seeds have nothing to trade, now or ever (we stay complete): closed, and never dialled again. */
  private dropSeed(peer: Peer): void {
    if (peer.conn.bookKey) this.book.isSeed(peer.conn.bookKey);
    peer.conn.destroy(undefined);
  }

  private updateInterest(peer: Peer): void {
    const want = this.fetching && this.picker.wantsFrom({ key: peer.key, has: (i) => peer.has.has(i) });
    this.setInterested(peer, want);
  }

  private setInterested(peer: Peer, interested: boolean): void {
    if (peer.amInterested === interested) return;
    peer.amInterested = interested;
    peer.conn.send({ type: interested ? 'interested' : 'not-interested' });
    if (interested) this.fillRequests(peer);
  }

  // ---- downloading ----------------------------------------------------------------

  /**
   * Our requests to `peer` go back to the picker (it choked us, or it is too slow), but
   * may still be answered: a block that comes after all is taken if it is still wanted.
   */
  private giveUpRequests(peer: Peer): void {
    for (const [key, r] of peer.outstanding) {
      this.picker.abandon(r.index, r.begin, peer.key);
      peer.giveUp(key);
    }
    peer.outstanding.clear();
  }

  /** Tops up the requests in flight to `peer` to its pipeline depth. */
  private fillRequests(peer: Peer): void {
    if (this.stopped || peer.peerChoking || !peer.amInterested || !this.fetching) return;
    const depth = Math.min(peer.pipelineDepth(this.picker.blockLength), this.requestShare);
    const want = depth - peer.outstanding.size;
    // Top up in batches: one write of many requests beats many writes of one.
    if (want <= 0 || (peer.outstanding.size > 0 && want < depth >> 3)) return;
    const out = this.scratch;
    out.length = 0;
    this.picker.pick({ key: peer.key, has: (i) => peer.has.has(i) }, want, out);
    if (out.length === 0) return;
    peer.requesting(this.clock.now());
    for (const r of out) peer.outstanding.set(blockKey(r.index, r.begin), r);
    peer.conn.sendRequests(out);
  }

  private onPiece(peer: Peer, index: number, begin: number, block: Buffer): void {
    const now = this.clock.now();
    const size = this.picker.pieceSize(index);
    const blockLength = this.picker.blockLength;
    if (begin % blockLength !== 0 || begin >= size || block.length !== Math.min(blockLength, size - begin)) {
      return this.ban(peer.conn.remoteAddress, `sent a block of piece ${index} at ${begin} with a wrong length ${block.length}`);
    }
    // We only ask a peer for pieces it said it has: a block of any other piece is a lie.
    if (!peer.has.has(index)) return this.ban(peer.conn.remoteAddress, `sent a block of piece ${index}, which it never said it had`);
    const ref = blockKey(index, begin);
    const inFlight = peer.outstanding.delete(ref);
    const requested = inFlight || peer.givenUp.delete(ref);
    peer.download.add(block.length);
    this.downloaded.add(block.length);
    if (!requested) {
      // Never asked of this peer (or cancelled): kept out of the piece, or a peer could
      // slip bad blocks into a piece others are sending and dodge the blame.
      peer.wastedBytes += block.length;
      this.wastedBytes += block.length;
      return;
    }
    peer.blockArrived(now, inFlight);
    const outcome = this.picker.received(index, begin, peer.key);
    if (!outcome.accepted) {
      peer.wastedBytes += block.length;
      this.wastedBytes += block.length;
      return;
    }
    let buf = this.assembling.get(index);
    if (!buf) {
      buf = this.buffers.acquire();
      if (!buf) {
        // Cannot happen while the picker's partial limit equals the pool size; refuse
        // the block rather than grow memory without bound.
        this.picker.abandon(index, begin, peer.key);
        return;
      }
      this.assembling.set(index, buf);
    }
    block.copy(buf, begin);
    for (const key of outcome.cancel) {
      const other = this.peers.get(key);
      if (other?.outstanding.delete(blockKey(index, begin))) {
        other.conn.send({ type: 'cancel', index, begin, length: block.length });
      }
    }
    if (outcome.pieceComplete) {
      this.assembling.delete(index);
      const job = this.verifyAndStore(index, buf, size);
      this.verifying.add(job);
      void job.finally(() => this.verifying.delete(job));
    }
  }

  /**
   * Hashes a complete piece and, if it matches, writes it: both on a hash worker when
   * the storage has descriptors (the piece's memory moves there and back, no copy), else
   * hash on a worker and write from here.
   */
  private async verifyAndStore(index: number, buf: Buffer, size: number): Promise<void> {
    const expected = expectedDigest(this.info, index);
    const sha1 = this.info.pieceHashes.subarray(index * 20, index * 20 + 20);
    const offset = index * this.info.pieceLength;
    let ok = false;
    try {
      const segments = this.o.storage.segments?.(offset, size);
      if (segments) {
        const result = await this.o.hashPool.verifyAndWrite(buf, size, expected, segments, this.info.pieceSha256 ? sha1 : undefined);
        buf = result.buffer;
        if (result.writeError) throw new StorageError(`cannot write piece ${index}: ${result.writeError.code ?? result.writeError.message}`, result.writeError.code, '');
        if (result.sha1Matched) throw new DigestListError(`piece ${index} has the torrent's SHA-1 but not its SHA-256 in 'pieces sha256': the torrent's digest lists disagree, no copy can verify`);
        ok = result.ok;
      } else {
        const view = buf.subarray(0, size);
        ok = (await pieceDigest(this.o.hashPool, this.info, view)).equals(expected);
        if (ok && !this.stopped) await this.o.storage.write(offset, view);
      }
    } catch (err) {
      if (buf.length === 0) this.buffers.forget();
      else this.buffers.release(buf);
      return this.fail(err as Error);
    }
    this.buffers.release(buf);
    if (this.stopped) return;
    if (ok) {
      this.gained(index);
      if (this.complete) await this.onDownloadComplete();
    } else {
      this.hashFailures++;
      this.wastedBytes += size;
      const contributors = this.picker.markFailed(index);
      for (const key of contributors) {
        const p = this.peers.get(key);
        if (p) p.hashFailures++;
      }
      if (contributors.length === 1) this.strike(contributors[0]!, `sent data for piece ${index} that failed its hash`);
    }
    for (const p of this.peers.values()) this.fillRequests(p);
  }

  private strike(key: string, reason: string): void {
    const peer = this.peers.get(key);
    const address = peer?.conn.remoteAddress ?? key.slice(0, key.lastIndexOf(':'));
    const n = (this.strikes.get(address) ?? 0) + 1;
    this.strikes.set(address, n);
    if (n < BAN_AFTER_STRIKES) return;
    this.ban(address, reason);
  }

  /** No more connections with `address` for this torrent: those open are closed, it is never dialled or accepted again. */
  private ban(address: string, reason: string): void {
    if (!this.banned.has(address)) {
      this.banned.add(address);
      this.emit('banned', address, reason);
    }
    for (const p of this.peers.values()) if (p.conn.remoteAddress === address) p.conn.destroy(new Error(`banned: ${reason}`));
    for (const c of this.connecting) if (c.remoteAddress === address) c.destroy(new Error(`banned: ${reason}`));
  }

  private async onDownloadComplete(): Promise<void> {
    // Now the HAVEs held back tell each peer something: that we are a seed.
    for (const p of this.peers.values()) this.sendHeldHaves(p);
    try {
      await this.o.storage.sync();
    } catch (err) {
      return this.fail(err as Error);
    }
    for (const p of this.peers.values()) {
      if (p.isSeed) this.dropSeed(p);
      else this.setInterested(p, false);
    }
    this.scheduleChoke();
    this.emitCompleteOnce();
  }

  private emitCompleteOnce(): void {
    if (this.completeEmitted) return;
    this.completeEmitted = true;
    this.emit('complete');
  }

  // ---- choking ----------------------------------------------------------------------

  /** Runs a choke round soon: a peer's interest changed, or a slot may have freed. */
  private scheduleChoke(): void {
    if (this.chokeScheduled) return;
    this.chokeScheduled = true;
    setImmediate(() => {
      this.chokeScheduled = false;
      this.runChoker();
    });
  }

  private runChoker(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const candidates = [...this.peers.values()].map((p) => ({
      key: p.key,
      interested: p.peerInterested,
      isSeed: p.isSeed,
      downloadRate: p.download.rate(),
      uploadRate: p.upload.rate(),
      uploadedSinceUnchoke: p.uploadedSinceUnchoke,
      connectedAt: p.connectedAt,
    }));
    // A super-seeder unchokes everyone: each peer may only fetch the few pieces offered to
    // it, and an offer made to a peer left choked is a piece nobody can get until the next
    // rotation (at 16 nodes, 7 of 16 peers held 56 such pieces while the swarm starved).
    const settings = this.superSeed ? { ...this.chokerSettings, slots: Math.max(this.chokerSettings.slots, this.peers.size) } : this.chokerSettings;
    const decision = chokeRound(candidates, this.chokerState, { now, seeding: !this.fetching, random: this.o.random }, settings);
    this.chokerState = decision.state;
    for (const peer of this.peers.values()) {
      const unchoke = decision.unchoke.has(peer.key);
      if (unchoke && peer.amChoking) {
        peer.amChoking = false;
        peer.uploadedSinceUnchoke = 0;
        peer.refusedRequests = 0;
        peer.conn.send({ type: 'unchoke' });
      } else if (!unchoke && !peer.amChoking) {
        peer.amChoking = true;
        peer.conn.send({ type: 'choke' });
        this.uploader.choked(peer);
      }
    }
  }

  /**
   * A growing torrent's piece is written and verified by its owner (an upload's hash
   * workers): it is ours to serve from now on, offered one peer at a time while we
   * super-seed, else announced to every peer.
   */
  pieceLanded(index: number): void {
    if (this.o.growing !== true) throw new Error('pieceLanded is for a torrent added as growing');
    if (this.stopped || this.have.has(index)) return;
    this.gained(index);
    if (!this.complete) return;
    for (const p of this.peers.values()) if (p.isSeed) this.dropSeed(p);
    this.emitCompleteOnce();
  }

  /** A piece is ours, verified and on disk: offered one peer at a time while we super-seed, else announced to all. */
  private gained(index: number): void {
    this.picker.markVerified(index);
    this.have.set(index);
    if (this.superSeed) this.sendOffers(this.superSeed.pieceAvailable(index));
    else for (const p of this.peers.values()) this.announce(p, index);
    this.emit('piece', index);
  }

  /**
   * Tells a peer we have a piece. A peer that holds the piece already and is downloading
   * from us does nothing with the news: its HAVE waits for the next tick and goes with
   * the others held for that peer in one write. Sent one by one, they were most of an
   * agent's writes (a 9-byte packet per piece and peer, 16 k per agent in a 16-node
   * swarm of 1024 pieces), and about a third are for pieces the peer holds. Peers not
   * interested in us get every HAVE at once: a seed watching its pieces spread
   * (super-seeding), and a peer that may become interested through it.
   */
  private announce(peer: Peer, index: number): void {
    if (peer.peerInterested && peer.has.has(index)) peer.heldHaves.push(index);
    else peer.conn.send({ type: 'have', index });
  }

  private sendHeldHaves(peer: Peer): void {
    if (peer.heldHaves.length === 0) return;
    peer.conn.sendHaves(peer.heldHaves);
    peer.heldHaves.length = 0;
  }

  // ---- super-seeding ------------------------------------------------------------

  private sendOffers(offers: Map<string, number[]>): void {
    for (const [key, pieces] of offers) {
      const peer = this.peers.get(key);
      if (peer) for (const index of pieces) peer.conn.send({ type: 'have', index });
    }
  }

  /**
   * Each peer may hold offers in proportion to how fast it takes them, so the pieces a
   * slow peer holds alone are few and the fast peers never wait on it for their last ones.
   */
  private limitOffersByRate(policy: SuperSeedPolicy): void {
    let fastest = 0;
    for (const p of this.peers.values()) if (p.bitfieldSeen) fastest = Math.max(fastest, p.upload.rate());
    if (fastest < OFFER_LIMITS_FROM_RATE) return;
    const now = this.clock.now();
    for (const p of this.peers.values()) {
      if (!p.bitfieldSeen) continue;
      const measured = now - p.connectedAt >= OFFER_LIMIT_AFTER_MS;
      const limit = measured ? Math.max(MIN_OFFERS_PER_PEER, Math.ceil((SUPER_SEED_OFFERS_PER_PEER * p.upload.rate()) / fastest)) : SUPER_SEED_OFFERS_PER_PEER;
      for (const index of policy.setOfferLimit(p.key, limit)) p.conn.send({ type: 'have', index });
    }
  }

  /** A full copy exists outside us: announce everything and seed normally. */
  private endSuperSeeding(): void {
    const policy = this.superSeed;
    if (!policy) return;
    this.superSeed = undefined;
    for (const peer of this.peers.values()) {
      const unshown = (i: number) => !policy.mayServe(peer.key, i);
      // Pieces it lacks first, so it is interested before the HAVE that completes its set.
      for (let i = 0; i < this.info.pieceCount; i++) if (unshown(i) && !peer.has.has(i)) peer.conn.send({ type: 'have', index: i });
      for (let i = 0; i < this.info.pieceCount; i++) if (unshown(i) && peer.has.has(i)) peer.conn.send({ type: 'have', index: i });
    }
    this.emit('super-seed-ended');
  }

  // ---- housekeeping -----------------------------------------------------------------

  private tick(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    this.ticks++;
    this.requestShare = this.shareOfRequests();
    for (const peer of this.peers.values()) {
      peer.tick();
      this.sendHeldHaves(peer);
      if (now - peer.conn.lastReceivedAt > IDLE_TIMEOUT_MS) {
        peer.conn.destroy(new Error('peer idle'));
        continue;
      }
      if (now - peer.conn.lastSentAt > KEEPALIVE_AFTER_MS) peer.conn.send({ type: 'keep-alive' });
      if (peer.outstanding.size > 0 && now - peer.lastBlockAt > SNUB_AFTER_MS) {
        this.giveUpRequests(peer);
        peer.lastBlockAt = now;
        // Unchoked us, took requests and never sent a block: it would only hoard the next ones.
        if (peer.download.total === 0) {
          peer.conn.destroy(new Error(`sent no block in ${SNUB_AFTER_MS / 1000} s of being asked`));
          continue;
        }
      }
      if (peer.amInterested) this.updateInterest(peer);
      this.fillRequests(peer);
    }
    if (this.ticks % CHOKE_EVERY_TICKS === 0) this.runChoker();
    if (this.superSeed) {
      this.limitOffersByRate(this.superSeed);
      this.sendOffers(this.superSeed.overdueOffers());
    }
    if (this.ticks % IDLE_CACHE_TRIM_TICKS === 0) this.uploader.trimIfIdle();
    this.connectToPeers();
  }

  private shareOfRequests(): number {
    let sources = 0;
    for (const p of this.peers.values()) if (!p.peerChoking && p.amInterested) sources++;
    const budget = this.picker.maxPartialPieces * Math.ceil(this.info.pieceLength / this.picker.blockLength);
    return Math.max(INITIAL_PIPELINE, Math.ceil((REQUEST_SHARE_FACTOR * budget) / Math.max(1, sources)));
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.emit('error', err);
    void this.stop();
  }

  stats(): TorrentStats {
    let seeds = 0;
    const peerStats: PeerStats[] = [];
    for (const p of this.peers.values()) {
      if (p.isSeed) seeds++;
      const offers = this.superSeed?.offersOf(p.key);
      peerStats.push({
        address: p.key,
        listenPort: p.listenPort,
        client: p.clientName,
        downloadedBytes: p.download.total,
        uploadedBytes: p.upload.total,
        downloadRate: p.download.rate(),
        uploadRate: p.upload.rate(),
        wastedBytes: p.wastedBytes,
        hashFailures: p.hashFailures,
        pieces: p.has.count,
        amChoking: p.amChoking,
        peerChoking: p.peerChoking,
        ...(Number.isFinite(p.minRoundTripMs) ? { roundTripMs: p.minRoundTripMs } : {}),
        ...(offers ? { offers } : {}),
      });
    }
    const lastSize = this.picker.pieceSize(this.info.pieceCount - 1);
    const verifiedBytes = this.have.count * this.info.pieceLength - (this.have.has(this.info.pieceCount - 1) ? this.info.pieceLength - lastSize : 0);
    return {
      infoHash: this.infoHashHex,
      name: this.info.name,
      length: this.info.length,
      pieceCount: this.info.pieceCount,
      verifiedPieces: this.have.count,
      verifiedBytes,
      downloadedBytes: this.downloaded.total,
      uploadedBytes: this.uploaded.total,
      wastedBytes: this.wastedBytes,
      hashFailures: this.hashFailures,
      downloadRate: this.downloaded.rate(),
      uploadRate: this.uploaded.rate(),
      peers: this.peers.size,
      seeds,
      complete: this.complete,
      superSeeding: this.superSeeding,
      peerStats,
    };
  }

  /** Closes every connection and the storage. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearInterval(this.ticker);
    for (const conn of this.connecting) conn.destroy(undefined);
    for (const p of this.peers.values()) p.conn.destroy(undefined);
    this.uploader.clear();
    // Workers write through our descriptors: close them only once no write is in
    // flight, or a reused descriptor number could send a piece into another file.
    await Promise.allSettled([...this.verifying]);
    await this.o.storage.close();
  }
}

const peerOf = new WeakMap<PeerConnection, Peer>();
