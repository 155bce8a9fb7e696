import { describe, expect, it } from 'vitest';
import { bearerToken, secretsEqual } from '../src/auth.js';

describe('secretsEqual', () => {
  it('matches only the very same secret, of any length, and never an empty expected one', () => {
    const t = 'a-token-0123456789abcdef';
    expect(secretsEqual(t, t)).toBe(true);
    expect(secretsEqual(`${t}x`, t)).toBe(false);
    expect(secretsEqual(t.slice(0, -1), t)).toBe(false);
    expect(secretsEqual(t.toUpperCase(), t)).toBe(false);
    expect(secretsEqual('', t)).toBe(false);
    expect(secretsEqual('x'.repeat(100_000), t)).toBe(false);
    // A controller with no token configured must not let an empty one in.
    expect(secretsEqual('', '')).toBe(false);
  });
});

describe('bearerToken', () => {
  it('takes the token of a Bearer header and nothing else', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc  ')).toBe('abc');
    expect(bearerToken('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(['Bearer abc'])).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
