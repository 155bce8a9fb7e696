import { readFile } from 'node:fs/promises';
import { BYTE_RATE_EXAMPLES, parseByteRate } from '../../../libs/contracts/src/rate.js';
import { parseTorrent } from '../../../libs/metainfo/src/parse.js';
import type { Metainfo } from '../../../libs/metainfo/src/metainfo.js';
import type { PeerAddress } from '../../../libs/engine/src/peer-book.js';
import { InputError, UsageError } from './command.js';

/** Reads and validates a .torrent; any fault is one line naming it (exit 2). */
export async function loadTorrentFile(path: string): Promise<{ metainfo: Metainfo; bytes: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return { metainfo: parseTorrent(bytes), bytes };
  } catch (err) {
    throw new InputError(`${path}: ${(err as Error).message}`);
  }
}

/** `host:port` or `[v6]:port`, as given to --peer. */
export function parsePeerAddress(text: string): PeerAddress {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new UsageError(`--peer ${text}: expected host:port or [ipv6]:port`);
  return { host: m[1]!, port };
}

export function parsePeers(values: unknown): PeerAddress[] {
  const list = Array.isArray(values) ? values : values === undefined ? [] : [values];
  return list.map((v) => parsePeerAddress(String(v)));
}

export function parsePort(text: unknown, flag = '--port'): number {
  if (text === undefined) return 0;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${flag} ${String(text)}: expected a port number 0-65535`);
  return port;
}

/** A rate in bytes per second as every command spells it (see parseByteRate); absent means unlimited. */
export function parseRate(text: unknown, flag: string): number {
  if (text === undefined) return Infinity;
  const rate = parseByteRate(String(text));
  if (rate === undefined) throw new UsageError(`${flag} ${String(text)}: expected a rate per second such as ${BYTE_RATE_EXAMPLES}`);
  return rate;
}

/** --unchoke-slots: how many peers we upload to at once. */
export function parseSlots(text: unknown): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--unchoke-slots ${String(text)}: expected a whole number from 1 to 1000`);
  return n;
}
