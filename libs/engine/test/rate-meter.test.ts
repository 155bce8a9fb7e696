import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.js';
import { RateMeter } from '../src/rate-meter.js';

describe('RateMeter', () => {
  it('averages over its window, forgets what slid out of it, and keeps the running total', () => {
    const clock = new ManualClock();
    const meter = new RateMeter(clock, 4000);
    meter.add(4000);
    expect(meter.rate()).toBe(1000);
    clock.advance(1000);
    meter.add(8000);
    expect(meter.rate()).toBe(3000);
    // 3.5 s later the first 4000 bytes are older than the window; the 8000 are not.
    clock.advance(3500);
    expect(meter.rate()).toBe(2000);
    clock.advance(1000);
    expect(meter.rate()).toBe(0);
    // A long silence clears everything at once, and counting starts afresh.
    clock.advance(60_000);
    meter.add(2000);
    expect(meter.rate()).toBe(500);
    expect(meter.total).toBe(14_000);
  });

  it('agrees with a sum over the slots through many small additions', () => {
    const clock = new ManualClock();
    const meter = new RateMeter(clock, 2000);
    const added: { at: number; bytes: number }[] = [];
    for (let i = 0; i < 5000; i++) {
      const bytes = (i * 7919) % 16_385;
      meter.add(bytes);
      added.push({ at: clock.now(), bytes });
      clock.advance((i * 31) % 97);
      if (i % 250 !== 0) continue;
      // What the 8 slots of 250 ms hold: additions in the current slot and the 7 before it.
      const slot = Math.floor(clock.now() / 250);
      const inWindow = added.filter((a) => Math.floor(a.at / 250) > slot - 8).reduce((n, a) => n + a.bytes, 0);
      expect(meter.rate()).toBe(inWindow / 2);
    }
  });
});
