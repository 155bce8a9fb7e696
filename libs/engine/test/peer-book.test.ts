import { describe, expect, it } from 'vitest';
import { ManualClock, seededRandom } from '../src/clock.js';
import { PeerBook } from '../src/peer-book.js';

describe('PeerBook', () => {
  const origin = { host: '10.0.0.5', port: 6881 };

  /** An address that failed `n` times in a row, as a dead origin does through an outage. */
  function failedTimes(n: number): { book: PeerBook; now: number } {
    const book = new PeerBook(new ManualClock(), seededRandom(3));
    book.add(origin, true);
    const key = book.keyOf(origin);
    let now = 0;
    for (let i = 0; i < n; i++) {
      const [due] = book.due(10, Infinity);
      expect(due).toBeDefined();
      book.attempting(key);
      book.disconnected(key, now, true);
      now += 1000;
    }
    return { book, now };
  }

  it('backs off an address that keeps failing', () => {
    const { book, now } = failedTimes(6);
    // The sixth failure waits about 32 s (± a quarter).
    expect(book.due(10, now + 5000)).toEqual([]);
    expect(book.due(10, now + 45_000)).toHaveLength(1);
  });

  it('dials an address said to be back at once, whatever its backoff', () => {
    const { book, now } = failedTimes(6);
    book.retryNow(book.keyOf(origin), now);
    expect(book.due(10, now).map((a) => a.port)).toEqual([6881]);
    // Its backoff starts over: one more failure waits about a second, not a minute.
    book.attempting(book.keyOf(origin));
    book.disconnected(book.keyOf(origin), now, true);
    expect(book.due(10, now + 1500)).toHaveLength(1);
  });

  it('leaves an address that is connected or being dialled alone', () => {
    const { book, now } = failedTimes(1);
    book.attempting(book.keyOf(origin));
    book.retryNow(book.keyOf(origin), now);
    expect(book.due(10, now)).toEqual([]);
  });
});
