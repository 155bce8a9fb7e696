/**
 * Where the tracker keeps its swarms. The interface is shaped so that a shared store
 * (Redis: a hash per swarm, a sorted set by last-seen time for expiry, counters for
 * completions) can implement it as well as the in-memory one: every call names the
 * swarm by key, and nothing hands out live references into the store.
 */
import type { Random } from '../../engine/src/clock.js';

/** What the tracker knows about one peer of one swarm. */
export interface Peer {
  /** The peer id as a 20-character binary (latin1) string: unique within a swarm. */
  key: string;
  address: string;
  family: 4 | 6;
  port: number;
  /** 6 bytes (IPv4) or 18 bytes (IPv6), ready for a compact response. */
  compact: Buffer;
  /** Has every piece (left = 0). */
  seeder: boolean;
}

export interface SwarmCounts {
  /** Seeders. */
  complete: number;
  /** Leechers. */
  incomplete: number;
  /** Times a peer has announced `completed`. */
  downloaded: number;
}

/** What upsert found before it wrote: lets the caller count a completion only once. */
export type PreviousState = 'absent' | 'leecher' | 'seeder';

export interface PeerStore {
  /** Adds or refreshes a peer, marking it last seen at `now` (ms). */
  upsert(infoHash: string, peer: Peer, now: number): PreviousState;
  remove(infoHash: string, peerKey: string): void;
  /** Adds one to the swarm's `downloaded` counter. */
  recordCompleted(infoHash: string): void;
  /** Up to `numwant` peers chosen at random, never the one keyed `excludeKey`. */
  list(infoHash: string, numwant: number, excludeKey: string): Peer[];
  counts(infoHash: string): SwarmCounts;
  /** Drops every peer last seen before `before` (ms). */
  expire(before: number): void;
}

interface Swarm {
  peers: Entry[];
  /** Position of each peer in `peers`, so removal is a swap with the last one. */
  index: Map<string, number>;
  seeders: number;
  downloaded: number;
}

interface Entry {
  peer: Peer;
  infoHash: string;
  lastSeen: number;
}

const NO_PEERS: SwarmCounts = Object.freeze({ complete: 0, incomplete: 0, downloaded: 0 });

/**
 * Swarms in memory. Announces cost O(1) and a peer list O(numwant): the list is a
 * partial Fisher–Yates over the swarm's array, which leaves the array in another order
 * that is as good as the last one. Expiry costs O(expired): every peer also sits in one
 * Map ordered by last refresh (a refresh deletes and re-inserts it), so the sweep stops
 * at the first peer that is still fresh.
 */
export class MemoryPeerStore implements PeerStore {
  private readonly swarms = new Map<string, Swarm>();
  private readonly byAge = new Map<string, Entry>();

  constructor(private readonly random: Random = Math.random) {}

  upsert(infoHash: string, peer: Peer, now: number): PreviousState {
    let swarm = this.swarms.get(infoHash);
    if (!swarm) {
      swarm = { peers: [], index: new Map(), seeders: 0, downloaded: 0 };
      this.swarms.set(infoHash, swarm);
    }
    const ageKey = infoHash + peer.key;
    const at = swarm.index.get(peer.key);
    if (at === undefined) {
      const entry: Entry = { peer, infoHash, lastSeen: now };
      swarm.index.set(peer.key, swarm.peers.length);
      swarm.peers.push(entry);
      if (peer.seeder) swarm.seeders++;
      this.byAge.set(ageKey, entry);
      return 'absent';
    }
    const entry = swarm.peers[at] as Entry;
    const previous: PreviousState = entry.peer.seeder ? 'seeder' : 'leecher';
    swarm.seeders += Number(peer.seeder) - Number(entry.peer.seeder);
    entry.peer = peer;
    entry.lastSeen = now;
    this.byAge.delete(ageKey);
    this.byAge.set(ageKey, entry);
    return previous;
  }

  remove(infoHash: string, peerKey: string): void {
    const swarm = this.swarms.get(infoHash);
    if (swarm) this.removeFrom(swarm, infoHash, peerKey);
  }

  recordCompleted(infoHash: string): void {
    const swarm = this.swarms.get(infoHash);
    if (swarm) swarm.downloaded++;
  }

  list(infoHash: string, numwant: number, excludeKey: string): Peer[] {
    const swarm = this.swarms.get(infoHash);
    if (!swarm || numwant <= 0) return [];
    const peers = swarm.peers;
    let n = peers.length;
    // Park the asker at the end, outside the range the draw picks from.
    const self = swarm.index.get(excludeKey);
    if (self !== undefined) {
      this.swap(swarm, self, n - 1);
      n--;
    }
    const take = Math.min(numwant, n);
    const out: Peer[] = new Array<Peer>(take);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(this.random() * (n - i));
      if (j !== i) this.swap(swarm, i, j);
      out[i] = (peers[i] as Entry).peer;
    }
    return out;
  }

  counts(infoHash: string): SwarmCounts {
    const swarm = this.swarms.get(infoHash);
    if (!swarm) return NO_PEERS;
    return { complete: swarm.seeders, incomplete: swarm.peers.length - swarm.seeders, downloaded: swarm.downloaded };
  }

  expire(before: number): void {
    for (const entry of this.byAge.values()) {
      if (entry.lastSeen >= before) break;
      const swarm = this.swarms.get(entry.infoHash);
      if (swarm) this.removeFrom(swarm, entry.infoHash, entry.peer.key);
      else this.byAge.delete(entry.infoHash + entry.peer.key);
    }
  }

  /** Number of peers over all swarms. */
  get size(): number {
    return this.byAge.size;
  }

  private removeFrom(swarm: Swarm, infoHash: string, peerKey: string): void {
    const at = swarm.index.get(peerKey);
    if (at === undefined) return;
    const last = swarm.peers.length - 1;
    this.swap(swarm, at, last);
    const entry = swarm.peers.pop() as Entry;
    swarm.index.delete(peerKey);
    if (entry.peer.seeder) swarm.seeders--;
    this.byAge.delete(infoHash + peerKey);
    // An empty swarm that never completed holds nothing worth a scrape.
    if (swarm.peers.length === 0 && swarm.downloaded === 0) this.swarms.delete(infoHash);
  }

  private swap(swarm: Swarm, i: number, j: number): void {
    if (i === j) return;
    const peers = swarm.peers;
    const a = peers[i] as Entry;
    const b = peers[j] as Entry;
    peers[i] = b;
    peers[j] = a;
    swarm.index.set(b.peer.key, i);
    swarm.index.set(a.peer.key, j);
  }
}
