import { Bitfield } from './bitfield.js';
import type { Clock } from './clock.js';
import { RateMeter } from './rate-meter.js';
import type { PeerConnection } from './peer-connection.js';
import type { BlockRef } from '../../wire/src/messages.js';

/**
 * Requests we keep in flight to one peer once slow start is over: half a second of what
 * it gives us. Every request queued at a peer is served before one made after it, so the
 * depth is also how long a piece it has just received waits before it reaches us (see
 * decision 0015); half a second covers any round trip inside a fleet many times over.
 */
export const PIPELINE_SECONDS = 0.5;
/** Depth a new peer starts at, growing by one per block received (slow start), and the least after. */
export const INITIAL_PIPELINE = 16;
/** Hard cap on requests in flight to one peer, whatever its rate. */
export const MAX_PIPELINE = 1024;
/** What we assume of a peer that does not state its `reqq` (libtorrent's default). */
export const DEFAULT_PEER_REQQ = 250;

export function blockKey(index: number, begin: number): number {
  return index * 4096 + (begin >>> 14);
}

/** One connected peer of a torrent: its protocol state and its statistics. */
export class Peer {
  readonly key: string;
  readonly peerId: Buffer;
  has: Bitfield;
  amChoking = true;
  amInterested = false;
  peerChoking = true;
  peerInterested = false;
  /** The peer's first message after the handshake was seen (bitfield or not). */
  bitfieldSeen = false;

  /** Our requests to it, by blockKey. */
  readonly outstanding = new Map<number, BlockRef>();
  /** Requests we gave up on (it choked us, or it was too slow) that it may still answer, oldest first. */
  readonly givenUp = new Set<number>();
  /**
   * Pieces we gained that it holds already, whose HAVEs wait for the next tick to go in
   * one write (Torrent.announce).
   */
  readonly heldHaves: number[] = [];
  /** Its requests to us, served in order. */
  readonly incoming: BlockRef[] = [];
  incomingHead = 0;
  /** How many requests it accepts in flight (BEP 10 `reqq`). */
  reqq = DEFAULT_PEER_REQQ;
  slowStartDepth = INITIAL_PIPELINE;
  slowStart = true;
  private lastRate = 0;

  readonly download: RateMeter;
  readonly upload: RateMeter;
  uploadedSinceUnchoke = 0;
  /** Its requests we refused since we last unchoked it (choked, not ours to serve, over our reqq). */
  refusedRequests = 0;
  wastedBytes = 0;
  hashFailures = 0;
  readonly connectedAt: number;
  lastBlockAt: number;
  /** A disk read for this peer is under way. */
  reading = false;
  /** A block in the send queue will call back when flushed, to queue more. */
  flushWatch = false;
  /** An upload rate-limit wait is queued for this peer; calling it withdraws it. */
  cancelRateWait: (() => void) | undefined;
  /** The client it names in its extension handshake (`v`), for statistics. */
  clientName: string | undefined;
  /** The port it listens on, from its extension handshake ('p'): tells who a peer that dialled us is. */
  listenPort: number | undefined;

  constructor(
    readonly conn: PeerConnection,
    pieceCount: number,
    clock: Clock,
  ) {
    this.key = `${conn.remoteAddress}:${conn.remotePort}`;
    this.peerId = conn.remoteHandshake!.peerId;
    this.has = new Bitfield(pieceCount);
    this.download = new RateMeter(clock);
    this.upload = new RateMeter(clock);
    this.connectedAt = this.lastBlockAt = clock.now();
  }

  /** Remembers a request given up on, forgetting the oldest past MAX_PIPELINE of them. */
  giveUp(key: number): void {
    this.givenUp.delete(key);
    this.givenUp.add(key);
    if (this.givenUp.size > MAX_PIPELINE) this.givenUp.delete(this.givenUp.values().next().value!);
  }

  get isSeed(): boolean {
    return this.has.complete;
  }

  get pendingIncoming(): number {
    return this.incoming.length - this.incomingHead;
  }

  nextIncoming(): BlockRef | undefined {
    const r = this.incoming[this.incomingHead];
    if (!r) return undefined;
    this.incomingHead++;
    if (this.incomingHead === this.incoming.length) {
      this.incoming.length = 0;
      this.incomingHead = 0;
    }
    return r;
  }

  peekIncoming(): BlockRef | undefined {
    return this.incoming[this.incomingHead];
  }

  clearIncoming(): BlockRef[] {
    const dropped = this.incoming.slice(this.incomingHead);
    this.incoming.length = 0;
    this.incomingHead = 0;
    return dropped;
  }

  /**
   * How many requests to keep in flight: slow start grows one per block received (so
   * the depth doubles every round trip, as TCP's window does) until the rate stops
   * growing; after that, enough for PIPELINE_SECONDS of the measured rate, and no less
   * than INITIAL_PIPELINE. The depth slow start reached is not kept: it overshoots the
   * rate by the round trips it took to notice the rate had stopped growing, and kept, it
   * queued seconds of requests at every peer. Never past the peer's reqq or our cap.
   */
  pipelineDepth(blockLength: number): number {
    const byRate = Math.ceil((this.download.rate() * PIPELINE_SECONDS) / blockLength);
    const depth = Math.max(byRate, this.slowStart ? this.slowStartDepth : INITIAL_PIPELINE);
    return Math.min(depth, this.reqq, MAX_PIPELINE);
  }

  blockArrived(now: number): void {
    this.lastBlockAt = now;
    if (this.slowStart) this.slowStartDepth = Math.min(this.slowStartDepth + 1, MAX_PIPELINE);
  }

  /** Called once a second: leaves slow start when the rate no longer grows. */
  tick(): void {
    if (!this.slowStart) return;
    const rate = this.download.rate();
    if (this.lastRate > 0 && rate < this.lastRate * 1.1) this.slowStart = false;
    this.lastRate = rate;
  }
}
