import type { BlockRef } from '../../wire/src/messages.js';
import type { Peer } from './peer.js';
import { PieceReadCache } from './read-cache.js';
import type { PieceStorage } from './storage.js';
import type { RateGate } from './token-bucket.js';

/**
 * Stop queueing into a socket past this many unsent bytes, for a peer we send to fast...
 */
export const SEND_HIGH_WATER = 4 * 1024 * 1024;
/**
 * ...or past this many seconds of what we send it, for a slower one. The kernel's own
 * send buffer (hundreds of KiB once TCP has tuned it) keeps the link busy; ours only
 * bridges the moment until we are called to queue more. Every byte queued here delays
 * the HAVEs and requests we send that peer after it (decision 0019).
 */
const SEND_QUEUE_SECONDS = 0.02;
/** ...but never less than one block. */
export const SEND_HIGH_WATER_MIN = 16 * 1024;
/**
 * Start again once the queue is down to this share of its high water. Node's 'drain'
 * waits for an empty queue, which leaves the link idle while the next piece is read.
 */
const SEND_LOW_WATER_SHARE = 0.25;
/** Pieces read ahead of the one being sent, for a peer's queued requests. */
const READ_AHEAD_PIECES = 2;
/** Requests from a peer beyond this many in flight are refused; we advertise it as reqq. */
export const OUR_REQQ = 2048;
/**
 * Requests refused since we last unchoked a peer, past which it is flooding us: an honest
 * peer has at most its pipeline (our reqq) in flight when we choke it, and then stops.
 * Each refusal may cost a reject message, so a peer left to flood could make us queue
 * replies without end into a socket it never reads.
 */
export const MAX_REFUSED_REQUESTS = 2 * OUR_REQQ;

export interface UploaderOptions {
  storage: PieceStorage;
  pieceLength: number;
  pieceSize(index: number): number;
  readCacheBytes: number;
  gate: RateGate;
  /** Whether `peer` may have piece `index` now (we have it; super-seeding offered it). */
  mayServe(peer: Peer, index: number): boolean;
  onSent(peer: Peer, bytes: number): void;
  onError(err: Error): void;
  /** The peer floods us with requests we refuse: the torrent bans it. */
  onFlood(peer: Peer, reason: string): void;
}

/**
 * The serving side of a torrent: peers' requests queue per peer and are answered from
 * whole pieces read once into a cache, while the socket takes them and the upload rate
 * allows.
 */
export class Uploader {
  private readonly cache: PieceReadCache;

  constructor(private readonly o: UploaderOptions) {
    this.cache = new PieceReadCache(o.storage, o.pieceLength, o.pieceSize, o.readCacheBytes);
  }

  request(peer: Peer, r: BlockRef): void {
    if (peer.amChoking || !this.o.mayServe(peer, r.index) || peer.pendingIncoming >= OUR_REQQ) {
      if (++peer.refusedRequests > MAX_REFUSED_REQUESTS) return this.o.onFlood(peer, `sent more than ${MAX_REFUSED_REQUESTS} requests we had to refuse`);
      return this.refuse(peer, r);
    }
    if (r.length === 0 || r.begin + r.length > this.o.pieceSize(r.index)) {
      return peer.conn.destroy(new Error(`request outside piece ${r.index}: ${r.begin}+${r.length}`));
    }
    peer.incoming.push({ index: r.index, begin: r.begin, length: r.length });
    this.serve(peer);
  }

  cancel(peer: Peer, r: BlockRef): void {
    for (let i = peer.incomingHead; i < peer.incoming.length; i++) {
      const q = peer.incoming[i]!;
      if (q.index === r.index && q.begin === r.begin && q.length === r.length) {
        peer.incoming.splice(i, 1);
        return;
      }
    }
  }

  /** We choked `peer`: its queued requests are dropped (and rejected, with the fast extension). */
  choked(peer: Peer): void {
    for (const r of peer.clearIncoming()) this.refuse(peer, r);
  }

  private refuse(peer: Peer, r: BlockRef): void {
    // Not `{ type: 'reject', ...r }`: r may be the request message, and its own `type`
    // would win, sending the peer a request instead of the reject it waits for.
    if (peer.conn.supportsFast) peer.conn.send({ type: 'reject', index: r.index, begin: r.begin, length: r.length });
  }

