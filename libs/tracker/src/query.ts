/**
 * Announce and scrape query strings (BEP 3, BEP 23, BEP 48), parsed from the raw URL
 * query. info_hash and peer_id are percent-encoded BINARY: decoding them as UTF-8
 * (decodeURIComponent, URLSearchParams) would corrupt every byte above 0x7f, so the
 * parser turns %XX into bytes itself. It walks the string once, with no regexes.
 */
import { TrackerRequestError } from './errors.js';

export type AnnounceEvent = 'started' | 'completed' | 'stopped' | 'paused';

export interface AnnounceQuery {
  /** 20 bytes. */
  infoHash: Buffer;
  /** 20 bytes. */
  peerId: Buffer;
  port: number;
  uploaded: number;
  downloaded: number;
  /** Bytes still missing; undefined when the client did not say. */
  left: number | undefined;
  /** undefined for a regular announce (no event, or `empty`). */
  event: AnnounceEvent | undefined;
  numwant: number | undefined;
  /** BEP 23: the client accepts the compact peer list. */
  compact: boolean;
  /** The dictionary peer form may leave out `peer id`. */
  noPeerId: boolean;
  /** The address the client claims; the tracker decides whether to believe it. */
  ip: string | undefined;
}

export const HASH_LENGTH = 20;
/** More hashes than this in one scrape is a request nobody needs to make. */
export const MAX_SCRAPE_HASHES = 128;

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

function hexValue(code: number): number {
  return code < 128 ? (HEX[code] as number) : -1;
}

/**
 * Decodes raw[start, end) into bytes: %XX is one byte, `+` is a space (form encoding,
 * as every query-string parser reads it), any other character stands for itself.
 */
