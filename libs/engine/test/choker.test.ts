import { describe, expect, it } from 'vitest';
import {
  chokeRound,
  DEFAULT_CHOKER_SETTINGS,
  INITIAL_CHOKER_STATE,
  type ChokerPeer,
  type ChokerSettings,
  type ChokerState,
} from '../src/choker.js';
import { seededRandom } from '../src/clock.js';

/**
 * `'A:i:900 B:-:500 C:is:0'`: key, flags (i interested, s seed, - none), rate. The rate
 * is what the peer gives us while leeching and what we give it while seeding.
 */
function peers(spec: string): ChokerPeer[] {
  return spec
    .trim()
    .split(/\s+/)
    .map((token) => {
      const [key = '', flags = '', rate = '0'] = token.split(':');
      return {
        key,
        interested: flags.includes('i'),
        isSeed: flags.includes('s'),
        downloadRate: Number(rate),
        uploadRate: Number(rate),
        uploadedSinceUnchoke: 0,
        connectedAt: -1e9,
      };
    });
}

function settings(over: Partial<ChokerSettings>): ChokerSettings {
  return { ...DEFAULT_CHOKER_SETTINGS, ...over };
}


const keys = (set: ReadonlySet<string>): string => [...set].sort().join(' ');

describe('chokeRound while leeching', () => {
  const leech = { now: 0, seeding: false, random: seededRandom(1) };

  it('gives the regular slots to the interested peers that give us the most', () => {
    const { unchoke } = chokeRound(peers('A:i:900 B:i:500 C:-:800 D:i:100'), INITIAL_CHOKER_STATE, leech, settings({ slots: 2, optimisticSlots: 0 }));
    expect(keys(unchoke)).toBe('A B');
  });

  it('never gives a seed a slot, however fast', () => {
    const { unchoke } = chokeRound(peers('S:is:5000 A:i:10 B:i:5'), INITIAL_CHOKER_STATE, leech, settings({ slots: 1, optimisticSlots: 1 }));
    expect(unchoke.has('S')).toBe(false);
    expect(keys(unchoke)).toBe('A B');
  });

  it('chokes a peer that lost interest', () => {
    const first = chokeRound(peers('A:i:900 B:i:500'), INITIAL_CHOKER_STATE, leech, settings({ slots: 2, optimisticSlots: 0 }));
    const second = chokeRound(peers('A:-:900 B:i:500'), first.state, { ...leech, now: 10_000 }, settings({ slots: 2, optimisticSlots: 0 }));
    expect(keys(second.unchoke)).toBe('B');
  });

  it('hands the slot to a faster peer in the next round', () => {
    const s = settings({ slots: 1, optimisticSlots: 0 });
    const first = chokeRound(peers('A:i:900 B:i:500'), INITIAL_CHOKER_STATE, leech, s);
    const second = chokeRound(peers('A:i:400 B:i:500'), first.state, { ...leech, now: 10_000 }, s);
    expect([keys(first.unchoke), keys(second.unchoke)]).toEqual(['A', 'B']);
  });

  it('lets peers that give nothing take turns rather than keep their slots forever', () => {
    const s = settings({ slots: 1, optimisticSlots: 0 });
    let state: ChokerState = INITIAL_CHOKER_STATE;
    const served = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const d = chokeRound(peers('A:i:0 B:i:0 C:i:0'), state, { ...leech, now: round * 10_000 }, s);
      for (const k of d.unchoke) served.add(k);
      state = d.state;
    }
    expect(keys(served)).toBe('A B C');
  });

  it('forgets peers that are gone and leaves its input state alone', () => {
    const first = chokeRound(peers('A:i:900 B:i:500'), INITIAL_CHOKER_STATE, leech, settings({ slots: 2 }));
    const before = keys(first.state.unchoked);
    const second = chokeRound(peers('B:i:500'), first.state, { ...leech, now: 10_000 }, settings({ slots: 2 }));
    expect(keys(first.state.unchoked)).toBe(before);
    expect([...second.state.lastUnchoke.keys()]).toEqual(['B']);
    expect(keys(second.unchoke)).toBe('B');
  });
});

