/**
 * libs/tracker: announce and scrape query strings through `parseAnnounceQuery` /
 * `parseScrapeQuery`, then `TrackerCore` and the HTTP adapter `handleTrackerRequest`.
 *
 * A query is refused with a TrackerRequestError or parsed into fields within range;
 * the core never throws and every answer, refusal or not, is canonical bencode of the
 * right shape. The trackers live across the whole run with a clock that moves, so
 * their peer stores fill up and expire as a real one's do (the heap check sees that).
 */
import fc from 'fast-check';
import { decodeStrict, type BencodeDict } from '../../../libs/bencode/src/index.js';
import { seededRandom } from '../../../libs/engine/src/clock.js';
import {
  MAX_NUMWANT,
  MAX_SCRAPE_HASHES,
  TrackerCore,
  TrackerRequestError,
  handleTrackerRequest,
  parseAnnounceQuery,
  parseScrapeQuery,
  percentEncodeBytes,
  type AnnounceQuery,
  type RemoteAddress,
} from '../../../libs/tracker/src/index.js';
import { anyText, AWKWARD_NUMBERS, mutatedText } from '../mutate.js';
import { check, expectTyped, violation, type FuzzTarget, type Outcome } from '../runner.js';

/** A few swarms, so announces meet each other and the stores hold real peer lists. */
const HASHES = Array.from({ length: 6 }, (_, i) => Buffer.alloc(20, i * 37 + 1));
const hash = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...HASHES) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)) });
const peerId = fc.oneof(fc.integer({ min: 0, max: 40 }).map((i) => Buffer.from(`-SW0001-${String(i).padStart(12, '0')}`)), fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)));
const count = fc.oneof(fc.nat(), fc.maxSafeInteger().map(Math.abs), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER));

const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('127.0.0.1', '127.0.0.2', '::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1', 'fe80::1%eth0', '::', '0.0.0.0', '1::2:3.4.5.6', 'tracker.test', '', '300.1.1.1'),
);

const remote: fc.Arbitrary<RemoteAddress> = fc.oneof(
  fc.ipV4().map((a): RemoteAddress => ({ address: a, family: 4 })),
  fc.ipV6().map((a): RemoteAddress => ({ address: a, family: 6 })),
  fc.constantFrom<RemoteAddress>({ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }, { address: '::ffff:127.0.0.1', family: 6 }, { address: '::ffff:192.0.2.7', family: 6 }),
);

interface AnnounceFields {
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  uploaded: number | undefined;
  downloaded: number | undefined;
  left: number | undefined;
  event: string | undefined;
  numwant: number | undefined;
  compact: boolean | undefined;
  noPeerId: boolean | undefined;
  ip: string | undefined;
  extra: [string, string][];
}

const announceFields: fc.Arbitrary<AnnounceFields> = fc.record({
  infoHash: hash,
  peerId,
  port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(1, 6881, 65535)),
  uploaded: fc.option(count, { nil: undefined }),
  downloaded: fc.option(count, { nil: undefined }),
  left: fc.option(fc.oneof(fc.constant(0), count), { nil: undefined }),
  event: fc.option(fc.constantFrom('started', 'completed', 'stopped', 'paused', 'empty', ''), { nil: undefined }),
  numwant: fc.option(fc.oneof(fc.integer({ min: 0, max: 300 }), count), { nil: undefined }),
  compact: fc.option(fc.boolean(), { nil: undefined }),
  noPeerId: fc.option(fc.boolean(), { nil: undefined }),
  ip: fc.option(address, { nil: undefined }),
  extra: fc.array(fc.tuple(fc.constantFrom('key', 'trackerid', 'supportcrypto', 'corrupt', 'x', ''), fc.string({ maxLength: 8 })), { maxLength: 2 }),
});

