/**
 * The tracker itself (BEP 3, 7, 23, 48) with no sockets: a parsed announce and the
 * caller's address in, the bencoded answer out. Time and randomness are injected.
 */
import type { Random } from '../../engine/src/clock.js';
import { compactPeer, isLoopback, normalizeAddress, type AddressFamily, type PeerAddress } from './address.js';
import { MemoryPeerStore, type Peer, type PeerStore } from './peer-store.js';
import type { AnnounceQuery } from './query.js';

export const DEFAULT_INTERVAL_SECONDS = 60;
export const DEFAULT_NUMWANT = 50;
export const MAX_NUMWANT = 200;

/** Whose word the tracker takes for a peer's address when the announce carries `ip`. */
export type TrustIpParameter = 'loopback' | 'always' | 'never';

export interface TrackerCoreOptions {
  store?: PeerStore;
  /** Seconds between a client's announces. Peers silent for twice this are dropped. */
  interval?: number;
  /** Seconds a client must wait at least between regular announces; default interval / 2. */
  minInterval?: number;
  /** When given, the tracker is private: it serves these info hashes and refuses others. */
  allow?: Iterable<Buffer>;
  /**
   * `loopback` (default) believes `ip` only from a loopback caller: a local proxy, or
   * tests that give several peers 127.0.0.x addresses. Anyone else could otherwise
   * point a swarm at a host of their choosing.
   */
  trustIp?: TrustIpParameter;
  /** Milliseconds, monotonic. */
  clock?: { now(): number };
  random?: Random;
}

export interface RemoteAddress {
  address: string;
  family: AddressFamily;
}

export class TrackerCore {
  readonly interval: number;
  readonly minInterval: number;
  readonly store: PeerStore;
  private readonly allowed: Set<string> | undefined;
  private readonly trustIp: TrustIpParameter;
  private readonly clock: { now(): number };
  /** The fixed tail of every announce answer, encoded once. */
  private readonly intervals: string;

  constructor(options: TrackerCoreOptions = {}) {
    this.interval = wholeSeconds('interval', options.interval ?? DEFAULT_INTERVAL_SECONDS, 1);
    this.minInterval = wholeSeconds('minInterval', options.minInterval ?? Math.max(1, Math.floor(this.interval / 2)), 0);
    this.store = options.store ?? new MemoryPeerStore(options.random);
    this.allowed = options.allow ? new Set([...options.allow].map(hashKey)) : undefined;
    this.trustIp = options.trustIp ?? 'loopback';
    this.clock = options.clock ?? { now: () => performance.now() };
    this.intervals = `8:intervali${this.interval}e12:min intervali${this.minInterval}e`;
  }

  /** Whether the tracker answers for every info hash or only for those allowed. */
  get isPrivate(): boolean {
    return this.allowed !== undefined;
  }

  /** Serves one more info hash (a release went live). Only for a private tracker. */
  allow(infoHash: Buffer): void {
    if (!this.allowed) throw new Error('this tracker serves every info hash; create it with an allow list to restrict it');
    this.allowed.add(hashKey(infoHash));
  }

  /** Stops serving an info hash; its peers age out on their own. */
  disallow(infoHash: Buffer): void {
    this.allowed?.delete(hashKey(infoHash));
  }

  isAllowed(infoHash: Buffer): boolean {
    return !this.allowed || this.allowed.has(hashKey(infoHash));
  }

  announce(query: AnnounceQuery, remote: RemoteAddress): Buffer {
    const infoHash = hashKey(query.infoHash);
    if (this.allowed && !this.allowed.has(infoHash)) {
      return failureResponse('info_hash is not served by this tracker (private swarm)');
    }
    const address = this.peerAddress(query.ip, remote);
    if (!address) return failureResponse('ip: cannot tell the peer address');
    const now = this.clock.now();
    this.store.expire(now - 2 * this.interval * 1000);

    const key = query.peerId.toString('latin1');
    if (query.event === 'stopped') {
      this.store.remove(infoHash, key);
      return this.announceResponse(infoHash, [], query);
    }
    const seeder = query.left !== undefined ? query.left === 0 : query.event === 'completed';
    const peer: Peer = { key, address: address.address, family: address.family, port: query.port, compact: compactPeer(address, query.port), seeder };
    const previous = this.store.upsert(infoHash, peer, now);
    if (query.event === 'completed' && previous !== 'seeder') this.store.recordCompleted(infoHash);
    const numwant = Math.min(query.numwant ?? DEFAULT_NUMWANT, MAX_NUMWANT);
    return this.announceResponse(infoHash, this.store.list(infoHash, numwant, key), query);
  }

