import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/clock.js';
import { SuperSeedPolicy, type Offers, type PieceSet } from '../src/super-seed.js';

/** `'**--'`: piece i is held where character i is `*`. */
function bits(spec: string): PieceSet {
  return { size: spec.length, has: (i) => spec[i] === '*' };
}
const none = (n: number): PieceSet => bits('-'.repeat(n));


/** `'A:3 C:1'`, peers in key order, for one-line expectations. */
const show = (offers: Offers): string =>
  [...offers]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}:${v.join(',')}`)
    .join(' ');

describe('SuperSeedPolicy', () => {
  it('offers each new peer one piece nobody else was offered', () => {
    const policy = new SuperSeedPolicy(6, seededRandom(1));
    const offers = ['A', 'B', 'C'].map((p) => policy.peerJoined(p, none(6)));
    expect(offers.map((o) => o.length)).toEqual([1, 1, 1]);
    expect(new Set(offers.flat()).size).toBe(3);
  });

  it('prefers pieces no peer holds over pieces some peer already has', () => {
    for (let seed = 0; seed < 20; seed++) {
      const policy = new SuperSeedPolicy(5, seededRandom(seed));
      const [a] = policy.peerJoined('A', bits('**---'));
      const [b] = policy.peerJoined('B', none(5));
      expect(a).not.toBe(b);
      expect([2, 3, 4]).toEqual(expect.arrayContaining([a, b]));
    }
  });

  it('lets a peer hold only as many offers as its cap, and refills when the cap is raised', () => {
    const policy = new SuperSeedPolicy(40, seededRandom(4), { offersPerPeer: 8 });
    expect(policy.peerJoined('FAST', none(40))).toHaveLength(8);
    const slowOffers = policy.peerJoined('SLOW', none(40));
    expect(slowOffers).toHaveLength(8);
    // Capped at 1 while it still holds 8: nothing new until all but one are passed on.
    expect(policy.setOfferLimit('SLOW', 1)).toEqual([]);
    for (const index of slowOffers.slice(0, 7)) {
      policy.peerHas('SLOW', index);
      expect(show(policy.peerHas('FAST', index))).not.toMatch(/SLOW/);
    }
    policy.peerHas('SLOW', slowOffers[7]!);
    expect(show(policy.peerHas('FAST', slowOffers[7]!))).toMatch(/^(FAST:[\d,]+ )?SLOW:\d+$/);
    // Raised again: it is topped up at once.
    expect(policy.setOfferLimit('SLOW', 8)).toHaveLength(7);
    // Out of range caps are clamped, never zero (a capped peer must still progress).
    expect(policy.setOfferLimit('SLOW', 0)).toEqual([]);
  });

  it('never offers a piece the peer has, and nothing to a seed', () => {
    const policy = new SuperSeedPolicy(4, seededRandom(2));
    expect(policy.peerJoined('A', bits('***-'))).toEqual([3]);
    expect(policy.peerJoined('S', bits('****'))).toEqual([]);
  });

  it('offers the next piece only after the last one is seen at another peer', () => {
    const policy = new SuperSeedPolicy(6, seededRandom(3));
    const [a] = policy.peerJoined('A', none(6)) as [number];
    const [b] = policy.peerJoined('B', none(6)) as [number];
    policy.peerJoined('C', none(6));
    // A completing its piece is not enough: it has not passed it on yet.
    expect(show(policy.peerHas('A', a))).toBe('');
    // B got it, from A: A has shared, so A gets another.
    const next = policy.peerHas('B', a);
    expect([...next.keys()]).toEqual(['A']);
    expect(next.get('A')).toHaveLength(1);
    expect(next.get('A')![0]).not.toBe(a);
    expect(next.get('A')![0]).not.toBe(b);
  });

  it('does not count a piece a peer brought with it as passed on', () => {
    const policy = new SuperSeedPolicy(4, seededRandom(4));
    const [a] = policy.peerJoined('A', none(4)) as [number];
    policy.peerJoined('B', none(4));
    const held = ['*---', '-*--', '--*-', '---*'][a]!;
    expect(policy.peerJoined('C', bits(held))).toHaveLength(1);
    expect(show(policy.peerHas('A', a))).toBe('');
  });

  it('does not stall a swarm of one peer', () => {
    const policy = new SuperSeedPolicy(3, seededRandom(5));
    const got: number[] = [];
    let offer = policy.peerJoined('A', none(3));
    while (offer.length > 0) {
      got.push(...offer);
      const next: number[] = [];
      for (const index of offer) next.push(...(policy.peerHas('A', index).get('A') ?? []));
      offer = next;
    }
    expect(got.sort()).toEqual([0, 1, 2]);
    expect(policy.fullCopyOutside).toBe(true);
  });

  it('offers the last piece a peer lacks together with another, never alone', () => {
    // A peer whose set a lone HAVE would complete may be dropped as uninterested first.
    const policy = new SuperSeedPolicy(4, seededRandom(3));
    const first = policy.peerJoined('A', bits('**--'));
    expect(first.sort()).toEqual([2, 3]);
    expect(policy.mayServe('A', 2) && policy.mayServe('A', 3)).toBe(true);
  });

  it('releases a held offer when the last peer that lacked the piece leaves', () => {
    const policy = new SuperSeedPolicy(4, seededRandom(6));
    const [a] = policy.peerJoined('A', none(4)) as [number];
    policy.peerJoined('B', none(4));
    expect(show(policy.peerHas('A', a))).toBe('');
    const after = policy.peerLeft('B');
    expect([...after.keys()]).toEqual(['A']);
  });

  it('offers what a departed peer held or was offered again, at once, to a peer with room', () => {
    const policy = new SuperSeedPolicy(4, seededRandom(7), { offersPerPeer: 2 });
    const fromA = policy.peerJoined('A', none(4));
    const fromB = policy.peerJoined('B', none(4));
    expect([...fromA, ...fromB].sort()).toEqual([0, 1, 2, 3]);
    // Everything is out: C waits.
    expect(policy.peerJoined('C', none(4))).toEqual([]);
    // A holds one of its pieces (nobody else does yet) and leaves: both are fresh again.
    policy.peerHas('A', fromA[0]!);
    const again = policy.peerLeft('A');
    expect([...again.keys()]).toEqual(['C']);
    expect(again.get('C')!.sort()).toEqual([...fromA].sort());
  });

  it('turns fullCopyOutside on exactly when every piece has been seen at a peer', () => {
    const policy = new SuperSeedPolicy(3, seededRandom(8));
    policy.peerJoined('A', bits('*--'));
    policy.peerJoined('B', none(3));
    expect([policy.distinctPiecesOut, policy.fullCopyOutside]).toEqual([1, false]);
    policy.peerHas('B', 1);
    expect([policy.distinctPiecesOut, policy.fullCopyOutside]).toEqual([2, false]);
    policy.peerHas('A', 1);
    expect([policy.distinctPiecesOut, policy.fullCopyOutside]).toEqual([2, false]);
    policy.peerHas('B', 2);
    expect([policy.distinctPiecesOut, policy.fullCopyOutside]).toEqual([3, true]);
    policy.peerLeft('B');
    expect(policy.fullCopyOutside).toBe(true);
  });

  it('serves only the pieces it announced to that peer', () => {
    const policy = new SuperSeedPolicy(4, seededRandom(9));
    const [a] = policy.peerJoined('A', none(4)) as [number];
    policy.peerJoined('B', none(4));
    for (let i = 0; i < 4; i++) expect(policy.mayServe('A', i)).toBe(i === a);
    expect(policy.mayServe('nobody', a)).toBe(false);
  });

  it('gives a fast peer several offers at once when asked to', () => {
    const policy = new SuperSeedPolicy(8, seededRandom(10), { offersPerPeer: 3 });
    expect(new Set(policy.peerJoined('A', none(8))).size).toBe(3);
  });

  it('refuses what it cannot mean', () => {
    const policy = new SuperSeedPolicy(4, seededRandom(11));
    policy.peerJoined('A', none(4));
    expect(() => policy.peerHas('A', 4)).toThrow(RangeError);
    expect(() => policy.peerHas('Z', 0)).toThrow(/not joined/);
    expect(() => policy.peerJoined('A', none(4))).toThrow(/twice/);
    expect(() => new SuperSeedPolicy(4, seededRandom(1), { offersPerPeer: 0 })).toThrow(/offersPerPeer/);
  });

  it('property: whatever the order of HAVEs and departures, offers are new to the peer and the swarm completes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.array(fc.boolean(), { maxLength: 12 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        fc.array(fc.nat(), { maxLength: 300 }),
        (pieces, initial, offersPerPeer, seed, choices) => {
          const policy = new SuperSeedPolicy(pieces, seededRandom(seed), { offersPerPeer });
          const has = new Map<string, Set<number>>();
          const announced = new Map<string, Set<number>>();
          const everAnnounced = new Set<number>();
          const receive = (peer: string, offers: readonly number[]): void => {
            for (const index of offers) {
              expect(has.get(peer)!.has(index)).toBe(false);
              expect(announced.get(peer)!.has(index)).toBe(false);
              announced.get(peer)!.add(index);
              everAnnounced.add(index);
            }
          };
          const deliver = (offers: Offers): void => {
            for (const [peer, list] of offers) receive(peer, list);
          };

          const waiting = initial.map((held, i) => ({ key: `P${i}`, held: held.slice(0, pieces) }));
          let step = 0;
          const choose = (n: number): number => (choices[step++] ?? 0) % n;
          for (;;) {
            const moves: (() => void)[] = [];
            const next = waiting[0];
            if (next) {
              moves.push(() => {
                waiting.shift();
                has.set(next.key, new Set(next.held.flatMap((h, i) => (h ? [i] : []))));
                announced.set(next.key, new Set());
                receive(next.key, policy.peerJoined(next.key, { size: next.held.length, has: (i) => next.held[i] === true }));
              });
            }
            if (has.size > 1 && step < choices.length && choose(8) === 0) {
              const leaving = [...has.keys()][choose(has.size)]!;
              moves.length = 0;
              moves.push(() => {
                has.delete(leaving);
                announced.delete(leaving);
                deliver(policy.peerLeft(leaving));
              });
            }
            for (const [peer, own] of has) {
              for (let i = 0; i < pieces; i++) {
                if (own.has(i)) continue;
                const reachable = announced.get(peer)!.has(i) || [...has].some(([other, theirs]) => other !== peer && theirs.has(i));
                if (reachable) {
                  moves.push(() => {
                    own.add(i);
                    deliver(policy.peerHas(peer, i));
                  });
                }
              }
            }
            if (moves.length === 0) break;
            moves[choose(moves.length)]!();
          }

          for (const [peer, own] of has) {
            expect(own.size, `${peer} stalled`).toBe(pieces);
            for (let i = 0; i < pieces; i++) expect(policy.mayServe(peer, i)).toBe(announced.get(peer)!.has(i));
          }
          expect(policy.fullCopyOutside).toBe(true);
          const heldAtJoin = new Set(initial.flatMap((held) => held.slice(0, pieces).flatMap((h, i) => (h ? [i] : []))));
          for (let i = 0; i < pieces; i++) expect(everAnnounced.has(i) || heldAtJoin.has(i)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('offers only pieces it holds while an upload lands, each landed piece once, to a peer with room', () => {
    const policy = new SuperSeedPolicy(6, seededRandom(5), { offersPerPeer: 2, available: bits('*-----') });
    expect(policy.peerJoined('A', none(6))).toEqual([0]);
    // Piece 0 is out already: B waits for a piece of its own rather than take a second copy.
    expect(policy.peerJoined('B', none(6))).toEqual([]);
    expect(show(policy.pieceAvailable(1))).toBe('A:1');
    expect(show(policy.pieceAvailable(2))).toBe('B:2');
    // Landing twice changes nothing.
    expect(show(policy.pieceAvailable(2))).toBe('');
    expect(policy.mayServe('A', 2)).toBe(false);
    // A passes piece 0 to B: A has room again, but nothing fresh has landed.
    policy.peerHas('A', 0);
    expect(show(policy.peerHas('B', 0))).toBe('');
    expect(show(policy.pieceAvailable(3))).toBe('A:3');
  });

  it('counts a piece a peer brought before it landed here', () => {
    const policy = new SuperSeedPolicy(3, seededRandom(6), { available: bits('*--') });
    expect(policy.peerJoined('A', bits('-*-'))).toEqual([0]);
    expect(policy.peerJoined('B', none(3))).toEqual([]);
    expect(show(policy.pieceAvailable(2))).toBe('B:2');
    policy.peerHas('A', 0);
    // B has 0 from A: A is released, but the only piece it lacks (2) is out with B.
    expect(show(policy.peerHas('B', 0))).toBe('');
    expect(policy.mayServe('B', 1)).toBe(false);
    // The last piece lands (A has it already): nothing new to offer, and 2 is still only out with B.
    expect(show(policy.pieceAvailable(1))).toBe('');
    policy.peerHas('B', 2);
    expect(policy.fullCopyOutside).toBe(true);
  });

  it('sends no second copy of a piece until every piece has been seen at a peer', () => {
    const policy = new SuperSeedPolicy(5, seededRandom(7), { offersPerPeer: 2 });
    const a = policy.peerJoined('A', none(5));
    const b = policy.peerJoined('B', none(5));
    const c = policy.peerJoined('C', none(5));
    expect([...a, ...b, ...c].sort()).toEqual([0, 1, 2, 3, 4]);
    // Every piece is offered once: D waits, however much room it has.
    expect(policy.peerJoined('D', none(5))).toEqual([]);
    policy.peerHas('A', a[0]!);
    // B takes a[0] from A: A has room, but the pieces it lacks are all out with others.
    expect(show(policy.peerHas('B', a[0]!))).toBe('');
    for (const [peer, pieces] of [['A', a.slice(1)], ['B', b], ['C', c]] as const) for (const i of pieces) policy.peerHas(peer, i);
    // Every piece is out now: a peer that joins is offered pieces others hold.
    expect(policy.fullCopyOutside).toBe(true);
    expect(policy.peerJoined('E', none(5))).toHaveLength(2);
  });

  it('offers a piece once more when nobody has taken it up in time, to one more peer each time', () => {
    let now = 0;
    const policy = new SuperSeedPolicy(3, seededRandom(8), { now: () => now, overdueMs: 10_000 });
    const [a] = policy.peerJoined('A', none(3));
    const [b] = policy.peerJoined('B', none(3));
    const [c] = policy.peerJoined('C', none(3));
    expect(policy.peerJoined('D', none(3))).toEqual([]);
    now = 9_999;
    expect(show(policy.overdueOffers())).toBe('');
    // A, B and C stalled: each of their pieces may go to one more peer. D has room for one,
    // the piece offered first.
    now = 10_000;
    expect(show(policy.overdueOffers())).toBe(`D:${a}`);
    expect(show(policy.overdueOffers())).toBe('');
    expect(policy.peerJoined('E', none(3))).toEqual([b]);
    // D takes its piece up, which releases A's offer of it: A gets the last overdue piece
    // (and, with it, the last piece it lacks, see 'offers the last piece a peer lacks').
    expect(show(policy.peerHas('D', a!))).toBe(`A:${c},${b}`);
    // Each rescue starts its wait again: b and c are overdue again 10 s later, for a newcomer.
    now = 19_999;
    expect(policy.peerJoined('F', none(3))).toEqual([]);
    now = 20_000;
    expect(show(policy.overdueOffers())).toBe(`F:${b}`);
  });
});
