import type { Metainfo } from './metainfo.js';

export interface MagnetLink {
  infoHash: Buffer;
  name?: string;
  trackers: string[];
  webSeeds: string[];
}

export type MagnetErrorCode = 'not-magnet' | 'missing-info-hash' | 'bad-info-hash' | 'conflicting-info-hash';

export class MagnetError extends Error {
  override name = 'MagnetError';

  constructor(
    readonly code: MagnetErrorCode,
    detail: string,
  ) {
    super(`invalid magnet link: ${detail}`);
  }
}

/**
 * A BEP 9 magnet link: `xt=urn:btih:<hex>`, then `dn` (name), `xl` (total bytes), one
 * `tr` per tracker in tier order and one `ws` per web seed (BEP 19).
 */
export function toMagnet(m: Metainfo): string {
  const parts = [`xt=urn:btih:${m.infoHashHex}`, `dn=${encodeURIComponent(m.name)}`, `xl=${m.length}`];
  for (const tracker of trackersOf(m)) parts.push(`tr=${encodeURIComponent(tracker)}`);
  for (const url of m.urlList) parts.push(`ws=${encodeURIComponent(url)}`);
  return `magnet:?${parts.join('&')}`;
}

/** Every tracker once, announce-list tiers first (BEP 12 says they replace `announce`). */
export function trackersOf(m: Metainfo): string[] {
  const all = m.announceList.length > 0 ? m.announceList.flat() : m.announce ? [m.announce] : [];
  return [...new Set(all)];
}

/**
 * Reads a magnet link's v1 info hash (40 hex digits or 32 base32 characters), name,
 * trackers and web seeds. Indexed keys (`tr.1=`) count as their base key, '+' means a
 * space as in any query string, and other parameters are ignored.
 */
export function parseMagnet(uri: string): MagnetLink {
  if (!/^magnet:\?/i.test(uri)) throw new MagnetError('not-magnet', "does not start with 'magnet:?'");
  const params = new URLSearchParams(uri.slice('magnet:?'.length));
  let infoHash: Buffer | undefined;
  let name: string | undefined;
  let sawV2 = false;
  const trackers: string[] = [];
  const webSeeds: string[] = [];
  for (const [rawKey, value] of params) {
    const key = rawKey.replace(/\.\d+$/, '');
    if (key === 'xt') {
      const lower = value.toLowerCase();
      if (lower.startsWith('urn:btmh:')) {
        sawV2 = true;
        continue;
      }
      if (!lower.startsWith('urn:btih:')) continue;
      const hash = decodeInfoHash(value.slice('urn:btih:'.length));
      if (infoHash && !infoHash.equals(hash)) throw new MagnetError('conflicting-info-hash', `two different info hashes: ${infoHash.toString('hex')} and ${hash.toString('hex')}`);
      infoHash = hash;
    } else if (key === 'dn') {
      name ??= value;
    } else if (key === 'tr') {
      if (value && !trackers.includes(value)) trackers.push(value);
    } else if (key === 'ws') {
      if (value && !webSeeds.includes(value)) webSeeds.push(value);
    }
  }
  if (!infoHash) {
    throw new MagnetError('missing-info-hash', sawV2 ? 'only a v2 info hash (urn:btmh), which is not supported' : "no 'xt=urn:btih:' parameter");
  }
  const link: MagnetLink = { infoHash, trackers, webSeeds };
  if (name !== undefined) link.name = name;
  return link;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function decodeInfoHash(s: string): Buffer {
  if (/^[0-9a-fA-F]{40}$/.test(s)) return Buffer.from(s, 'hex');
  if (/^[A-Za-z2-7]{32}$/.test(s)) {
    const out = Buffer.alloc(20);
    let bits = 0;
    let acc = 0;
    let o = 0;
    for (const ch of s.toUpperCase()) {
      acc = (acc << 5) | BASE32.indexOf(ch);
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        out[o++] = (acc >>> bits) & 0xff;
      }
    }
    return out;
  }
  throw new MagnetError('bad-info-hash', `'${s}' is neither 40 hex digits nor 32 base32 characters`);
}
