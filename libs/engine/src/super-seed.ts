import type { Random } from './clock.js';

// BEP 16 super-seeding, as a policy with no I/O: the session feeds it what peers say
// they have and sends the HAVEs it returns.
//
// The origin of a release pretends to have nothing and announces to each peer one piece
// at a time, choosing the piece with the fewest copies in the swarm (held, or already
// offered to someone who lacks it), so its upload goes to data nobody else can supply.
// A peer is offered its next piece only once the last one is seen at another peer (a
// HAVE from someone else after the offer), i.e. once the peer has passed it on; a peer
// that takes and never shares gets nothing more. Bitfields sent at connection time do
// not count: a peer that joins already holding the piece proves nothing about the
// holder.
//
// One departure from the BEP: the wait is dropped when no other connected peer lacks the
// piece. There is then nobody to pass it to, and waiting would stall a swarm of one
// agent forever (the known failure of strict super-seeding).
//
// Announced pieces stay servable: the peer believes we have them and HAVE cannot be
// taken back. Requests for anything else are refused (`mayServe`).
//
// Until every piece has been seen at a peer, only pieces with no copy out (held by no
// peer, offered to none) are offered: a peer with room waits rather than take a second
// copy from us, because each byte we send twice delays the last first copy by as much,
// and the swarm passes the first copy around anyway. (Offering the rarest piece
// regardless, a piece offered but still in flight, sent 4-7 % of the artifact twice
// before the last first copy, in the fleet benchmark.) An offer nobody has taken up after
// `overdueMs` (a peer that stalled with it) makes its piece offerable once more, to one
// more peer each time it is overdue again.
//
// An origin may super-seed a release while its upload is still arriving: pieces it does
// not hold yet are never offered, and each one that lands (`pieceAvailable`) goes out
// to the peers with room for an offer.

/** A set of pieces; the engine's Bitfield satisfies it. `size` is its length in pieces. */
export interface PieceSet {
  has(index: number): boolean;
  readonly size: number;
}

export interface SuperSeedOptions {
  /** Offers a peer may have outstanding at once; more keeps a fast peer busier. Default 1. */
  offersPerPeer?: number;
  /** The pieces we hold now; the rest are added with pieceAvailable(). Default all. */
  available?: PieceSet;
  /** Milliseconds, for timing offers (overdueOffers()). Default Date.now. */
  now?: () => number;
  /** An offered piece no peer has after this long may be offered to one more peer. Default 10 s. */
  overdueMs?: number;
}

const DEFAULT_OVERDUE_MS = 10_000;

/** New HAVEs to send, per peer. */
export type Offers = Map<string, number[]>;

const HAS = 1;
const ANNOUNCED = 2;

interface PeerState {
  key: string;
  /** Per piece: HAS | ANNOUNCED bits. */
  flags: Uint8Array;
  /** Offers not yet released. */
  pending: Set<number>;
  /** How many offers it may hold at once (see setOfferLimit). */
  limit: number;
  /** Pieces with neither flag: the peer lacks them and has not been offered them. */
  unshown: number;
}

export class SuperSeedPolicy {
  private readonly peers = new Map<string, PeerState>();
  private readonly offersPerPeer: number;
  /** Connected peers holding each piece. */
  private readonly availability: Uint32Array;
  /** Holders plus outstanding offers to peers lacking the piece: the rarity that picks. */
  private readonly copies: Uint32Array;
  /** Pieces we hold, grouped by `copies`, so a pick looks at the rarest first without a full scan. */
  private readonly buckets: number[][];
  /** Per piece: 1 once we hold it (only then is it in a bucket and may be offered). */
  private readonly held: Uint8Array;
  private heldCount = 0;
  private readonly slot: Uint32Array;
  /** Peers with an outstanding offer of each piece. */
  private readonly holders = new Map<number, Set<string>>();
  private readonly seen: Uint8Array;
  private seenCount = 0;
  private readonly now: () => number;
  private readonly overdueMs: number;
  /** Pieces offered and not yet seen at any peer, with when their current wait began. */
  private readonly awaited = new Map<number, number>();
  /** Awaited pieces past overdueMs: each may go to one more peer. */
  private readonly overdue = new Set<number>();

  constructor(
    readonly pieceCount: number,
    private readonly random: Random,
    options: SuperSeedOptions = {},
  ) {
    if (!Number.isInteger(pieceCount) || pieceCount < 0) throw new RangeError(`pieceCount must be a non-negative integer, got ${pieceCount}`);
    const offers = options.offersPerPeer ?? 1;
    if (!Number.isInteger(offers) || offers < 1) throw new RangeError(`offersPerPeer must be a positive integer, got ${offers}`);
    this.offersPerPeer = offers;
    this.now = options.now ?? Date.now;
    this.overdueMs = options.overdueMs ?? DEFAULT_OVERDUE_MS;
    this.availability = new Uint32Array(pieceCount);
    this.copies = new Uint32Array(pieceCount);
    this.seen = new Uint8Array(pieceCount);
    const available = options.available;
    this.held = Uint8Array.from({ length: pieceCount }, (_, i) => (available === undefined || available.has(i) ? 1 : 0));
    this.slot = new Uint32Array(pieceCount);
    this.buckets = [[]];
    for (let i = 0; i < pieceCount; i++) if (this.held[i]) this.place(i);
  }

