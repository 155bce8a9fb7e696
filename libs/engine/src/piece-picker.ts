import type { Random } from './clock.js';
import type { BlockRef } from '../../wire/src/messages.js';

/** What the picker needs to know of a peer: its key and which pieces it has. */
export interface PickerPeer {
  key: string;
  has(index: number): boolean;
}

interface PartialPiece {
  index: number;
  blockCount: number;
  /** Blocks already received. */
  received: Uint8Array;
  receivedCount: number;
  /** Who has an outstanding request for each block (more than one only in endgame). */
  requesters: string[][];
  unrequestedCount: number;
  /** Every peer that sent a block of this piece, for blame when its hash fails. */
  contributors: Set<string>;
  /** After a hash failure with several contributors, one peer must fetch it alone. */
  exclusiveTo: string | undefined;
  verifying: boolean;
}

export interface PiecePickerOptions {
  pieceCount: number;
  pieceLength: number;
  totalLength: number;
  blockLength?: number;
  random: Random;
  /** Until this many pieces are verified, start pieces at random: something to trade early. */
  randomFirstPieces?: number;
  /** Most pieces in progress at once: bounds the memory that assembles pieces. */
  maxPartialPieces?: number;
}

export type ReceiveOutcome =
  | { accepted: true; pieceComplete: boolean; cancel: string[] }
  | { accepted: false; reason: 'not-wanted' | 'duplicate' };

/**
 * Chooses which blocks to request from which peer.
 *
 * Order: blocks of pieces already in progress first (finish what we started, so memory
 * and verification keep moving), then new pieces rarest first, then, when nothing is
 * left unrequested, endgame duplicates. Rarity is kept incrementally: `order` holds the
 * wanted pieces sorted by availability in buckets, and an availability change moves one
 * piece across one bucket boundary with a swap (libtorrent's picker does the same), so
 * picking never re-sorts or scans all pieces. Ties within a bucket keep a random order
 * drawn once, so peers that start together do not all chase the same piece.
 */
export class PiecePicker {
  readonly pieceCount: number;
  readonly blockLength: number;
  private readonly pieceLength: number;
  private readonly totalLength: number;
  private readonly random: Random;
  private readonly randomFirstPieces: number;
  readonly maxPartialPieces: number;

  private readonly availability: Int32Array;
  private readonly order: Int32Array;
  private readonly position: Int32Array;
  /** bucketStart[a] = first position in `order` of pieces with availability a; the last entry is the end of the wanted region. */
  private bucketStart: Int32Array;
  private wantedCount: number;
  private readonly verified: Uint8Array;
  private verifiedCount = 0;
  private readonly partials = new Map<number, PartialPiece>();
  /** 1 where `partials` has the piece: the scan for a new piece reads this, not the map. */
  private readonly inProgress: Uint8Array;
  private readonly parole = new Set<number>();

