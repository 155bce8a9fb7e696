import bencode from 'bencode';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrackerCore } from '../src/core.js';
import { percentEncodeBytes } from '../src/query.js';
import { handleTrackerRequest, type TrackerHttpResponse } from '../src/server.js';
import { StepClock, decodeDict, id20, seededRandom, text } from './tracker-fixtures.js';

interface Captured {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

/** Runs the handler on a request that never touched a socket. */
function call(core: TrackerCore, url: string, method = 'GET', remoteAddress = '127.0.0.1', remoteFamily = 'IPv4'): Captured {
  const captured: Captured = { status: 0, headers: {}, body: Buffer.alloc(0) };
  const res: TrackerHttpResponse = {
    statusCode: 0,
    setHeader(name, value) {
      captured.headers[name.toLowerCase()] = value;
    },
    end(body) {
      captured.status = this.statusCode;
      captured.body = Buffer.isBuffer(body) ? body : Buffer.from(body ?? '');
    },
  };
  handleTrackerRequest(core, { method, url, socket: { remoteAddress, remoteFamily } }, res);
  return captured;
}

const newCore = () => new TrackerCore({ clock: new StepClock(), random: seededRandom(1) });
const announceUrl = (extra = '') => `/announce?info_hash=${percentEncodeBytes(id20(0x99))}&peer_id=${percentEncodeBytes(id20(0x01))}&port=6881&left=0${extra}`;

describe('handleTrackerRequest', () => {
  it('answers an announce with a bencoded text/plain body', () => {
    const res = call(newCore(), announceUrl('&compact=1'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.headers['content-length']).toBe(res.body.length);
    expect(decodeDict(res.body)).toMatchObject({ complete: 1, incomplete: 0 });
  });

  it('answers a malformed announce with a failure reason naming the parameter', () => {
    const res = call(newCore(), '/announce?info_hash=short&peer_id=x&port=1');
    expect(res.status).toBe(200);
    expect(text(decodeDict(res.body)['failure reason'])).toBe('info_hash must be 20 bytes, got 5');
    expect(text(decodeDict(call(newCore(), '/announce').body)['failure reason'])).toBe('info_hash is missing');
  });

  it('serves scrape and nothing else', () => {
    const core = newCore();
    call(core, announceUrl());
    const files = decodeDict(call(core, `/scrape?info_hash=${percentEncodeBytes(id20(0x99))}`).body).files as Record<string, unknown>;
    expect(Object.values(files)).toEqual([{ complete: 1, downloaded: 0, incomplete: 0 }]);
    expect(call(core, '/').status).toBe(404);
    expect(call(core, '/announce/x?').status).toBe(404);
    expect(call(core, announceUrl(), 'POST').status).toBe(405);
  });

  it('takes the peer address from the socket, IPv6 included', () => {
    const core = newCore();
    call(core, announceUrl(), 'GET', 'fd00::1', 'IPv6');
    const answer = decodeDict(call(core, announceUrl().replace(percentEncodeBytes(id20(1)), percentEncodeBytes(id20(2))) + '&compact=1').body);
    expect(Buffer.from(answer.peers6 as Uint8Array).subarray(0, 2)).toEqual(Buffer.from([0xfd, 0x00]));
  });

  it('never throws and always answers bencode, whatever the query string', () => {
    const key = fc.constantFrom('info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left', 'event', 'numwant', 'compact', 'no_peer_id', 'ip', '%69p', 'x');
    const value = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 70 }),
      fc.uint8Array({ minLength: 18, maxLength: 22 }).map((b) => percentEncodeBytes(b)),
      fc.integer({ min: -70000, max: 70000 }).map(String),
      fc.constantFrom('started', 'completed', 'stopped', 'empty', '', '1', '0', '%', '%4', '%zz', '::1', '127.0.0.2'),
    );
    const structured = fc.array(fc.tuple(key, value), { maxLength: 12 }).map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
    const query = fc.oneof(structured, fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme-ascii', maxLength: 200 }));
    const path = fc.constantFrom('/announce', '/scrape');
    const remote = fc.constantFrom(['127.0.0.1', 'IPv4'], ['::1', 'IPv6'], ['::ffff:10.0.0.1', 'IPv6'], ['10.1.1.1', 'IPv4']);
    const core = newCore();
    fc.assert(
      fc.property(path, query, remote, (p, q, [address, family]) => {
        const res = call(core, `${p}?${q}`, 'GET', address, family);
        expect(res.status).toBe(200);
        const answer = bencode.decode(res.body) as Record<string, unknown>;
        expect('failure reason' in answer || 'interval' in answer || 'files' in answer).toBe(true);
        // A bug in the tracker would surface as this catch-all instead of a named parameter.
        if ('failure reason' in answer) expect(text(answer['failure reason'])).not.toBe('internal tracker error');
      }),
      { numRuns: 2000 },
    );
  });
});
