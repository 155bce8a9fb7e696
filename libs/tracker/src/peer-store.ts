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
  /** 6 bytes (IPv4) or 18 bytes (IPv6) as a binary (latin1) string, ready for a compact response. */
  compact: string;
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
  /** Dense, in no particular order: the draw for a peer list permutes it in place. */
  peers: Entry[];
  byKey: Map<string, Entry>;
  seeders: number;
  downloaded: number;
}

interface Entry {
  peer: Peer;
  infoHash: string;
  swarm: Swarm;
  lastSeen: number;
  /** Position in swarm.peers. */
  at: number;
  /** Neighbours in the store-wide list ordered by last refresh, oldest first. */
  older: Entry | undefined;
  newer: Entry | undefined;
}

const NO_PEERS: SwarmCounts = Object.freeze({ complete: 0, incomplete: 0, downloaded: 0 });

/**
 * Swarms in memory. An announce costs O(1) and a peer list O(numwant): the list is a
 * partial Fisher–Yates over the swarm's array, which leaves the array in another order
 * as good as the last. Expiry costs O(expired): every peer also sits in one linked list
 * ordered by last refresh (a refresh moves it to the end), so a sweep looks only at the
 * oldest peers and stops at the first that is still fresh. Clock times must not go back.
 */
export class MemoryPeerStore implements PeerStore {
  private readonly swarms = new Map<string, Swarm>();
  private oldest: Entry | undefined;
  private newest: Entry | undefined;
  private peerCount = 0;

  constructor(private readonly random: Random = Math.random) {}

  upsert(infoHash: string, peer: Peer, now: number): PreviousState {
    let swarm = this.swarms.get(infoHash);
    if (!swarm) {
      swarm = { peers: [], byKey: new Map(), seeders: 0, downloaded: 0 };
      this.swarms.set(infoHash, swarm);
    }
    const entry = swarm.byKey.get(peer.key);
    if (!entry) {
      const added: Entry = { peer, infoHash, swarm, lastSeen: now, at: swarm.peers.length, older: undefined, newer: undefined };
      swarm.byKey.set(peer.key, added);
      swarm.peers.push(added);
      if (peer.seeder) swarm.seeders++;
      this.peerCount++;
      this.append(added);
      return 'absent';
    }
    const previous: PreviousState = entry.peer.seeder ? 'seeder' : 'leecher';
    swarm.seeders += Number(peer.seeder) - Number(entry.peer.seeder);
    entry.peer = peer;
    entry.lastSeen = now;
    if (entry !== this.newest) {
      this.unlink(entry);
      this.append(entry);
    }
    return previous;
  }

  remove(infoHash: string, peerKey: string): void {
    const entry = this.swarms.get(infoHash)?.byKey.get(peerKey);
    if (entry) this.drop(entry);
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
    const self = swarm.byKey.get(excludeKey);
    if (self) {
      swap(peers, self.at, n - 1);
      n--;
    }
    const take = Math.min(numwant, n);
    const out: Peer[] = new Array<Peer>(take);
    for (let i = 0; i < take; i++) {
      swap(peers, i, i + Math.floor(this.random() * (n - i)));
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
    while (this.oldest && this.oldest.lastSeen < before) this.drop(this.oldest);
  }

  /** Number of peers over all swarms. */
  get size(): number {
    return this.peerCount;
  }

  private drop(entry: Entry): void {
    const swarm = entry.swarm;
    const peers = swarm.peers;
    swap(peers, entry.at, peers.length - 1);
    peers.pop();
    swarm.byKey.delete(entry.peer.key);
    if (entry.peer.seeder) swarm.seeders--;
    this.peerCount--;
    this.unlink(entry);
    // An empty swarm that never completed holds nothing worth a scrape.
    if (peers.length === 0 && swarm.downloaded === 0) this.swarms.delete(entry.infoHash);
  }

  private append(entry: Entry): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
  }

  private unlink(entry: Entry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
    entry.older = entry.newer = undefined;
  }
}

function swap(peers: Entry[], i: number, j: number): void {
  if (i === j) return;
  const a = peers[i] as Entry;
  const b = peers[j] as Entry;
  peers[i] = b;
  b.at = i;
  peers[j] = a;
  a.at = j;
}
