import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compactPeer, formatIpv6, ipv6Bytes, normalizeAddress } from '../src/address.js';

describe('peer addresses', () => {
  it('packs IPv4 and IPv6 peers into compact bytes (BEP 23, BEP 7)', () => {
    expect(Buffer.from(compactPeer({ address: '10.200.3.255', family: 4 }, 0x1ae1), 'latin1')).toEqual(Buffer.from([10, 200, 3, 255, 0x1a, 0xe1]));
    const v6 = Buffer.from(compactPeer({ address: '2001:db8::ffff:1.2.3.4', family: 6 }, 443), 'latin1');
    expect(v6.toString('hex')).toBe('20010db8000000000000ffff0102030401bb');
  });

  it('treats v4-mapped addresses as IPv4 and refuses what is no IP literal', () => {
    expect(normalizeAddress('::FFFF:192.0.2.1')).toEqual({ address: '192.0.2.1', family: 4 });
    expect(normalizeAddress('FD00::1')).toEqual({ address: 'fd00::1', family: 6 });
    expect(normalizeAddress('tracker.example')).toBeUndefined();
  });

  it('formats any 16 bytes as an IPv6 literal that parses back to them', () => {
    expect(formatIpv6(ipv6Bytes('fd00:0:0:1::'))).toBe('fd00:0:0:1::');
    expect(formatIpv6(ipv6Bytes('1:0:2:0:3:0:4:0'))).toBe('1:0:2:0:3:0:4:0');
    const words = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(words, (ws) => {
        const bytes = Buffer.alloc(16);
        ws.forEach((w, i) => bytes.writeUInt16BE(w, i * 2));
        const text = formatIpv6(bytes);
        expect(isIPv6(text)).toBe(true);
        expect(ipv6Bytes(text)).toEqual(bytes);
      }),
    );
  });
});