  /** Sends queued blocks while the socket takes them, the rate allows, and pieces are in memory. */
  serve(peer: Peer): void {
    // The blocks sent now leave in one write: one system call and one pass through the
    // socket's stream code for the lot, not one per 16 KiB block.
    peer.conn.cork();
    try {
      this.serveCorked(peer);
    } finally {
      peer.conn.uncork();
    }
  }

  private serveCorked(peer: Peer): void {
    const highWater = sendHighWater(peer.upload.rate());
    while (!peer.reading && !peer.cancelRateWait && !peer.conn.closed && !peer.amChoking) {
      const r = peer.peekIncoming();
      if (!r || peer.conn.queuedBytes >= highWater) return;
      const piece = this.cache.get(r.index);
      if (!piece) {
        peer.reading = true;
        this.cache.load(r.index).then(
          () => {
            peer.reading = false;
            this.serve(peer);
          },
          (err: Error) => this.o.onError(err),
        );
        this.readAhead(peer, r.index);
        return;
      }
      if (!this.o.gate.takeSync(r.length)) {
        // While the block waits for the rate, other peers' reads may evict this piece and
        // reuse its memory: it stays pinned until the block has left or the wait is withdrawn.
        const unpin = this.cache.pin(r.index);
        const withdraw = this.o.gate.take(r.length, () => {
          peer.cancelRateWait = undefined;
          // A cancel or a choke may have changed the queue meanwhile: send only what is still asked.
          if (peer.peekIncoming() === r) this.sendBlock(peer, piece, unpin, highWater);
          else unpin();
          this.serve(peer);
        });
        peer.cancelRateWait = () => {
          withdraw();
          unpin();
        };
        return;
      }
      this.sendBlock(peer, piece, this.cache.pin(r.index), highWater);
    }
  }

  /** Starts reading the next pieces this peer asked for, so the disk works while the socket sends. */
  private readAhead(peer: Peer, current: number): void {
    let started = 0;
    let last = current;
    for (let i = peer.incomingHead; i < peer.incoming.length && started < READ_AHEAD_PIECES; i++) {
      const index = peer.incoming[i]!.index;
      if (index === last) continue;
      last = index;
      started++;
      this.cache.load(index).catch(() => undefined);
    }
  }

  /** Sends the request at the head of the queue from `piece`, pinned by `unpin` until the block has left. */
  private sendBlock(peer: Peer, piece: Buffer, unpin: () => void, highWater: number): void {
    const r = peer.nextIncoming();
    if (!r || peer.amChoking || peer.conn.closed) return unpin();
    const block = piece.subarray(r.begin, r.begin + r.length);
    if (!peer.flushWatch && peer.conn.queuedBytes >= highWater * SEND_LOW_WATER_SHARE) {
      // When this block reaches the kernel, the queue is about this much shorter: time to
      // queue more, well before it runs dry.
      peer.flushWatch = true;
      peer.conn.sendPiece(r.index, r.begin, block, () => {
        unpin();
        peer.flushWatch = false;
        this.serve(peer);
      });
    } else {
      peer.conn.sendPiece(r.index, r.begin, block, unpin);
    }
    if (r.begin + r.length === piece.length) this.readAhead(peer, r.index);
    this.o.onSent(peer, r.length);
  }

  /** Frees the read cache if no piece was read since the last call. */
  trimIfIdle(): void {
    this.cache.trimIfIdle();
  }

  clear(): void {
    this.cache.clear();
  }
}

/**
 * How many unsent bytes a peer's socket may hold beyond what the kernel took: about 20 ms
 * of what we send it. A block in the queue can no longer be cancelled, so a slow receiver
 * with megabytes queued from every sender got its endgame duplicates and its given-up
 * requests anyway (a node at a tenth of the others' rate received 5 % more than the
 * artifact); and the HAVEs and requests we send it wait behind the queue.
 */
export function sendHighWater(bytesPerSecond: number): number {
  return Math.min(SEND_HIGH_WATER, Math.max(SEND_HIGH_WATER_MIN, Math.round(bytesPerSecond * SEND_QUEUE_SECONDS)));
}