  constructor(options: PiecePickerOptions) {
    this.pieceCount = options.pieceCount;
    this.pieceLength = options.pieceLength;
    this.totalLength = options.totalLength;
    this.blockLength = options.blockLength ?? 16 * 1024;
    this.random = options.random;
    this.randomFirstPieces = options.randomFirstPieces ?? 4;
    this.maxPartialPieces = options.maxPartialPieces ?? 64;
    const n = this.pieceCount;
    this.availability = new Int32Array(n);
    this.order = new Int32Array(n);
    this.position = new Int32Array(n);
    this.verified = new Uint8Array(n);
    this.inProgress = new Uint8Array(n);
    for (let i = 0; i < n; i++) this.order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const t = this.order[i]!;
      this.order[i] = this.order[j]!;
      this.order[j] = t;
    }
    for (let i = 0; i < n; i++) this.position[this.order[i]!] = i;
    this.wantedCount = n;
    this.bucketStart = new Int32Array([0, n]);
  }

  // ---- what we have -------------------------------------------------------------

  isVerified(index: number): boolean {
    return this.verified[index] === 1;
  }

  get verifiedPieces(): number {
    return this.verifiedCount;
  }

  get complete(): boolean {
    return this.verifiedCount === this.pieceCount;
  }

  /** A piece passed its hash check (or was found on disk): never pick it again. */
  markVerified(index: number): void {
    if (this.verified[index]) return;
    this.verified[index] = 1;
    this.verifiedCount++;
    this.partials.delete(index);
    this.inProgress[index] = 0;
    this.parole.delete(index);
    this.removeFromOrder(index);
  }

  /**
   * A piece failed its hash check: its blocks are wanted again. Returns the peers that
   * sent its blocks. With more than one, nobody can be blamed yet, so the next attempt
   * is fetched from a single peer.
   */
  markFailed(index: number): string[] {
    const partial = this.partials.get(index);
    if (!partial) return [];
    this.partials.delete(index);
    this.inProgress[index] = 0;
    const contributors = [...partial.contributors];
    if (contributors.length > 1) this.parole.add(index);
    else this.parole.delete(index);
    return contributors;
  }

  // ---- availability -------------------------------------------------------------

  peerHasPiece(index: number): void {
    const a = this.availability[index]!;
    this.availability[index] = a + 1;
    if (this.position[index]! >= this.wantedCount) return;
    this.ensureBucket(a + 1);
    // Move the piece to the last slot of bucket a, then let bucket a+1 start there.
    const last = this.bucketStart[a + 1]! - 1;
    this.swap(this.position[index]!, last);
    this.bucketStart[a + 1]!--;
  }

  peerLostPiece(index: number): void {
    const a = this.availability[index]!;
    if (a === 0) return;
    this.availability[index] = a - 1;
    if (this.position[index]! >= this.wantedCount) return;
    const first = this.bucketStart[a]!;
    this.swap(this.position[index]!, first);
    this.bucketStart[a]!++;
  }

  peerHasPieces(has: (index: number) => boolean): void {
    for (let i = 0; i < this.pieceCount; i++) if (has(i)) this.peerHasPiece(i);
  }

  peerLostPieces(has: (index: number) => boolean): void {
    for (let i = 0; i < this.pieceCount; i++) if (has(i)) this.peerLostPiece(i);
  }

  availabilityOf(index: number): number {
    return this.availability[index]!;
  }

  // ---- requests -----------------------------------------------------------------

  /** True when some piece that `peer` has is still wanted: we are interested in it. */
  wantsFrom(peer: PickerPeer): boolean {
    for (let pos = this.firstAvailable(); pos < this.wantedCount; pos++) if (peer.has(this.order[pos]!)) return true;
    return false;
  }

  /** Appends up to `max` blocks to request from `peer` to `out`, and marks them requested. */
  pick(peer: PickerPeer, max: number, out: BlockRef[]): number {
    let picked = 0;
    for (const partial of this.partials.values()) {
      if (picked >= max) return picked;
      if (partial.verifying || partial.unrequestedCount === 0 || !peer.has(partial.index)) continue;
      if (partial.exclusiveTo !== undefined && partial.exclusiveTo !== peer.key) continue;
      picked += this.takeBlocks(partial, peer.key, max - picked, out, false);
    }
    while (picked < max && this.partials.size < this.maxPartialPieces) {
      const index = this.nextNewPiece(peer);
      if (index < 0) break;
      picked += this.takeBlocks(this.startPiece(index, peer.key), peer.key, max - picked, out, false);
    }
    if (picked === 0 && this.inEndgame()) {
      for (const partial of this.partials.values()) {
        if (picked >= max) break;
        if (partial.verifying || !peer.has(partial.index)) continue;
        if (partial.exclusiveTo !== undefined && partial.exclusiveTo !== peer.key) continue;
        picked += this.takeBlocks(partial, peer.key, max - picked, out, true);
      }
    }
    return picked;
  }

  /** Every wanted piece is in progress and every block of them is requested. */
  inEndgame(): boolean {
    if (this.partials.size < this.wantedCount) return false;
    for (const p of this.partials.values()) if (p.unrequestedCount > 0) return false;
    return true;
  }

  /** A block arrived from `key`. */
  received(index: number, begin: number, key: string): ReceiveOutcome {
    const partial = this.partials.get(index);
    if (!partial || partial.verifying) return { accepted: false, reason: this.verified[index] ? 'duplicate' : 'not-wanted' };
    const block = begin / this.blockLength;
    if (partial.received[block]) return { accepted: false, reason: 'duplicate' };
    partial.received[block] = 1;
    partial.receivedCount++;
    const requesters = partial.requesters[block]!;
    if (requesters.length === 0) partial.unrequestedCount--;
    const cancel = requesters.filter((k) => k !== key);
    requesters.length = 0;
    partial.contributors.add(key);
    const pieceComplete = partial.receivedCount === partial.blockCount;
    if (pieceComplete) partial.verifying = true;
    return { accepted: true, pieceComplete, cancel };
  }

  /** A request of ours will not be answered (choked, rejected, cancelled, peer gone). */
  abandon(index: number, begin: number, key: string): void {
    const partial = this.partials.get(index);
    if (!partial) return;
    const block = begin / this.blockLength;
    if (partial.received[block]) return;
    const requesters = partial.requesters[block]!;
    const at = requesters.indexOf(key);
    if (at < 0) return;
    requesters.splice(at, 1);
    if (requesters.length === 0) partial.unrequestedCount++;
  }

  /** A peer left: forget every request it had, and any exclusive claim. */
  peerGone(key: string): void {
    for (const partial of this.partials.values()) {
      if (partial.exclusiveTo === key) {
        partial.exclusiveTo = undefined;
        this.parole.add(partial.index);
      }
      for (let b = 0; b < partial.blockCount; b++) {
        const requesters = partial.requesters[b]!;
        const at = requesters.indexOf(key);
        if (at < 0) continue;
        requesters.splice(at, 1);
        if (requesters.length === 0 && !partial.received[b]) partial.unrequestedCount++;
      }
    }
  }

  pieceSize(index: number): number {
    return index === this.pieceCount - 1 ? this.totalLength - index * this.pieceLength : this.pieceLength;
  }

  get partialPieces(): number {
    return this.partials.size;
  }

  // ---- internals ----------------------------------------------------------------

  private nextNewPiece(peer: PickerPeer): number {
    if (this.verifiedCount < this.randomFirstPieces && this.wantedCount > 0) {
      // A few random probes; fall back to the rarest-first scan if they all miss.
      for (let tries = 0; tries < 16; tries++) {
        const index = this.order[Math.floor(this.random() * this.wantedCount)]!;
        if (this.startable(index, peer)) return index;
      }
    }
    // Rarest first, but pieces nobody has (bucket 0) cannot be started: while the origin
    // super-seeds, that is most of them, and this scan runs after every read of a socket.
    for (let pos = this.firstAvailable(); pos < this.wantedCount; pos++) {
      const index = this.order[pos]!;
      if (this.startable(index, peer)) return index;
    }
    return -1;
  }

  /** Position in `order` of the first wanted piece that some peer has. */
  private firstAvailable(): number {
    return this.bucketStart.length > 1 ? Math.min(this.bucketStart[1]!, this.wantedCount) : this.wantedCount;
  }

  private startable(index: number, peer: PickerPeer): boolean {
    return this.inProgress[index] === 0 && this.availability[index]! > 0 && peer.has(index);
  }

  private startPiece(index: number, key: string): PartialPiece {
    const blockCount = Math.ceil(this.pieceSize(index) / this.blockLength);
    const requesters: string[][] = new Array(blockCount);
    for (let b = 0; b < blockCount; b++) requesters[b] = [];
    const partial: PartialPiece = {
      index,
      blockCount,
      received: new Uint8Array(blockCount),
      receivedCount: 0,
      requesters,
      unrequestedCount: blockCount,
      contributors: new Set(),
      exclusiveTo: this.parole.has(index) ? key : undefined,
      verifying: false,
    };
    this.parole.delete(index);
    this.partials.set(index, partial);
    this.inProgress[index] = 1;
    return partial;
  }

  private takeBlocks(partial: PartialPiece, key: string, max: number, out: BlockRef[], endgame: boolean): number {
    let taken = 0;
    const size = this.pieceSize(partial.index);
    for (let b = 0; b < partial.blockCount && taken < max; b++) {
      if (partial.received[b]) continue;
      const requesters = partial.requesters[b]!;
      if (endgame ? requesters.length !== 1 || requesters[0] === key : requesters.length !== 0) continue;
      requesters.push(key);
      if (!endgame) partial.unrequestedCount--;
      const begin = b * this.blockLength;
      out.push({ index: partial.index, begin, length: Math.min(this.blockLength, size - begin) });
      taken++;
    }
    return taken;
  }

  private ensureBucket(a: number): void {
    // bucketStart needs entries for buckets 0..a plus the end sentinel.
    if (this.bucketStart.length > a + 1) return;
    const grown = new Int32Array(Math.max(a + 2, this.bucketStart.length * 2));
    grown.set(this.bucketStart);
    grown.fill(this.wantedCount, this.bucketStart.length);
    this.bucketStart = grown;
  }

  private removeFromOrder(index: number): void {
    const a = this.availability[index]!;
    if (this.position[index]! >= this.wantedCount) return;
    this.ensureBucket(a);
    // Walk the piece up through every bucket above its own, shifting each bucket's
    // start down by one, until it leaves the wanted region at the end.
    for (let b = a; b < this.bucketStart.length - 1; b++) {
      const last = this.bucketStart[b + 1]! - 1;
      this.swap(this.position[index]!, last);
      this.bucketStart[b + 1]!--;
    }
    this.wantedCount--;
  }

  private swap(i: number, j: number): void {
    if (i === j) return;
    const pi = this.order[i]!;
    const pj = this.order[j]!;
    this.order[i] = pj;
    this.order[j] = pi;
    this.position[pj] = i;
    this.position[pi] = j;
  }

  /** For tests: the wanted pieces in pick order. */
  wantedOrder(): number[] {
    return Array.from(this.order.subarray(0, this.wantedCount));
  }
}
