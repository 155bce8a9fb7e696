import { describe, expect, it } from 'vitest';
import { ManualClock, type Clock } from '../src/clock.js';
import { RateGate, TokenBucket } from '../src/token-bucket.js';

const KiB = 1024;

/** A clock that fails the test if anything asks it the time or for a timer. */
const untouchable: Clock = {
  now: () => {
    throw new Error('clock read');
  },
  setTimeout: () => {
    throw new Error('timer set');
  },
  clearTimeout: () => undefined,
  setInterval: () => {
    throw new Error('timer set');
  },
  clearInterval: () => undefined,
};

describe('TokenBucket', () => {
  it('starts full, then refills at exactly the rate', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1000, 1000, clock);
    expect(bucket.tryTake(1000)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
    expect(bucket.delayFor(1)).toBe(1);
    expect(bucket.delayFor(500)).toBe(500);
    clock.advance(499);
    expect(bucket.tryTake(500)).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake(500)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
  });

  it('never holds more than the burst, however long it idles', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1000, 300, clock);
    clock.advance(60_000);
    expect(bucket.tryTake(300)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
  });

  it('lets a take larger than the burst through from a full bucket and charges the debt', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1000, 100, clock);
    expect(bucket.tryTake(400)).toBe(true);
    // 300 bytes of debt plus 100 to fill the bucket again.
    expect(bucket.delayFor(400)).toBe(400);
    clock.advance(399);
    expect(bucket.tryTake(400)).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake(400)).toBe(true);
  });

  it('costs nothing when unlimited: no clock read, no delay', () => {
    const bucket = new TokenBucket(Infinity, 16 * KiB, untouchable);
    for (let i = 0; i < 1000; i++) expect(bucket.tryTake(16 * KiB)).toBe(true);
    expect(bucket.delayFor(1e12)).toBe(0);
  });

  it('keeps what it earned at the old rate when the rate changes', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1000, 10_000, clock);
    bucket.tryTake(10_000);
    clock.advance(1000);
    bucket.setRate(4000);
    expect(bucket.delayFor(2000)).toBe(250);
    bucket.setRate(0);
    expect(bucket.delayFor(2000)).toBe(Infinity);
    expect(bucket.tryTake(1000)).toBe(true);
  });

  it('starts from a full bucket when limited after running unlimited', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(Infinity, 500, clock);
    clock.advance(5000);
    bucket.setRate(100);
    expect(bucket.tryTake(500)).toBe(true);
    expect(bucket.delayFor(100)).toBe(1000);
  });

  it('refuses nonsense settings by name', () => {
    const clock = new ManualClock();
    expect(() => new TokenBucket(-1, 10, clock)).toThrow(/rateBytesPerSecond/);
    expect(() => new TokenBucket(Number.NaN, 10, clock)).toThrow(/rateBytesPerSecond/);
    expect(() => new TokenBucket(10, 0, clock)).toThrow(/burstBytes/);
  });
});

describe('RateGate', () => {
  it('passes exactly burst + rate × time over a long run', () => {
    const clock = new ManualClock();
    // 1024 bytes per ms: timers fall on whole milliseconds, so the count is exact.
    const gate = new RateGate(1000 * KiB, 64 * KiB, clock);
    let sent = 0;
    const block = 16 * KiB;
    const pump = (): void => {
      while (gate.takeSync(block)) sent += block;
      gate.take(block, () => {
        sent += block;
        pump();
      });
    };
    pump();
    clock.advance(10_000);
    expect(sent).toBe(64 * KiB + 10 * 1000 * KiB);
  });

  it('serves waiters in order and never calls back synchronously', () => {
    const clock = new ManualClock();
    const gate = new RateGate(1000, 1000, clock);
    const order: string[] = [];
    expect(gate.takeSync(1000)).toBe(true);
    gate.take(800, () => order.push(`big@${clock.now()}`));
    // Bytes for a small take arrive first, but it must not overtake the queue.
    expect(gate.takeSync(10)).toBe(false);
    gate.take(100, () => order.push(`small@${clock.now()}`));
    expect(order).toEqual([]);
    expect(gate.waiting).toBe(2);
    clock.advance(2000);
    expect(order).toEqual(['big@800', 'small@900']);
    expect(gate.waiting).toBe(0);
    gate.take(1, () => order.push(`now@${clock.now()}`));
    expect(order).toHaveLength(2);
    clock.advance(0);
    expect(order[2]).toBe('now@2000');
  });

  it('withdraws a cancelled request without spending its bytes', () => {
    const clock = new ManualClock();
    const gate = new RateGate(1000, 1000, clock);
    gate.takeSync(1000);
    const calls: string[] = [];
    const cancel = gate.take(500, () => calls.push('gone'));
    gate.take(500, () => calls.push(`kept@${clock.now()}`));
    cancel();
    clock.advance(1000);
    expect(calls).toEqual(['kept@500']);
    cancel();
  });

  it('holds its queue while paused and resumes on a new rate', () => {
    const clock = new ManualClock();
    const gate = new RateGate(1000, 100, clock);
    gate.takeSync(100);
    gate.setRate(0);
    let done = false;
    gate.take(100, () => (done = true));
    clock.advance(60_000);
    expect(done).toBe(false);
    gate.setRate(Infinity);
    clock.advance(0);
    expect(done).toBe(true);
    expect(gate.takeSync(1e9)).toBe(true);
  });

  it('drops every waiter on clear', () => {
    const clock = new ManualClock();
    const gate = new RateGate(1000, 100, clock);
    gate.takeSync(100);
    let called = false;
    gate.take(50, () => (called = true));
    gate.clear();
    clock.advance(10_000);
    expect(called).toBe(false);
    expect(gate.waiting).toBe(0);
  });

  it('costs nothing on the hot path when unlimited', () => {
    const gate = new RateGate(Infinity, 16 * KiB, untouchable);
    for (let i = 0; i < 1000; i++) expect(gate.takeSync(16 * KiB)).toBe(true);
  });
});