/** Percent-encodes every byte, or only those that need it, as different clients do. */
function escapeBytes(b: Buffer, all: boolean): string {
  if (!all) return percentEncodeBytes(b);
  let s = '';
  for (const c of b) s += `%${c.toString(16).padStart(2, '0')}`;
  return s;
}

function announceQueryText(f: AnnounceFields, escapeAll: boolean, order: number[]): string {
  const params: string[] = [`info_hash=${escapeBytes(f.infoHash, escapeAll)}`, `peer_id=${escapeBytes(f.peerId, escapeAll)}`, `port=${f.port}`];
  if (f.uploaded !== undefined) params.push(`uploaded=${f.uploaded}`);
  if (f.downloaded !== undefined) params.push(`downloaded=${f.downloaded}`);
  if (f.left !== undefined) params.push(`left=${f.left}`);
  if (f.event !== undefined) params.push(`event=${f.event}`);
  if (f.numwant !== undefined) params.push(`numwant=${f.numwant}`);
  if (f.compact !== undefined) params.push(`compact=${f.compact ? 1 : 0}`);
  if (f.noPeerId !== undefined) params.push(`no_peer_id=${f.noPeerId ? 1 : 0}`);
  if (f.ip !== undefined) params.push(`ip=${encodeURIComponent(f.ip)}`);
  for (const [k, v] of f.extra) params.push(`${k}=${encodeURIComponent(v)}`);
  // A fixed permutation drawn by the generator: parameter order must not matter.
  for (let i = params.length - 1; i > 0; i--) {
    const j = order[i % order.length]! % (i + 1);
    [params[i], params[j]] = [params[j]!, params[i]!];
  }
  return params.join('&');
}

const QUERY_TOKENS = [
  '&', '=', '&&', '==', '%', '%2', '%zz', '%00', '%ff', '%FF', '+', '%2B', '%26', '%3D', 'info_hash=', 'peer_id=', 'port=', 'port=0', 'port=65536',
  'port=-1', 'event=stopped', 'event=completed', 'event=bogus', 'left=0', 'left=-0', 'numwant=', 'numwant=99999', 'compact=1', 'no_peer_id=1',
  'ip=', 'ip=::1', 'ip=127.0.0.5', 'ip=::ffff:1.2.3.4', 'ip=fe80::1%25eth0', 'ip=%ff%fe', 'uploaded=1e5', '\u0100', '\ud800', '%E2%82%AC',
  `info_hash=${'%ab'.repeat(20)}`, `info_hash=${'a'.repeat(20)}`, `info_hash=${'%ab'.repeat(19)}`, ...AWKWARD_NUMBERS.slice(0, 8),
];

type AnnounceInput = { query: string; fields?: AnnounceFields; remote: RemoteAddress; tracker: number; advanceMs: number; method: string; path: string };

const validAnnounce = fc
  .record({ fields: announceFields, escapeAll: fc.boolean(), order: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) })
  .map(({ fields, escapeAll, order }) => ({ query: announceQueryText(fields, escapeAll, order), fields }));

const announceQuery: fc.Arbitrary<{ query: string; fields?: AnnounceFields }> = fc.oneof(
  { weight: 2, arbitrary: validAnnounce },
  { weight: 6, arbitrary: mutatedText(validAnnounce.map((v) => v.query), QUERY_TOKENS).map((query) => ({ query })) },
  { weight: 1, arbitrary: anyText({ maxLength: 80 }).map((query) => ({ query })) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...QUERY_TOKENS), { maxLength: 12 }).map((t) => ({ query: t.join('') })) },
);

const httpRoute = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ method: 'GET', path: '/announce' }) },
  { weight: 1, arbitrary: fc.record({ method: fc.constantFrom('GET', 'POST', 'HEAD', ''), path: fc.constantFrom('/announce', '/scrape', '/', '', '/announce/', '/ANNOUNCE', '/x?y') }) },
);

