import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrackerRequestError } from '../src/errors.js';
import { parseAnnounceQuery, parseScrapeQuery, percentEncodeBytes } from '../src/query.js';

const HASH = Buffer.from('00112233445566778899aabbccddeeff80fe7f41', 'hex');
const PEER = Buffer.from('-SS0100-', 'latin1');
const PEER_ID = Buffer.concat([PEER, Buffer.from('c0ffee00ffd8a1b2c3d4e5f6', 'hex').subarray(0, 12)]);
const valid = `info_hash=${percentEncodeBytes(HASH)}&peer_id=${percentEncodeBytes(PEER_ID)}&port=6881&uploaded=1&downloaded=2&left=3`;

function errorOf(query: string): TrackerRequestError {
  try {
    parseAnnounceQuery(query);
  } catch (err) {
    if (err instanceof TrackerRequestError) return err;
    throw err;
  }
  throw new Error(`expected ${query} to be refused`);
}

describe('parseAnnounceQuery', () => {
  it('decodes percent-encoded binary hashes byte for byte, never as UTF-8', () => {
    const q = parseAnnounceQuery(`${valid}&event=started&numwant=80&compact=1&no_peer_id=1&key=abc&ip=10.0.0.9`);
    expect(q.infoHash).toEqual(HASH);
    expect(q.peerId).toEqual(PEER_ID);
    expect(q).toMatchObject({ port: 6881, uploaded: 1, downloaded: 2, left: 3, event: 'started', numwant: 80, compact: true, noPeerId: true, ip: '10.0.0.9' });
  });

  it('accepts lower-case escapes, bare unreserved bytes and + as a space', () => {
    // What a client that escapes only what it must sends for the same bytes.
    const hash = Buffer.from('ab+cd~-._0123456789xy', 'latin1').subarray(0, 20);
    const raw = `info_hash=ab%2bcd~-._0123456789x&peer_id=${'%ff'.repeat(10)}+++++++++%20&port=1`;
    const q = parseAnnounceQuery(raw);
    expect(q.infoHash).toEqual(hash);
    expect(q.peerId).toEqual(Buffer.concat([Buffer.alloc(10, 0xff), Buffer.alloc(10, 0x20)]));
  });

  it('round-trips any 20 bytes through percentEncodeBytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), (hash, peer) => {
        const q = parseAnnounceQuery(`info_hash=${percentEncodeBytes(hash)}&peer_id=${percentEncodeBytes(peer)}&port=1`);
        expect(q.infoHash).toEqual(Buffer.from(hash));
        expect(q.peerId).toEqual(Buffer.from(peer));
      }),
    );
  });

  it('treats event=empty and a missing event alike, and defaults what clients may omit', () => {
    const q = parseAnnounceQuery(`${valid.replace('&uploaded=1&downloaded=2&left=3', '')}&event=empty`);
    expect(q).toMatchObject({ event: undefined, uploaded: 0, downloaded: 0, left: undefined, numwant: undefined, compact: false, noPeerId: false });
  });

  it.each([
    ['info_hash', valid.replace(/info_hash=[^&]*&/, ''), /info_hash is missing/],
    ['info_hash', valid.replace(/info_hash=[^&]*/, `info_hash=${'%01'.repeat(19)}`), /info_hash must be 20 bytes, got 19/],
    ['info_hash', valid.replace(/info_hash=[^&]*/, `info_hash=${'%01'.repeat(21)}`), /must be 20 bytes, got 21/],
    ['info_hash', valid.replace(/info_hash=[^&]*/, `info_hash=${'%01'.repeat(19)}%g1`), /malformed percent-escape/],
    ['info_hash', valid.replace(/info_hash=[^&]*/, `info_hash=${'%01'.repeat(19)}%`), /malformed percent-escape/],
    ['peer_id', valid.replace(/peer_id=[^&]*&/, ''), /peer_id is missing/],
    ['peer_id', valid.replace(/peer_id=[^&]*/, 'peer_id=short'), /peer_id must be 20 bytes, got 5/],
    ['port', valid.replace('port=6881', 'port=0'), /port must be 1 to 65535, got 0/],
    ['port', valid.replace('port=6881', 'port=65536'), /port must be 1 to 65535/],
    ['port', valid.replace('port=6881', 'port=http'), /port must be a non-negative integer/],
    ['port', valid.replace('port=6881&', ''), /port is missing/],
    ['uploaded', valid.replace('uploaded=1', 'uploaded=-1'), /uploaded must not be negative/],
    ['downloaded', valid.replace('downloaded=2', 'downloaded=1.5'), /downloaded must be a non-negative integer/],
    ['left', valid.replace('left=3', 'left=-3'), /left must not be negative/],
    ['left', valid.replace('left=3', 'left=99999999999999999999'), /left is too large/],
    ['numwant', `${valid}&numwant=-1`, /numwant must not be negative/],
    ['numwant', `${valid}&numwant=`, /numwant is empty/],
    ['event', `${valid}&event=finished`, /event must be started, completed, stopped or empty/],
  ])('refuses a bad %s and names it', (parameter, query, message) => {
    const err = errorOf(query);
    expect(err.parameter).toBe(parameter);
    expect(err.message).toMatch(message);
  });
});

describe('parseScrapeQuery', () => {
  it('collects every info_hash in order', () => {
    const other = Buffer.alloc(20, 0x80);
    expect(parseScrapeQuery(`info_hash=${percentEncodeBytes(HASH)}&x=1&info_hash=${percentEncodeBytes(other)}`)).toEqual([HASH, other]);
    expect(parseScrapeQuery('')).toEqual([]);
  });

  it('refuses a short hash and an unbounded list', () => {
    expect(() => parseScrapeQuery('info_hash=abc')).toThrow(/info_hash must be 20 bytes/);
    expect(() => parseScrapeQuery(Array.from({ length: 129 }, () => `info_hash=${percentEncodeBytes(HASH)}`).join('&'))).toThrow(/at most 128/);
  });
});
