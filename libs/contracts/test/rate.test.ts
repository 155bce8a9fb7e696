import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseByteRate } from '../src/rate.js';

describe('parseByteRate', () => {
  it.each([
    ['100', 100],
    ['100b', 100],
    ['5k', 5_000],
    ['5kb', 5_000],
    ['5KiB', 5 * 1024],
    ['100m', 100e6],
    ['100MB', 100e6],
    ['64MiB', 64 * 1024 ** 2],
    ['2g', 2e9],
    ['2GB', 2e9],
    ['1GiB', 1024 ** 3],
    ['800kbit', 100_000],
    ['800mbit', 100e6],
    ['8Gbit', 1e9],
    ['1.5MB', 1.5e6],
    ['50MB/s', 50e6],
    ['50 MB', 50e6],
    ['  50mb  ', 50e6],
  ])('reads %j as %d bytes per second', (text, bytes) => {
    expect(parseByteRate(text)).toBe(bytes);
  });

  it.each(['0', '0.0', '0MB', '0mbit', 'unlimited', 'Unlimited', ' unlimited '])('reads %j as no cap', (text) => {
    expect(parseByteRate(text)).toBe(Infinity);
  });

  it.each(['', 'fast', '-5MB', '5 MB per second', '5tb', 'MB', '1e6', '5MB/', '5mbps', '1constructor', '1__proto__', '1toString', '0x10'])('refuses %j', (text) => {
    expect(parseByteRate(text)).toBeUndefined();
  });

  it('gives a positive number or undefined for any text, never NaN', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.tuple(fc.nat(), fc.constantFrom('k', 'MiB', 'gbit', 'constructor', '')).map(([n, u]) => `${n}${u}`)), (text) => {
        const rate = parseByteRate(text);
        expect(rate === undefined || rate > 0).toBe(true);
      }),
    );
  });
});