  /** True once every piece has been seen at some peer other than us. It never turns back. */
  get fullCopyOutside(): boolean {
    return this.seenCount === this.pieceCount;
  }

  /** Distinct pieces seen at least once at a peer other than us. */
  get distinctPiecesOut(): number {
    return this.seenCount;
  }

  /**
   * A peer's first word on what it has: its bitfield (or HAVE ALL / HAVE NONE), or an
   * empty set if its first message after the handshake is anything else. Returns the
   * pieces to announce to it now.
   */
  peerJoined(peer: string, has: PieceSet): number[] {
    if (this.peers.has(peer)) throw new Error(`super-seed: peer ${peer} joined twice`);
    const state: PeerState = { key: peer, flags: new Uint8Array(this.pieceCount), pending: new Set(), limit: this.offersPerPeer, unshown: this.pieceCount };
    this.peers.set(peer, state);
    const n = Math.min(has.size, this.pieceCount);
    for (let i = 0; i < n; i++) {
      if (!has.has(i)) continue;
      state.flags[i] = HAS;
      state.unshown--;
      this.availability[i]!++;
      this.adjust(i, 1);
      this.markSeen(i);
    }
    return this.refill(state);
  }

  /** A HAVE from `peer`. Returns the new offers it unlocks, for this peer or others. */
  peerHas(peer: string, index: number): Offers {
    const state = this.state(peer);
    this.checkIndex(index);
    const offers: Offers = new Map();
    if (state.flags[index]! & HAS) return offers;
    if (state.flags[index] === 0) state.unshown--;
    state.flags[index]! |= HAS;
    this.availability[index]!++;
    // An offer the peer now holds was already counted as a copy.
    if (!state.pending.has(index)) this.adjust(index, 1);
    this.markSeen(index);

    const released = new Set<string>();
    for (const other of [...(this.holders.get(index) ?? [])]) {
      if (other === peer) continue;
      this.release(this.peers.get(other)!, index);
      released.add(other);
    }
    if (state.pending.has(index) && this.availability[index] === this.peers.size) {
      this.release(state, index);
      released.add(peer);
    }
    for (const key of released) this.collect(offers, key);
    return offers;
  }

  /**
   * We hold `index` now (an upload brought it in). Returns the offers it makes for the
   * peers with room for one.
   */
  pieceAvailable(index: number): Offers {
    this.checkIndex(index);
    const offers: Offers = new Map();
    if (this.held[index]) return offers;
    this.held[index] = 1;
    this.place(index);
    for (const [key, state] of this.peers) if (state.pending.size < state.limit) this.collect(offers, key);
    return offers;
  }

  /**
   * Call now and then (the session's tick): pieces offered longer than overdueMs ago and
   * still seen at no peer may each go to one more peer. Returns those offers.
   */
  overdueOffers(): Offers {
    const offers: Offers = new Map();
    const now = this.now();
    let added = false;
    for (const [index, since] of this.awaited) {
      if (now - since < this.overdueMs || this.overdue.has(index)) continue;
      this.overdue.add(index);
      added = true;
    }
    if (added) for (const [key, state] of this.peers) if (state.pending.size < state.limit) this.collect(offers, key);
    return offers;
  }

  /** The peer disconnected. Returns offers its leaving unlocks for the others. */
  peerLeft(peer: string): Offers {
    const state = this.peers.get(peer);
    const offers: Offers = new Map();
    if (!state) return offers;
    for (const index of [...state.pending]) this.release(state, index);
    for (let i = 0; i < this.pieceCount; i++) {
      if (!(state.flags[i]! & HAS)) continue;
      this.availability[i]!--;
      this.adjust(i, -1);
    }
    this.peers.delete(peer);
    for (const [key, other] of this.peers) {
      // It may have been the last peer a held offer was waiting to reach.
      for (const index of [...other.pending]) {
        if (other.flags[index]! & HAS && this.availability[index] === this.peers.size) this.release(other, index);
      }
      // What it held or was offered may be fresh again, for any peer with room.
      if (other.pending.size < other.limit) this.collect(offers, key);
    }
    return offers;
  }

  /**
   * Caps the offers `peer` may hold at once, from 1 to the policy's offersPerPeer; the
   * session sets it from how fast the peer takes data. Every offer is a piece nobody
   * else gets from us until the peer passes it on, so a peer at a tenth of the others'
   * rate holding a full set of offers holds back the pieces the fast peers finish on.
   * Returns the pieces to announce to it now (a raised cap makes room).
   */
  setOfferLimit(peer: string, limit: number): number[] {
    const state = this.state(peer);
    state.limit = Math.max(1, Math.min(this.offersPerPeer, Math.floor(limit)));
    return this.refill(state);
  }