describe('optimistic unchoke', () => {
  const s = settings({ slots: 1, optimisticSlots: 1, optimisticPeriodMs: 30_000 });
  const swarm = peers('A:i:900 B:i:0 C:i:0 D:i:0 E:i:0');

  it('keeps its pick for a whole period, then rotates to another peer', () => {
    const random = seededRandom(7);
    let state: ChokerState = INITIAL_CHOKER_STATE;
    const picks: string[] = [];
    for (let t = 0; t <= 30_000; t += 10_000) {
      const d = chokeRound(swarm, state, { now: t, seeding: false, random }, s);
      expect(d.unchoke.has('A')).toBe(true);
      expect(d.unchoke.size).toBe(2);
      picks.push([...d.state.optimistic.keys()].join(' '));
      state = d.state;
    }
    expect(picks[1]).toBe(picks[0]);
    expect(picks[2]).toBe(picks[0]);
    expect(picks[3]).not.toBe(picks[0]);
  });

  it('gives every peer outside the regular set a turn over time', () => {
    const random = seededRandom(3);
    let state: ChokerState = INITIAL_CHOKER_STATE;
    const served = new Set<string>();
    for (let t = 0; t < 40 * 30_000; t += 10_000) {
      const d = chokeRound(swarm, state, { now: t, seeding: false, random }, s);
      for (const k of d.state.optimistic.keys()) served.add(k);
      state = d.state;
    }
    expect(keys(served)).toBe('B C D E');
  });

  it('lets an optimistic peer that proved fast win a regular slot when its period ends', () => {
    const first = chokeRound(peers('A:i:500 B:i:0'), INITIAL_CHOKER_STATE, { now: 0, seeding: false, random: seededRandom(1) }, s);
    expect([...first.state.optimistic.keys()]).toEqual(['B']);
    const later = chokeRound(peers('A:i:500 B:i:800'), first.state, { now: 30_000, seeding: false, random: seededRandom(1) }, s);
    expect(keys(later.unchoke)).toBe('A B');
    expect([...later.state.optimistic.keys()]).toEqual(['A']);
  });

  it('favours newly connected peers three to one', () => {
    const now = 10 * 60_000;
    const pool: ChokerPeer[] = [...peers('A:i:900 O:i:0 N:i:0')];
    pool[2] = { ...pool[2]!, connectedAt: now - 1_000 };
    const random = seededRandom(11);
    let newPicks = 0;
    const draws = 4000;
    for (let i = 0; i < draws; i++) {
      const d = chokeRound(pool, INITIAL_CHOKER_STATE, { now, seeding: false, random }, s);
      if (d.state.optimistic.has('N')) newPicks++;
    }
    expect(newPicks / draws).toBeGreaterThan(0.72);
    expect(newPicks / draws).toBeLessThan(0.78);
  });
});

describe('chokeRound while seeding (round robin)', () => {
  const s = settings({ slots: 2, optimisticSlots: 0, roundRobinQuantumMs: 60_000, roundRobinQuantumBytes: 1 << 20 });
  const roundMs = 10_000;
  const rate = 1 << 20;

  /** Runs rounds in which every unchoked peer takes `rate` bytes a second. */
  function simulate(keysOfPeers: string[], rounds: number, onRound: (unchoked: ReadonlySet<string>, round: number) => void): void {
    let state: ChokerState = INITIAL_CHOKER_STATE;
    const sent = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      const input = keysOfPeers.map((key) => ({
        ...peers(`${key}:i:0`)[0]!,
        uploadRate: state.unchoked.has(key) ? rate : 0,
        uploadedSinceUnchoke: sent.get(key) ?? 0,
      }));
      const d = chokeRound(input, state, { now: round * roundMs, seeding: true, random: seededRandom(round) }, s);
      for (const key of keysOfPeers) {
        if (!d.unchoke.has(key)) sent.delete(key);
        else sent.set(key, (state.unchoked.has(key) ? (sent.get(key) ?? 0) : 0) + (rate * roundMs) / 1000);
      }
      state = d.state;
      onRound(d.unchoke, round);
    }
  }

  it('keeps the peers it serves until they have had a full quantum', () => {
    const history: string[] = [];
    simulate(['A', 'B', 'C', 'D'], 7, (u) => history.push(keys(u)));
    expect(history.slice(0, 7)).toEqual(['A B', 'A B', 'A B', 'A B', 'A B', 'A B', 'C D']);
  });

  it('gives every interested peer a turn within a bounded number of rounds', () => {
    const all = ['A', 'B', 'C', 'D', 'E', 'F'];
    const firstServed = new Map<string, number>();
    simulate(all, 30, (u, round) => {
      expect(u.size).toBeLessThanOrEqual(2);
      for (const k of u) if (!firstServed.has(k)) firstServed.set(k, round);
    });
    // Three pairs, each holding the slots for a quantum (60 s = 6 rounds) plus the round that hands over.
    expect(firstServed.size).toBe(all.length);
    expect(Math.max(...firstServed.values())).toBeLessThanOrEqual(14);
  });

  it('moves a slot from a peer that takes nothing to one that waits', () => {
    const first = chokeRound(peers('A:i:0 B:i:0'), INITIAL_CHOKER_STATE, { now: 0, seeding: true, random: seededRandom(1) }, settings({ slots: 1, optimisticSlots: 0 }));
    const second = chokeRound(peers('A:i:0 B:i:0'), first.state, { now: 10_000, seeding: true, random: seededRandom(1) }, settings({ slots: 1, optimisticSlots: 0 }));
    expect([keys(first.unchoke), keys(second.unchoke)]).toEqual(['A', 'B']);
  });

  it('ignores what peers give us: nothing they send can matter once we have everything', () => {
    const input = peers('A:i:0 B:i:0').map((p) => (p.key === 'B' ? { ...p, downloadRate: 1e9 } : p));
    const { unchoke } = chokeRound(input, INITIAL_CHOKER_STATE, { now: 0, seeding: true, random: seededRandom(1) }, settings({ slots: 1, optimisticSlots: 0 }));
    expect(keys(unchoke)).toBe('A');
  });
});
