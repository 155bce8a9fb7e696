import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PiecePicker, type PickerPeer } from '../src/piece-picker.js';
import { seededRandom } from '../src/clock.js';
import type { BlockRef } from '../../wire/src/messages.js';

/**
 * Compact notation, after libtorrent's setup_picker(): one character per piece.
 * `availability`: digits, how many peers have each piece. `have`: '*' for pieces we
 * have verified, anything else for pieces we want.
 */
function setupPicker(availability: string, have = '', options: { blocksPerPiece?: number; random?: () => number } = {}) {
  const blocks = options.blocksPerPiece ?? 1;
  const blockLength = 16 * 1024;
  const pieceCount = availability.length;
  const picker = new PiecePicker({
    pieceCount,
    pieceLength: blocks * blockLength,
    totalLength: pieceCount * blocks * blockLength,
    random: options.random ?? seededRandom(1),
    randomFirstPieces: 0,
  });
  [...availability].forEach((c, i) => {
    for (let n = 0; n < Number(c); n++) picker.peerHasPiece(i);
  });
  [...have].forEach((c, i) => c === '*' && picker.markVerified(i));
  return picker;
}

function peer(key: string, pieces: string): PickerPeer {
  return { key, has: (i) => pieces[i] !== undefined && pieces[i] !== ' ' && pieces[i] !== '.' };
}

const seed = (key: string, n: number) => peer(key, '*'.repeat(n));


function pickPieces(picker: PiecePicker, p: PickerPeer, max: number): number[] {
  const out: BlockRef[] = [];
  picker.pick(p, max, out);
  return out.map((b) => b.index);
}

describe('PiecePicker', () => {
  it('picks the rarest piece first', () => {
    const picker = setupPicker('3231432');
    expect(pickPieces(picker, seed('A', 7), 1)).toEqual([3]);
  });

  it('skips pieces we have and pieces the peer lacks', () => {
    const picker = setupPicker('1123', '*  ');
    expect(pickPieces(picker, peer('A', '. **'), 3)).toEqual([2, 3]);
  });

  it('keeps rarity up to date as availability changes', () => {
    const picker = setupPicker('2222');
    picker.peerLostPiece(2);
    expect(pickPieces(picker, seed('A', 4), 1)).toEqual([2]);
    picker.peerHasPiece(2);
    picker.peerHasPiece(2);
    picker.peerLostPiece(0);
    expect(pickPieces(picker, seed('B', 4), 1)).toEqual([0]);
  });

  it('finishes partial pieces before starting new ones', () => {
    const picker = setupPicker('5515', '', { blocksPerPiece: 4 });
    const out: BlockRef[] = [];
    picker.pick(seed('A', 4), 2, out);
    expect(out.map((b) => [b.index, b.begin / 16384])).toEqual([[2, 0], [2, 1]]);
    out.length = 0;
    picker.pick(seed('B', 4), 3, out);
    expect(out.slice(0, 2).map((b) => [b.index, b.begin / 16384])).toEqual([[2, 2], [2, 3]]);
    expect(out[2]!.index).not.toBe(2);
  });

  it('sends endgame duplicates only when every block is requested, and names whom to cancel', () => {
    const picker = setupPicker('11', '*', { blocksPerPiece: 2 });
    const a: BlockRef[] = [];
    picker.pick(seed('A', 2), 10, a);
    expect(a).toHaveLength(2);
    expect(picker.inEndgame()).toBe(true);
    const b: BlockRef[] = [];
    picker.pick(seed('B', 2), 10, b);
    expect(b).toEqual(a);
    const outcome = picker.received(1, 0, 'B');
    expect(outcome).toEqual({ accepted: true, pieceComplete: false, cancel: ['A'] });
    expect(picker.received(1, 0, 'A')).toEqual({ accepted: false, reason: 'duplicate' });
  });

  it('returns abandoned blocks to the pool', () => {
    const picker = setupPicker('1', '', { blocksPerPiece: 2 });
    picker.pick(seed('A', 1), 10, []);
    picker.peerGone('A');
    const out: BlockRef[] = [];
    picker.pick(seed('B', 1), 10, out);
    expect(out).toHaveLength(2);
  });

  it('gives a failed piece with several contributors to one peer alone', () => {
    const picker = setupPicker('2', '', { blocksPerPiece: 2 });
    const a: BlockRef[] = [];
    picker.pick(seed('A', 1), 1, a);
    const b: BlockRef[] = [];
    picker.pick(seed('B', 1), 1, b);
    picker.received(0, a[0]!.begin, 'A');
    expect(picker.received(0, b[0]!.begin, 'B')).toMatchObject({ pieceComplete: true });
    expect(picker.markFailed(0).sort()).toEqual(['A', 'B']);
    expect(pickPieces(picker, seed('B', 1), 1)).toEqual([0]);
    expect(pickPieces(picker, seed('A', 1), 5)).toEqual([]);
    expect(pickPieces(picker, seed('B', 1), 5)).toEqual([0]);
  });

  it('never starts more partial pieces than allowed', () => {
    const picker = new PiecePicker({ pieceCount: 10, pieceLength: 32768, totalLength: 10 * 32768, random: seededRandom(3), maxPartialPieces: 2 });
    for (let i = 0; i < 10; i++) picker.peerHasPiece(i);
    const out: BlockRef[] = [];
    picker.pick(seed('A', 10), 100, out);
    expect(new Set(out.map((b) => b.index)).size).toBe(2);
  });

  it('sizes the last block of the last piece', () => {
    const picker = new PiecePicker({ pieceCount: 2, pieceLength: 32768, totalLength: 32768 + 20000, random: seededRandom(1), randomFirstPieces: 0 });
    picker.peerHasPiece(1);
    const out: BlockRef[] = [];
    picker.pick(peer('A', ' *'), 10, out);
    expect(out).toEqual([{ index: 1, begin: 0, length: 16384 }, { index: 1, begin: 16384, length: 20000 - 16384 }]);
  });

  it('keeps the wanted order sorted by availability under any sequence of changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(fc.constantFrom('inc', 'dec', 'have'), fc.nat()), { maxLength: 300 }),
        (n, ops) => {
          const picker = new PiecePicker({ pieceCount: n, pieceLength: 16384, totalLength: n * 16384, random: seededRandom(7) });
          const avail = new Array(n).fill(0);
          const have = new Set<number>();
          for (const [op, x] of ops) {
            const i = x % n;
            if (op === 'inc') {
              picker.peerHasPiece(i);
              avail[i]++;
            } else if (op === 'dec' && avail[i] > 0) {
              picker.peerLostPiece(i);
              avail[i]--;
            } else if (op === 'have') {
              picker.markVerified(i);
              have.add(i);
            }
          }
          const order = picker.wantedOrder();
          expect(order.slice().sort((a, b) => a - b)).toEqual([...Array(n).keys()].filter((i) => !have.has(i)));
          for (let k = 1; k < order.length; k++) expect(avail[order[k - 1]!]).toBeLessThanOrEqual(avail[order[k]!]);
          for (let i = 0; i < n; i++) expect(picker.availabilityOf(i)).toBe(avail[i]);
        },
      ),
    );
  });
});