const announceInput: fc.Arbitrary<AnnounceInput> = fc
  .record({ q: announceQuery, remote, tracker: fc.nat({ max: 3 }), advanceMs: fc.oneof(fc.constant(0), fc.nat({ max: 5000 }), fc.constant(200_000)), route: httpRoute })
  .map(({ q, remote, tracker, advanceMs, route }) => ({ ...q, remote, tracker, advanceMs, ...route }));

/** Four trackers that see every case: public and private, each way of trusting `ip`. */
function trackers(): { cores: TrackerCore[]; clock: { t: number; now(): number } } {
  const clock = { t: 0, now: () => clock.t };
  const random = seededRandom(7);
  const cores = [
    new TrackerCore({ clock, random, trustIp: 'always' }),
    new TrackerCore({ clock, random, trustIp: 'loopback', interval: 30 }),
    new TrackerCore({ clock, random, trustIp: 'never', allow: HASHES.slice(0, 3) }),
    new TrackerCore({ clock, random, trustIp: 'loopback', allow: [] }),
  ];
  return { cores, clock };
}

function checkQuery(q: AnnounceQuery): void {
  check(q.infoHash.length === 20 && q.peerId.length === 20, 'info_hash or peer_id not 20 bytes');
  check(Number.isInteger(q.port) && q.port >= 1 && q.port <= 65535, `port ${q.port}`);
  for (const [name, v] of [['uploaded', q.uploaded], ['downloaded', q.downloaded], ['left', q.left], ['numwant', q.numwant]] as const) {
    check(v === undefined || (Number.isSafeInteger(v) && v >= 0), `${name} ${v}`);
  }
  check(q.event === undefined || ['started', 'completed', 'stopped', 'paused'].includes(q.event), `event ${q.event}`);
}

function checkFields(q: AnnounceQuery, f: AnnounceFields): void {
  check(q.infoHash.equals(f.infoHash) && q.peerId.equals(f.peerId) && q.port === f.port, 'info_hash, peer_id or port differ from the query written');
  check(q.uploaded === (f.uploaded ?? 0) && q.downloaded === (f.downloaded ?? 0) && q.left === f.left && q.numwant === f.numwant, 'counts differ');
  check(q.event === (f.event === 'empty' || f.event === '' ? undefined : f.event), 'event differs');
  check(q.compact === (f.compact === true) && q.noPeerId === (f.noPeerId === true), 'compact or no_peer_id differ');
  check(q.ip === f.ip, `ip ${q.ip} differs from ${f.ip}`);
}

