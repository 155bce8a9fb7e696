/**
 * Peer addresses in the two forms a tracker speaks: text (`10.0.0.7`, `fd00::7`) and
 * compact bytes (BEP 23: 4-byte IPv4 + 2-byte port; BEP 7: 16-byte IPv6 + 2-byte port).
 */
import { isIPv4, isIPv6 } from 'node:net';

export type AddressFamily = 4 | 6;

export interface PeerAddress {
  address: string;
  family: AddressFamily;
}

const MAPPED_PREFIX = '::ffff:';

/**
 * A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`; they are IPv4 peers and
 * belong in `peers`, not `peers6`. Returns undefined for text that is no IP literal.
 */
export function normalizeAddress(address: string): PeerAddress | undefined {
  if (isIPv4(address)) return { address, family: 4 };
  if (!isIPv6(address)) return undefined;
  const lower = address.toLowerCase();
  if (lower.startsWith(MAPPED_PREFIX)) {
    const v4 = lower.slice(MAPPED_PREFIX.length);
    if (isIPv4(v4)) return { address: v4, family: 4 };
  }
  return { address: lower, family: 6 };
}

export function isLoopback(peer: PeerAddress): boolean {
  return peer.family === 4 ? peer.address.startsWith('127.') : peer.address === '::1';
}

/**
 * 6 or 18 bytes, the address then the port, both big-endian, as a binary (latin1)
 * string: a tracker keeps one per peer for as long as the peer lives, and a short
 * string costs a few dozen bytes where even a small Buffer pins a shared 8 KiB slab.
 */
export function compactPeer(peer: PeerAddress, port: number): string {
  const portChars = String.fromCharCode(port >> 8, port & 0xff);
  if (peer.family === 6) return ipv6Bytes(peer.address).toString('latin1') + portChars;
  const text = peer.address;
  const octets = [0, 0, 0, 0];
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) at++;
    else octets[at] = (octets[at] as number) * 10 + (c - 0x30);
  }
  return String.fromCharCode(octets[0] as number, octets[1] as number, octets[2] as number, octets[3] as number) + portChars;
}

/** The 16 bytes of an IPv6 literal already checked by isIPv6 (`::`, embedded IPv4 and all). */
export function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  const gap = bare.indexOf('::');
  const head = gap >= 0 ? bare.slice(0, gap) : bare;
  const tail = gap >= 0 ? bare.slice(gap + 2) : '';
  const words = (part: string): number[] => {
    if (part === '') return [];
    const result: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
        result.push((a << 8) | b, (c << 8) | d);
      } else {
        result.push(parseInt(group, 16));
      }
    }
    return result;
  };
  const front = words(head);
  const back = words(tail);
  front.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  back.forEach((w, i) => out.writeUInt16BE(w, 16 - (back.length - i) * 2));
  return out;
}

/** RFC 5952 text for 16 bytes: lower case, the longest run of two or more zero words as `::`. */
export function formatIpv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}