function decodeBytes(raw: string, start: number, end: number, parameter: string): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hi = i + 2 < end ? hexValue(raw.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(raw.charCodeAt(i + 2)) : -1;
      if (lo < 0) throw new TrackerRequestError(parameter, 'has a malformed percent-escape');
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else if (c === 0x2b) {
      out[n++] = 0x20;
    } else if (c > 0xff) {
      throw new TrackerRequestError(parameter, 'has a character that is not a byte; percent-encode it');
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/** Text parameters are short and rarely escaped: slice, and decode only when needed. */
function decodeText(raw: string, start: number, end: number, parameter: string): string {
  for (let i = start; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 || c === 0x2b) return decodeBytes(raw, start, end, parameter).toString('latin1');
  }
  return raw.slice(start, end);
}

function decodeHash(raw: string, start: number, end: number, parameter: string): Buffer {
  const bytes = decodeBytes(raw, start, end, parameter);
  if (bytes.length !== HASH_LENGTH) {
    throw new TrackerRequestError(parameter, `must be ${HASH_LENGTH} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** A non-negative decimal integer that fits a double exactly. */
function decodeCount(raw: string, start: number, end: number, parameter: string): number {
  const text = decodeText(raw, start, end, parameter);
  if (text.length === 0) throw new TrackerRequestError(parameter, 'is empty; expected a non-negative integer');
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) {
      if (i === 0 && text.charCodeAt(0) === 0x2d && text.length > 1) {
        throw new TrackerRequestError(parameter, `must not be negative, got ${text}`);
      }
      throw new TrackerRequestError(parameter, `must be a non-negative integer, got ${JSON.stringify(text.slice(0, 32))}`);
    }
    value = value * 10 + d;
  }
  if (!Number.isSafeInteger(value)) throw new TrackerRequestError(parameter, 'is too large');
  return value;
}

function decodeEvent(raw: string, start: number, end: number): AnnounceEvent | undefined {
  const text = decodeText(raw, start, end, 'event');
  switch (text) {
    case '':
    case 'empty':
      return undefined;
    case 'started':
    case 'completed':
    case 'stopped':
    case 'paused':
      return text;
    default:
      throw new TrackerRequestError('event', `must be started, completed, stopped or empty, got ${JSON.stringify(text.slice(0, 32))}`);
  }
}

/**
 * Calls visit(key, valueStart, valueEnd) for each `key=value` of the query. Keys are
 * plain ASCII in every client we know; an escaped key is decoded so it still matches.
 */
function forEachParameter(raw: string, visit: (key: string, start: number, end: number) => void): void {
  let pos = 0;
  const length = raw.length;
  while (pos < length) {
    let amp = raw.indexOf('&', pos);
    if (amp < 0) amp = length;
    if (amp > pos) {
      let eq = raw.indexOf('=', pos);
      if (eq < 0 || eq > amp) eq = amp;
      const key = decodeText(raw, pos, eq, 'parameter name');
      visit(key, eq < amp ? eq + 1 : amp, amp);
    }
    pos = amp + 1;
  }
}

/** Parses the query of `GET /announce?…` (without the `?`). Throws TrackerRequestError. */
export function parseAnnounceQuery(rawQueryString: string): AnnounceQuery {
  const raw = rawQueryString;
  let infoHash: Buffer | undefined;
  let peerId: Buffer | undefined;
  let port: number | undefined;
  let uploaded = 0;
  let downloaded = 0;
  let left: number | undefined;
  let event: AnnounceEvent | undefined;
  let numwant: number | undefined;
  let compact = false;
  let noPeerId = false;
  let ip: string | undefined;
  forEachParameter(raw, (key, start, end) => {
    switch (key) {
      case 'info_hash':
        infoHash = decodeHash(raw, start, end, key);
        break;
      case 'peer_id':
        peerId = decodeHash(raw, start, end, key);
        break;
      case 'port':
        port = decodeCount(raw, start, end, key);
        if (port < 1 || port > 65535) throw new TrackerRequestError(key, `must be 1 to 65535, got ${port}`);
        break;
      case 'uploaded':
        uploaded = decodeCount(raw, start, end, key);
        break;
      case 'downloaded':
        downloaded = decodeCount(raw, start, end, key);
        break;
      case 'left':
        left = decodeCount(raw, start, end, key);
        break;
      case 'numwant':
        numwant = decodeCount(raw, start, end, key);
        break;
      case 'event':
        event = decodeEvent(raw, start, end);
        break;
      case 'compact':
        compact = end - start === 1 && raw.charCodeAt(start) === 0x31;
        break;
      case 'no_peer_id':
        noPeerId = end - start === 1 && raw.charCodeAt(start) === 0x31;
        break;
      case 'ip':
        ip = decodeText(raw, start, end, key);
        break;
      default:
      // key, trackerid, supportcrypto, ipv4, ipv6, corrupt, …: accepted and not needed.
    }
  });
  if (!infoHash) throw new TrackerRequestError('info_hash', 'is missing');
  if (!peerId) throw new TrackerRequestError('peer_id', 'is missing');
  if (port === undefined) throw new TrackerRequestError('port', 'is missing');
  return { infoHash, peerId, port, uploaded, downloaded, left, event, numwant, compact, noPeerId, ip };
}

/** Parses the query of `GET /scrape?…`: every info_hash in it, in order. */
export function parseScrapeQuery(rawQueryString: string): Buffer[] {
  const raw = rawQueryString;
  const hashes: Buffer[] = [];
  forEachParameter(raw, (key, start, end) => {
    if (key !== 'info_hash') return;
    if (hashes.length === MAX_SCRAPE_HASHES) {
      throw new TrackerRequestError(key, `may be given at most ${MAX_SCRAPE_HASHES} times`);
    }
    hashes.push(decodeHash(raw, start, end, key));
  });
  return hashes;
}

/** Percent-encodes bytes for a query: unreserved characters (RFC 3986) stay, the rest become %XX. */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const unreserved =
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    out += unreserved ? String.fromCharCode(b) : `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  }
  return out;
}