/** An answer is canonical bencode: a failure reason, or the fields of its kind. */
function checkAnswer(body: Buffer, kind: 'announce' | 'scrape', query?: AnnounceQuery): 'failure' | 'ok' {
  let d: unknown;
  try {
    d = decodeStrict(body);
  } catch (err) {
    violation(`the tracker answered with bytes that are not canonical bencode: ${(err as Error).message}: ${body.toString('latin1').slice(0, 120)}`);
  }
  check(typeof d === 'object' && d !== null && !Array.isArray(d) && !Buffer.isBuffer(d), 'answer is not a dictionary');
  const dict = d as BencodeDict;
  if (dict['failure reason'] !== undefined) {
    check(Buffer.isBuffer(dict['failure reason']), 'failure reason is not a string');
    // The HTTP adapter's catch-all for an exception that escaped the parser or the core.
    check(dict['failure reason'].toString() !== 'internal tracker error', 'internal tracker error');
    return 'failure';
  }
  if (kind === 'scrape') {
    const files = dict['files'];
    check(typeof files === 'object' && files !== null && !Array.isArray(files) && !Buffer.isBuffer(files), 'files is not a dictionary');
    for (const [key, v] of Object.entries(files as BencodeDict)) {
      check(key.length === 20, 'scrape key is not 20 bytes');
      const c = v as BencodeDict;
      for (const f of ['complete', 'downloaded', 'incomplete']) check(Number.isSafeInteger(c[f]) && (c[f] as number) >= 0, `files.${f}`);
    }
    return 'ok';
  }
  for (const f of ['interval', 'min interval', 'complete', 'incomplete']) check(Number.isSafeInteger(dict[f]) && (dict[f] as number) >= 0, `${f} missing or negative`);
  const want = Math.min(query?.numwant ?? 50, MAX_NUMWANT);
  const peers = dict['peers'];
  let n = 0;
  if (Buffer.isBuffer(peers)) {
    check(peers.length % 6 === 0, 'compact peers not a multiple of 6 bytes');
    n += peers.length / 6;
    const peers6 = dict['peers6'];
    if (peers6 !== undefined) {
      check(Buffer.isBuffer(peers6) && peers6.length % 18 === 0, 'peers6 not a multiple of 18 bytes');
      n += peers6.length / 18;
    }
  } else {
    check(Array.isArray(peers), 'peers is neither a string nor a list');
    for (const p of peers) {
      const pd = p as BencodeDict;
      check(Buffer.isBuffer(pd['ip']) && Number.isInteger(pd['port']), 'a peer without ip or port');
      check(query?.noPeerId ? pd['peer id'] === undefined : Buffer.isBuffer(pd['peer id']) && pd['peer id'].length === 20, 'peer id present when it should not be, or not 20 bytes');
    }
    n = peers.length;
  }
  check(n <= want, `${n} peers answered, ${want} wanted`);
  return 'ok';
}

/** Runs the query through the HTTP adapter as a server would. */
function viaHttp(core: TrackerCore, method: string, path: string, query: string, remote: RemoteAddress): { status: number; body: Buffer } {
  const res = {
    statusCode: 0,
    body: Buffer.alloc(0) as Buffer,
    setHeader: () => undefined,
    end(b?: Buffer | string) {
      res.body = typeof b === 'string' ? Buffer.from(b) : (b ?? Buffer.alloc(0));
    },
  };
  try {
    handleTrackerRequest(core, { method, url: `${path}?${query}`, socket: { remoteAddress: remote.address, remoteFamily: remote.family === 6 ? 'IPv6' : 'IPv4' } }, res);
  } catch (err) {
    violation(`handleTrackerRequest threw ${(err as Error).name}: ${(err as Error).message}`, err);
  }
  return { status: res.statusCode, body: res.body };
}

function announceInstance() {
  const { cores, clock } = trackers();
  return {
    check(input: AnnounceInput): Outcome {
      clock.t += input.advanceMs;
      const core = cores[input.tracker % cores.length]!;
      const parsed = expectTyped(() => parseAnnounceQuery(input.query), TrackerRequestError);
      const http = viaHttp(core, input.method, input.path, input.query, input.remote);
      check([200, 404, 405].includes(http.status), `HTTP status ${http.status}`);
      const httpKind = checkAnswer(http.body, input.path === '/scrape' ? 'scrape' : 'announce', 'value' in parsed ? parsed.value : undefined);
      if ('rejected' in parsed) {
        check(input.fields === undefined, () => `a valid announce was refused: ${parsed.message}`);
        check(input.path !== '/announce' || input.method !== 'GET' || httpKind === 'failure', 'the HTTP adapter accepted a query the parser refuses');
        return parsed.rejected;
      }
      checkQuery(parsed.value);
      if (input.fields) checkFields(parsed.value, input.fields);
      let body: Buffer;
      try {
        body = core.announce(parsed.value, input.remote);
      } catch (err) {
        violation(`TrackerCore.announce threw ${(err as Error).name}: ${(err as Error).message}`, err);
      }
      return checkAnswer(body, 'announce', parsed.value) === 'failure' ? { rejected: 'failure reason' } : 'accepted';
    },
  };
}

export const announceTarget: FuzzTarget<AnnounceInput> = {
  name: 'tracker-announce',
  about: 'parseAnnounceQuery, TrackerCore.announce, handleTrackerRequest',
  arbitrary: announceInput,
  setup: announceInstance,
};

