import bencode from 'bencode';
import { createServer } from 'node:net';
import type { AnnounceQuery } from '../src/query.js';

/** A 20-byte id whose every byte is `n` (so ids above 0x7f exercise binary handling). */
export function id20(n: number): Buffer {
  return Buffer.alloc(20, n);
}

export function announceQuery(overrides: Partial<AnnounceQuery> = {}): AnnounceQuery {
  return {
    infoHash: id20(0xaa),
    peerId: id20(1),
    port: 6881,
    uploaded: 0,
    downloaded: 0,
    left: 1000,
    event: undefined,
    numwant: undefined,
    compact: true,
    noPeerId: false,
    ip: undefined,
    ...overrides,
  };
}

export type Dict = Record<string, unknown>;

export function decodeDict(body: Buffer | Uint8Array): Dict {
  const value = bencode.decode(body);
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new Error('not a bencoded dictionary');
  }
  return value as Dict;
}

export function text(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new Error('not a byte string');
  return Buffer.from(value).toString('utf8');
}

/** `a.b.c.d:port` for each 6-byte compact entry. */
export function compactIpv4(value: unknown): string[] {
  if (!(value instanceof Uint8Array)) throw new Error('peers is not a byte string');
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 6) out.push(`${value.subarray(i, i + 4).join('.')}:${(value[i + 4]! << 8) | value[i + 5]!}`);
  return out;
}

/** Deterministic randomness for tests: a small LCG. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

export class StepClock {
  time = 0;
  now = (): number => this.time;
}

/** The key the bencode package gives a binary dictionary key: UTF-8 text when it decodes cleanly, else hex. */
export function bencodeKey(bytes: Buffer): string {
  const asText = bytes.toString('utf8');
  return asText.includes('\uFFFD') ? bytes.toString('hex') : asText;
}

export function bytes(ascii: string): Uint8Array {
  return new Uint8Array(Buffer.from(ascii, 'latin1'));
}

/** A loopback port nobody listens on. */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
