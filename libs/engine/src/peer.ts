import { Bitfield } from './bitfield.js';
import type { Clock } from './clock.js';
import { RateMeter } from './rate-meter.js';
import type { PeerConnection } from './peer-connection.js';
import type { BlockRef } from '../../wire/src/messages.js';

/**
 * Requests we keep in flight to one peer once slow start is over: a quarter of a second
 * of what it gives us, or two of its round trips if that is more. Every request queued at
 * a peer is served before one made after it, so the depth is also how long a piece it has
 * just received waits before it reaches us (decisions 0015 and 0019); a quarter of a
 * second covers round trips inside a datacenter many times over, and the round-trip term
 * keeps a link between regions full.
 */
export const PIPELINE_SECONDS = 0.25;
/** Round trips of the peer's rate kept in flight at least, once its round trip is measured. */
export const PIPELINE_ROUND_TRIPS = 2;
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
  /**
   * The shortest wait seen from requesting into an empty pipeline to the first block
   * back, in ms: the round trip with none of our own requests queued ahead.
   */
  minRoundTripMs = Infinity;
  /** When requests last went out with none in flight, until the next block times them. */
  private probeSentAt: number | undefined;

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
   * growing; after that, enough for PIPELINE_SECONDS of the measured rate, or for
   * PIPELINE_ROUND_TRIPS of its round trip if longer, and no less than INITIAL_PIPELINE.
   * The depth slow start reached is not kept: it overshoots the rate by the round trips
   * it took to notice the rate had stopped growing, and kept, it queued seconds of
   * requests at every peer. Never past the peer's reqq or our cap.
   */
  pipelineDepth(blockLength: number): number {
    const roundTrips = Number.isFinite(this.minRoundTripMs) ? (PIPELINE_ROUND_TRIPS * this.minRoundTripMs) / 1000 : 0;
    const byRate = Math.ceil((this.download.rate() * Math.max(PIPELINE_SECONDS, roundTrips)) / blockLength);
    const depth = Math.max(byRate, this.slowStart ? this.slowStartDepth : INITIAL_PIPELINE);
    return Math.min(depth, this.reqq, MAX_PIPELINE);
  }

  /**
   * Requests are about to go to it: with none in flight, the next block times its round
   * trip. A timing still running then was for requests given up on (it choked us), so it
   * starts over: the time spent choked is no round trip.
   */
  requesting(now: number): void {
    if (this.outstanding.size === 0) this.probeSentAt = now;
  }

  /** A block we asked for arrived; `inFlight` unless it answers a request we had given up on, which cannot time a round trip. */
  blockArrived(now: number, inFlight = true): void {
    this.lastBlockAt = now;
    if (inFlight && this.probeSentAt !== undefined) {
      this.minRoundTripMs = Math.min(this.minRoundTripMs, now - this.probeSentAt);
      this.probeSentAt = undefined;
    }
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