// ---- scrape ----------------------------------------------------------------------------

type ScrapeInput = { query: string; hashes?: Buffer[]; announce?: { fields: AnnounceFields; remote: RemoteAddress }; tracker: number; advanceMs: number };

const validScrape = fc
  .record({ hashes: fc.array(hash, { maxLength: 8 }), escapeAll: fc.boolean(), extra: fc.array(fc.constantFrom('x=1', 'info_hashes=2', 'key=abc'), { maxLength: 2 }) })
  .map(({ hashes, escapeAll, extra }) => ({ query: [...hashes.map((h) => `info_hash=${escapeBytes(h, escapeAll)}`), ...extra].join('&'), hashes }));

const scrapeQuery: fc.Arbitrary<{ query: string; hashes?: Buffer[] }> = fc.oneof(
  { weight: 2, arbitrary: validScrape },
  { weight: 6, arbitrary: mutatedText(validScrape.map((v) => v.query), QUERY_TOKENS).map((query) => ({ query })) },
  { weight: 1, arbitrary: fc.integer({ min: 120, max: 140 }).map((n) => ({ query: Array.from({ length: n }, (_, i) => `info_hash=${escapeBytes(Buffer.alloc(20, i), false)}`).join('&') })) },
  { weight: 1, arbitrary: anyText({ maxLength: 80 }).map((query) => ({ query })) },
);

const scrapeInput: fc.Arbitrary<ScrapeInput> = fc
  .record({
    q: scrapeQuery,
    announce: fc.option(fc.record({ fields: announceFields, remote }), { nil: undefined }),
    tracker: fc.nat({ max: 3 }),
    advanceMs: fc.oneof(fc.constant(0), fc.nat({ max: 5000 })),
  })
  .map(({ q, announce, tracker, advanceMs }) => ({ ...q, announce, tracker, advanceMs }));

function scrapeInstance() {
  const { cores, clock } = trackers();
  return {
    check(input: ScrapeInput): Outcome {
      clock.t += input.advanceMs;
      const core = cores[input.tracker % cores.length]!;
      if (input.announce) {
        // Peers in the swarms, so scrapes count something.
        const q = parseAnnounceQuery(announceQueryText(input.announce.fields, false, [0]));
        core.announce(q, input.announce.remote);
      }
      const http = viaHttp(core, 'GET', '/scrape', input.query, input.announce?.remote ?? { address: '10.0.0.1', family: 4 });
      check(http.status === 200, `HTTP status ${http.status}`);
      checkAnswer(http.body, 'scrape');
      const parsed = expectTyped(() => parseScrapeQuery(input.query), TrackerRequestError);
      if ('rejected' in parsed) {
        check(input.hashes === undefined, () => `a valid scrape was refused: ${parsed.message}`);
        return parsed.rejected;
      }
      const hashes = parsed.value;
      check(hashes.length <= MAX_SCRAPE_HASHES && hashes.every((h) => h.length === 20), 'scrape hashes');
      if (input.hashes) check(hashes.length === input.hashes.length && hashes.every((h, i) => h.equals(input.hashes![i]!)), 'scrape hashes differ from the query written');
      let body: Buffer;
      try {
        body = core.scrape(hashes);
      } catch (err) {
        violation(`TrackerCore.scrape threw ${(err as Error).name}: ${(err as Error).message}`, err);
      }
      return checkAnswer(body, 'scrape') === 'failure' ? { rejected: 'failure reason' } : 'accepted';
    },
  };
}

export const scrapeTarget: FuzzTarget<ScrapeInput> = {
  name: 'tracker-scrape',
  about: 'parseScrapeQuery, TrackerCore.scrape, handleTrackerRequest',
  arbitrary: scrapeInput,
  setup: scrapeInstance,
};
