import type { Random } from './clock.js';

// The choker decides, once per round (every 10 s in BEP 3 clients), which peers we upload
// to. It is a pure function of the peers' figures and the previous round's state; the
// timer that calls it and the CHOKE/UNCHOKE messages live in the session.
//
// Only interested peers are candidates: an uninterested peer would hold a slot and take
// nothing, so it is choked, as libtorrent does.
//
// While leeching: tit-for-tat. The regular slots go to the peers that give us the most
// (BEP 3), which rewards peers that reciprocate and finds the fastest paths through the
// swarm. Seeds never get one: they want nothing from us and can pay back nothing.
//
// While seeding nobody can pay us back, so ranking by what peers give us is meaningless.
// Round robin (libtorrent's default seed choker) keeps the peers we upload to fastest,
// but a peer that has held its slot for a full quantum of time and bytes yields it to
// the peer that has waited longest, so every interested peer is served in turn; an
// unchoked peer that takes nothing ranks with the waiting ones and loses to them.
//
// Optimistic slots go to a random peer outside the regular set and rotate every period:
// that is how a new peer, which has nothing to trade yet, gets its first pieces, and how
// we discover peers faster than our current partners. An optimistic peer keeps its slot
// for a whole period, giving it time to reciprocate, and only then competes for a regular
// slot. As in the mainline client, peers that connected recently are three times as
// likely to be chosen.
//
// One comparator serves both modes, as in libtorrent: while leeching, peers that give us
// the same (typically nothing, early on) are ordered by the round-robin rules, so they
// too take turns. The last tie-break is the key, so a round is deterministic given its
// inputs and the random source.

export interface ChokerPeer {
  key: string;
  /** The peer wants something we have. */
  interested: boolean;
  /** The peer has every piece. */
  isSeed: boolean;
  /** Bytes per second the peer gives us. */
  downloadRate: number;
  /** Bytes per second we give the peer. */
  uploadRate: number;
  /** Bytes sent to the peer since it was last unchoked: the session resets it on UNCHOKE. */
  uploadedSinceUnchoke: number;
  /** When the connection was established, on the clock that supplies `now`. */
  connectedAt: number;
}

export interface ChokerSettings {
  /** Regular unchoke slots. */
  slots: number;
  optimisticSlots: number;
  optimisticPeriodMs: number;
  /** Seeding: a peer yields its slot after holding it this long... */
  roundRobinQuantumMs: number;
  /** ...and receiving at least this many bytes in it. */
  roundRobinQuantumBytes: number;
}

export const DEFAULT_CHOKER_SETTINGS: Readonly<ChokerSettings> = {
  // BEP 3's 4 slots suit a home uplink; one datacenter link outruns any single peer's disk
  // and TCP window, and more slots let each release fan out through the fleet faster.
  slots: 8,
  optimisticSlots: 1,
  optimisticPeriodMs: 30_000,
  roundRobinQuantumMs: 60_000,
  roundRobinQuantumBytes: 64 * 1024 * 1024,
};

export interface ChokerState {
  /** Peers unchoked after the last round, regular and optimistic. */
  readonly unchoked: ReadonlySet<string>;
  /** When each known peer was last unchoked; kept while it is choked, to find who waited longest. */
  readonly lastUnchoke: ReadonlyMap<string, number>;
  /** Optimistically unchoked peers and when each got its slot. */
  readonly optimistic: ReadonlyMap<string, number>;
}

export const INITIAL_CHOKER_STATE: ChokerState = {
  unchoked: new Set(),
  lastUnchoke: new Map(),
  optimistic: new Map(),
};

export interface ChokerContext {
  now: number;
  seeding: boolean;
  random: Random;
}

export interface ChokeDecision {
  /** Every peer to keep or make unchoked; all others are to be choked. */
  unchoke: ReadonlySet<string>;
  state: ChokerState;
}

/** Peers that connected within this many optimistic periods count as new. */
const NEW_PEER_PERIODS = 3;
const NEW_PEER_WEIGHT = 3;

export function chokeRound(
  peers: readonly ChokerPeer[],
  state: ChokerState,
  round: ChokerContext,
  settings: Readonly<ChokerSettings> = DEFAULT_CHOKER_SETTINGS,
): ChokeDecision {
  const { now, seeding, random } = round;
  const candidates = peers.filter((p) => p.interested && !p.isSeed);
  const waitedSince = (p: ChokerPeer): number => state.lastUnchoke.get(p.key) ?? -Infinity;
  const isUnchoked = (p: ChokerPeer): boolean => state.unchoked.has(p.key);

  // Optimistic peers keep their slot for a whole period, outside the regular contest.
  const optimistic = new Map<string, number>();
  const expiredOptimistic = new Set<string>();
  for (const p of candidates) {
    const since = state.optimistic.get(p.key);
    if (since === undefined) continue;
    if (now - since < settings.optimisticPeriodMs) optimistic.set(p.key, since);
    else expiredOptimistic.add(p.key);
  }

  const quantumDone = (p: ChokerPeer): boolean =>
    isUnchoked(p) &&
    now - waitedSince(p) >= settings.roundRobinQuantumMs &&
    p.uploadedSinceUnchoke >= settings.roundRobinQuantumBytes;
  // A peer choked last round may still be draining requests in flight; its rate says
  // nothing about its claim to a slot.
  const servedRate = (p: ChokerPeer): number => (isUnchoked(p) ? p.uploadRate : 0);

  const regular = candidates
    .filter((p) => !optimistic.has(p.key))
    .sort(
      (a, b) =>
        (seeding ? 0 : b.downloadRate - a.downloadRate) ||
        Number(quantumDone(a)) - Number(quantumDone(b)) ||
        servedRate(b) - servedRate(a) ||
        waitedSince(a) - waitedSince(b) ||
        (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    )
    .slice(0, Math.max(0, settings.slots));
  const regularKeys = new Set(regular.map((p) => p.key));

  const free = Math.max(0, settings.optimisticSlots - optimistic.size);
  if (free > 0) {
    const pool = candidates.filter((p) => !regularKeys.has(p.key) && !optimistic.has(p.key));
    // Rotation means someone else gets the turn, unless nobody else is waiting.
    const fresh = pool.filter((p) => !expiredOptimistic.has(p.key));
    const from = fresh.length >= free ? fresh : pool;
    const newWithin = settings.optimisticPeriodMs * NEW_PEER_PERIODS;
    const weighted = from.map((p) => ({ key: p.key, weight: now - p.connectedAt < newWithin ? NEW_PEER_WEIGHT : 1 }));
    for (const key of pickWeighted(weighted, free, random)) optimistic.set(key, now);
  }

  const unchoke = new Set([...regularKeys, ...optimistic.keys()]);
  const lastUnchoke = new Map<string, number>();
  for (const p of peers) {
    const last = unchoke.has(p.key) && !state.unchoked.has(p.key) ? now : state.lastUnchoke.get(p.key);
    if (last !== undefined) lastUnchoke.set(p.key, last);
  }
  return { unchoke, state: { unchoked: unchoke, lastUnchoke, optimistic } };
}

/** Up to `count` distinct keys, each draw proportional to weight among those left. */
function pickWeighted(items: { key: string; weight: number }[], count: number, random: Random): string[] {
  const left = [...items];
  const picked: string[] = [];
  while (picked.length < count && left.length > 0) {
    let total = 0;
    for (const it of left) total += it.weight;
    let r = random() * total;
    let i = 0;
    while (i < left.length - 1 && r >= left[i]!.weight) r -= left[i++]!.weight;
    picked.push(left[i]!.key);
    left.splice(i, 1);
  }
  return picked;
}