  /** Offers `peer` may hold at once now, and how many it holds (undefined for a peer the policy does not know). */
  offersOf(peer: string): { limit: number; held: number } | undefined {
    const state = this.peers.get(peer);
    return state && { limit: state.limit, held: state.pending.size };
  }

  /** Whether to serve a request: only pieces announced to that peer. */
  mayServe(peer: string, index: number): boolean {
    return ((this.peers.get(peer)?.flags[index] ?? 0) & ANNOUNCED) !== 0;
  }

  private collect(offers: Offers, key: string): void {
    const fresh = this.refill(this.peers.get(key)!);
    if (fresh.length > 0) offers.set(key, fresh);
  }

  private refill(state: PeerState): number[] {
    const fresh: number[] = [];
    while (state.pending.size < state.limit) {
      const index = this.pick(state.flags);
      if (index < 0) break;
      this.announce(state, index);
      fresh.push(index);
    }
    // libtorrent drops a peer whose HAVE completes its set while it is not interested,
    // and checks that before the HAVE makes it interested; offered alone, a leecher's
    // last piece always arrives so and it never finishes. So the last piece a peer lacks
    // goes out together with an offer it still wants.
    // (A last piece that has not landed yet goes out alone when it does.)
    if (fresh.length > 0 && state.unshown === 1) {
      const last = state.flags.indexOf(0);
      if (this.held[last]) {
        this.announce(state, last);
        fresh.push(last);
      }
    }
    return fresh;
  }

  private announce(state: PeerState, index: number): void {
    // A first offer, or the extra one an overdue piece earns: its wait starts now.
    if (!this.seen[index] && (!this.awaited.has(index) || this.overdue.delete(index))) this.awaited.set(index, this.now());
    state.flags[index]! |= ANNOUNCED;
    state.unshown--;
    state.pending.add(index);
    let set = this.holders.get(index);
    if (!set) this.holders.set(index, (set = new Set()));
    set.add(state.key);
    this.adjust(index, 1);
  }

  private release(state: PeerState, index: number): void {
    state.pending.delete(index);
    const set = this.holders.get(index);
    set?.delete(state.key);
    if (set?.size === 0) this.holders.delete(index);
    if (!(state.flags[index]! & HAS)) this.adjust(index, -1);
    // Nobody holds it and nobody was offered it (its only taker left): fresh again.
    if (this.copies[index] === 0) this.forgetWait(index);
  }

  private forgetWait(index: number): void {
    this.awaited.delete(index);
    this.overdue.delete(index);
  }

  /**
   * A piece with the fewest copies that the peer neither has nor was offered; ties at
   * random. Until every piece is held here and seen outside, only pieces with no copy
   * out, or overdue ones.
   */
  private pick(flags: Uint8Array): number {
    const firstCopiesOnly = this.heldCount < this.pieceCount || this.seenCount < this.pieceCount;
    const buckets = firstCopiesOnly ? 1 : this.buckets.length;
    for (let b = 0; b < buckets; b++) {
      const bucket = this.buckets[b];
      // A piece that lands with copies already counted may leave lower buckets never made.
      const n = bucket?.length ?? 0;
      if (n === 0) continue;
      const start = Math.floor(this.random() * n);
      for (let k = 0; k < n; k++) {
        const index = bucket![(start + k) % n]!;
        if (flags[index] === 0) return index;
      }
    }
    if (firstCopiesOnly) for (const index of this.overdue) if (flags[index] === 0) return index;
    return -1;
  }

  private adjust(index: number, delta: 1 | -1): void {
    const from = this.copies[index]!;
    if (!this.held[index]) {
      // Not ours yet (a peer that kept it from an earlier attempt): counted, not offered.
      this.copies[index] = from + delta;
      return;
    }
    const bucket = this.buckets[from]!;
    const last = bucket.pop()!;
    if (last !== index) {
      const at = this.slot[index]!;
      bucket[at] = last;
      this.slot[last] = at;
    }
    const to = from + delta;
    const target = (this.buckets[to] ??= []);
    this.slot[index] = target.length;
    target.push(index);
    this.copies[index] = to;
  }

  /** Puts a piece we hold into the bucket of its copies. */
  private place(index: number): void {
    this.heldCount++;
    const target = (this.buckets[this.copies[index]!] ??= []);
    this.slot[index] = target.length;
    target.push(index);
  }

  private markSeen(index: number): void {
    if (this.seen[index]) return;
    this.seen[index] = 1;
    this.seenCount++;
    this.forgetWait(index);
  }

  private state(peer: string): PeerState {
    const state = this.peers.get(peer);
    if (!state) throw new Error(`super-seed: peer ${peer} has not joined`);
    return state;
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.pieceCount) {
      throw new RangeError(`piece index ${index} out of range 0..${this.pieceCount - 1}`);
    }
  }
}
