import { createHash } from 'node:crypto';
import { encode, type Encodable } from '../../bencode/src/index.js';

export type Dict = Record<string, Encodable | undefined>;

/** Deterministic pseudo-random bytes (xorshift32), so test data is the same on every run. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  const words = Math.floor(length / 4);
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i * 4);
  }
  for (let i = words * 4; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha1(b: Uint8Array): Buffer {
  return createHash('sha1').update(b).digest();
}

/** A valid multi-file torrent as a plain dictionary, for tests to break one field of. */
export function goodTorrent(): { top: Dict; info: Dict; files: Dict[] } {
  const files: Dict[] = [
    { length: 100, path: ['docs', 'readme.txt'] },
    { length: 0, path: ['empty'] },
    { length: 40_000, path: ['bin', 'tool'] },
  ];
  const info: Dict = { files, name: 'release-1.2.3', 'piece length': 16_384, pieces: Buffer.alloc(60, 0xab) };
  const top: Dict = {
    announce: 'http://tracker.test/announce',
    'announce-list': [['http://tracker.test/announce'], ['http://backup.test/announce']],
    comment: 'a comment',
    'created by': 'test',
    'creation date': 1_700_000_000,
    info,
    'url-list': ['http://seed.test/'],
  };
  return { top, info, files };
}

export function torrentOf(top: Dict): Buffer {
  return encode(top);
}