  /** BEP 48: counts for each asked-for info hash this tracker serves. */
  scrape(infoHashes: Buffer[]): Buffer {
    if (infoHashes.length === 0) {
      return failureResponse('info_hash is missing: this tracker does not list its swarms');
    }
    this.store.expire(this.clock.now() - 2 * this.interval * 1000);
    // Dictionary keys must be sorted by their bytes and unique.
    const keys = [...new Set(infoHashes.map(hashKey))].filter((k) => !this.allowed || this.allowed.has(k)).sort(compareBinary);
    let body = 'd5:filesd';
    for (const key of keys) {
      const c = this.store.counts(key);
      body += `20:${key}d8:completei${c.complete}e10:downloadedi${c.downloaded}e10:incompletei${c.incomplete}ee`;
    }
    return Buffer.from(`${body}ee`, 'latin1');
  }

  private peerAddress(ip: string | undefined, remote: RemoteAddress): PeerAddress | undefined {
    const caller = remote.family === 4 && !remote.address.includes(':') ? { address: remote.address, family: remote.family } : normalizeAddress(remote.address);
    if (ip === undefined || this.trustIp === 'never' || !caller) return caller;
    if (this.trustIp === 'loopback' && !isLoopback(caller)) return caller;
    // `ip` may also be a DNS name (BEP 3); a tracker that resolved names would do I/O
    // per announce, so anything but a literal falls back to the caller's address.
    return normalizeAddress(ip) ?? caller;
  }

  private announceResponse(infoHash: string, peers: Peer[], query: AnnounceQuery): Buffer {
    const counts = this.store.counts(infoHash);
    const head = `d8:completei${counts.complete}e10:incompletei${counts.incomplete}e${this.intervals}`;
    if (!query.compact) return Buffer.from(`${head}5:peers${dictionaryPeers(peers, !query.noPeerId)}e`, 'latin1');

    let v4 = 0;
    let v6 = 0;
    for (const p of peers) {
      if (p.family === 4) v4++;
      else v6++;
    }
    const peersHead = `${head}5:peers${v4 * 6}:`;
    const peers6Head = v6 > 0 ? `6:peers6${v6 * 18}:` : '';
    const out = Buffer.allocUnsafe(peersHead.length + v4 * 6 + peers6Head.length + v6 * 18 + 1);
    let at = out.write(peersHead, 0, 'latin1');
    // Byte loops: for 6- and 18-byte entries they beat a native call per peer.
    for (const p of peers) if (p.family === 4) at = copyInto(out, at, p.compact);
    at += out.write(peers6Head, at, 'latin1');
    for (const p of peers) if (p.family === 6) at = copyInto(out, at, p.compact);
    out[at] = 0x65; // 'e' closes the response dictionary
    return out;
  }
}

/** `d14:failure reason…e`: the only answer a refused request gets. */
export function failureResponse(reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  return Buffer.concat([Buffer.from(`d14:failure reason${text.length}:`, 'latin1'), text, Buffer.from('e', 'latin1')]);
}

/** Keys `ip`, `peer id`, `port`, in the sorted order bencode requires. */
function dictionaryPeers(peers: Peer[], withPeerId: boolean): string {
  let out = 'l';
  for (const p of peers) {
    out += `d2:ip${p.address.length}:${p.address}`;
    if (withPeerId) out += `7:peer id${p.key.length}:${p.key}`;
    out += `4:porti${p.port}ee`;
  }
  return `${out}e`;
}

function copyInto(out: Buffer, at: number, binary: string): number {
  for (let i = 0; i < binary.length; i++) out[at + i] = binary.charCodeAt(i);
  return at + binary.length;
}

function hashKey(infoHash: Buffer): string {
  return infoHash.toString('latin1');
}

function compareBinary(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function wholeSeconds(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be a whole number of seconds ≥ ${min}, got ${value}`);
  return value;
}
