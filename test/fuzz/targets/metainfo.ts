/**
 * libs/metainfo: `parseTorrent` on torrents broken at the byte level and at the field
 * level (a key dropped, a value of another type, a length that overflows, a path that
 * climbs out), and `parseMagnet` on mangled magnet links.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { BencodeError, decodeStrict, encode, type Encodable } from '../../../libs/bencode/src/index.js';
import { MagnetError, MetainfoError, parseMagnet, parseTorrent, toMagnet, trackersOf, unsafePathElement, type Metainfo } from '../../../libs/metainfo/src/index.js';
import { anyText, AWKWARD_NUMBERS, isDict, mutatedBytes, mutatedText, mutatedTree, PROTOTYPE_KEYS, type Tree } from '../mutate.js';
import { check, expectTyped, type FuzzTarget, type Outcome } from '../runner.js';
import { BENCODE_TOKENS, bencodeValue } from './bencode.js';

export interface TorrentSpec {
  name: string;
  pieceLength: number;
  single: boolean;
  files: { path: string[]; length: number; pad: boolean }[];
  private: 0 | 1 | undefined;
  announce: string | undefined;
  announceList: string[][] | undefined;
  urlList: string[] | string | undefined;
  comment: string | undefined;
  creationDate: number | undefined;
}

const pathElement = fc.oneof(
  fc.constantFrom('a', 'b', 'bin', 'docs', 'readme.txt', 'é', '日本語', 'a b', '...', '.hidden', 'x'.repeat(100)),
  fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,8}$/),
);

// Not fc.webUrl(): building it costs two seconds at every start.
const url = fc.oneof(
  fc.constantFrom('http://tracker.test/announce', 'udp://t.test:6969', 'https://b.test/a?x=1&y=2', 'http://[::1]:7070/announce', 'http://t.test/%E2%82%AC?a=%20'),
  fc
    .record({ scheme: fc.constantFrom('http', 'https', 'udp'), host: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z]{2,4})?$/), port: fc.integer({ min: 1, max: 65535 }), path: fc.stringMatching(/^(\/[a-z0-9._~-]{0,8}){0,3}$/) })
    .map(({ scheme, host, port, path }) => `${scheme}://${host}:${port}${path}`),
);

/** No file may sit where another file's directory is, nor twice. */
function pathsClash(files: { path: string[]; pad: boolean }[]): boolean {
  const filePaths = new Set<string>();
  const dirs = new Set<string>();
  for (const f of files) {
    if (f.pad) continue;
    const key = f.path.join('/');
    if (filePaths.has(key) || dirs.has(key)) return true;
    for (let i = 1; i < f.path.length; i++) {
      const d = f.path.slice(0, i).join('/');
      if (filePaths.has(d)) return true;
      dirs.add(d);
    }
    filePaths.add(key);
  }
  return false;
}

export const torrentSpec: fc.Arbitrary<TorrentSpec> = fc
  .record({
    name: pathElement,
    pieceLength: fc.integer({ min: 14, max: 22 }).map((p) => 2 ** p),
    single: fc.boolean(),
    files: fc.array(
      fc.record({
        path: fc.array(pathElement, { minLength: 1, maxLength: 3 }),
        length: fc.oneof(fc.nat({ max: 70_000 }), fc.constantFrom(0, 1, 16_384, 16_385)),
        pad: fc.constantFrom(false, false, false, true),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    private: fc.constantFrom(0 as const, 1 as const, undefined),
    announce: fc.option(url, { nil: undefined }),
    announceList: fc.option(fc.array(fc.array(url, { maxLength: 3 }), { maxLength: 3 }), { nil: undefined }),
    urlList: fc.option(fc.oneof(url, fc.array(url, { maxLength: 2 })), { nil: undefined }),
    comment: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    creationDate: fc.option(fc.nat(), { nil: undefined }),
  })
  .map((s) => {
    // A torrent must hold at least one byte, and a single-file torrent has one file.
    const files = s.single ? [{ path: [s.name], length: Math.max(1, s.files[0]!.length), pad: false }] : s.files;
    if (files.every((f) => f.length === 0)) files[0]!.length = 1;
    return { ...s, files };
  })
  .filter((s) => !pathsClash(s.files));

export function torrentDict(s: TorrentSpec): Record<string, Encodable> {
  const total = s.files.reduce((n, f) => n + f.length, 0);
  const count = Math.ceil(total / s.pieceLength);
  const pieces = Buffer.alloc(count * 20);
  for (let i = 0; i < pieces.length; i++) pieces[i] = (i * 31 + s.name.length) & 0xff;
  const info: Record<string, Encodable> = { name: s.name, 'piece length': s.pieceLength, pieces };
  if (s.single) info['length'] = s.files[0]!.length;
  else info['files'] = s.files.map((f) => (f.pad ? { attr: 'p', length: f.length, path: f.path } : { length: f.length, path: f.path }));
  if (s.private !== undefined) info['private'] = s.private;
  const top: Record<string, Encodable> = { info };
  if (s.announce !== undefined) top['announce'] = s.announce;
  if (s.announceList !== undefined) top['announce-list'] = s.announceList;
  if (s.urlList !== undefined) top['url-list'] = s.urlList;
  if (s.comment !== undefined) top['comment'] = s.comment;
  if (s.creationDate !== undefined) top['creation date'] = s.creationDate;
  return top;
}

const TORRENT_KEYS = [
  'info', 'files', 'length', 'path', 'name', 'piece length', 'pieces', 'private', 'attr', 'meta version', 'announce',
  'announce-list', 'url-list', 'comment', 'created by', 'creation date', 'name.utf-8', 'path.utf-8', 'file tree',
];

/** Field-level leaves: lengths and piece lengths on every boundary, paths that escape, bytes that are not UTF-8. */
const torrentLeaf: fc.Arbitrary<Tree> = fc.oneof(
  fc.constantFrom<Tree>(
    -1, 0, 1, 3, 16_383, 16_384, 16_385, 2 ** 29, 2 ** 30, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2,
    Buffer.alloc(0), Buffer.from('..'), Buffer.from('.'), Buffer.from('a/b'), Buffer.from('a\\b'), Buffer.from('C:x'), Buffer.from('a\0b'),
    Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from('p'), Buffer.from('x'), Buffer.alloc(20), Buffer.alloc(19), Buffer.alloc(21),
    [], {}, [Buffer.from('..')], [Buffer.from('a'), Buffer.from('..'), Buffer.from('b')], [[]], [[Buffer.from('http://t')]],
  ),
  bencodeValue,
);

const torrentKey = fc.oneof(fc.constantFrom(...TORRENT_KEYS), fc.constantFrom(...PROTOTYPE_KEYS), fc.string({ maxLength: 6 }));

/** Encodes a mutated tree; a mutation that left nothing encodable gives empty bytes. */
function encodeTree(t: Tree): Buffer {
  try {
    return encode(t as Encodable);
  } catch {
    return Buffer.alloc(0);
  }
}

type TorrentInput = { bytes: Buffer; spec?: TorrentSpec };

const validTorrent = torrentSpec.map((spec) => ({ bytes: encode(torrentDict(spec)), spec }));

export const torrentInput: fc.Arbitrary<TorrentInput> = fc.oneof(
  { weight: 1, arbitrary: validTorrent },
  { weight: 5, arbitrary: mutatedTree(torrentSpec.map(torrentDict), torrentLeaf, torrentKey).map((t) => ({ bytes: encodeTree(t) })) },
  { weight: 3, arbitrary: mutatedBytes(validTorrent.map((v) => v.bytes), [...BENCODE_TOKENS, ...TORRENT_KEYS.map((k) => `${k.length}:${k}`)]).map((bytes) => ({ bytes })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }).map((u) => ({ bytes: Buffer.from(u) })) },
);

const ERROR_CODES = new Set(['malformed', 'not-canonical', 'missing', 'wrong-type', 'bad-value', 'piece-count-mismatch', 'unsafe-path', 'duplicate-path', 'unsupported']);

function checkTorrent({ bytes, spec }: TorrentInput): Outcome {
  const parsed = expectTyped(() => parseTorrent(bytes), MetainfoError);
  if ('rejected' in parsed) {
    // parseTorrent wraps every other exception in a MetainfoError too; a cause that is
    // not the bencode layer's own error is a crash it has hidden.
    try {
      parseTorrent(bytes);
    } catch (err) {
      const e = err as MetainfoError;
      check(e.cause === undefined || e.cause instanceof BencodeError, () => `a MetainfoError hides ${String((e.cause as Error)?.name)}: ${e.message}`);
      check(ERROR_CODES.has(e.code), `unknown error code ${e.code}`);
    }
    check(spec === undefined, () => `a valid torrent was refused: ${parsed.message}`);
    return parsed.rejected;
  }
  const m = parsed.value;
  checkMetainfo(m, bytes);
  if (spec) checkSpec(m, spec);
  return 'accepted';
}

/** What every accepted torrent promises its users. */
function checkMetainfo(m: Metainfo, bytes: Buffer): void {
  check(m.rawInfo.buffer === bytes.buffer && m.rawInfo.byteOffset >= bytes.byteOffset && m.rawInfo.byteOffset + m.rawInfo.length <= bytes.byteOffset + bytes.length, 'rawInfo is not a view of the input');
  check(createHash('sha1').update(m.rawInfo).digest().equals(m.infoHash) && m.infoHashHex === m.infoHash.toString('hex'), 'info hash is not SHA-1 of rawInfo');
  check(isDict(decodeStrict(m.rawInfo)), 'rawInfo is not a bencoded dictionary');
  check(Number.isSafeInteger(m.length) && m.length > 0, `length ${m.length}`);
  check(m.pieceCount === Math.ceil(m.length / m.pieceLength) && m.pieceHashes.length === m.pieceCount * 20, 'piece count does not match length and hashes');
  check(m.files.length > 0 && (!m.singleFile || m.files.length === 1), 'file list');
  let offset = 0;
  const seen = new Set<string>();
  for (const f of m.files) {
    check(Number.isSafeInteger(f.length) && f.length >= 0 && f.offset === offset, `file ${f.path.join('/')} has length ${f.length} at ${f.offset}, expected offset ${offset}`);
    offset += f.length;
    check(f.path.length > 0, 'a file with an empty path');
    for (const element of f.path) check(unsafePathElement(element) === undefined, () => `unsafe path element ${JSON.stringify(element)} accepted`);
    if (f.pad) continue;
    const key = f.path.join('/');
    check(!seen.has(key), `duplicate path ${key} accepted`);
    seen.add(key);
  }
  check(offset === m.length, 'file lengths do not add up to the length');
  check(unsafePathElement(m.name) === undefined, 'unsafe name accepted');
  for (const tier of m.announceList) check(tier.length > 0 && tier.every((u) => typeof u === 'string' && u !== ''), 'empty tier or URL kept');
}

function checkSpec(m: Metainfo, spec: TorrentSpec): void {
  check(m.name === spec.name && m.pieceLength === spec.pieceLength && m.singleFile === spec.single, 'name, piece length or kind differ from the torrent written');
  check(m.private === (spec.private === 1), 'private flag differs');
  check(m.files.length === spec.files.length && m.files.every((f, i) => f.length === spec.files[i]!.length && f.path.join('/') === spec.files[i]!.path.join('/') && (f.pad === true) === spec.files[i]!.pad), 'files differ');
  check(m.announce === spec.announce, 'announce differs');
  const tiers = (spec.announceList ?? []).map((t) => t.filter((u) => u !== '')).filter((t) => t.length > 0);
  check(JSON.stringify(m.announceList) === JSON.stringify(tiers), 'announce-list differs');
  check(m.comment === spec.comment && m.creationDate === spec.creationDate, 'comment or creation date differ');
}

export const metainfoTarget: FuzzTarget<TorrentInput> = {
  name: 'metainfo',
  about: 'parseTorrent',
  arbitrary: torrentInput,
  setup: () => ({ check: checkTorrent }),
};

// ---- magnet links ----------------------------------------------------------------------

const MAGNET_TOKENS = ['&', '=', '?', 'xt=', 'urn:btih:', 'urn:btmh:1220', 'dn=', 'tr=', 'ws=', 'xl=', 'tr.1=', '%', '%zz', '%C3%A9', '%00', '+', '&xt=urn:btih:' + 'ab'.repeat(20), '&xt=urn:btih:' + 'A'.repeat(32), 'magnet:?'];

type MagnetInput = { uri: string; expect?: Metainfo };

const validMagnet = torrentSpec.map((spec) => {
  const m = parseTorrent(encode(torrentDict(spec)));
  return { uri: toMagnet(m), expect: m };
});

const magnetInput: fc.Arbitrary<MagnetInput> = fc.oneof(
  { weight: 1, arbitrary: validMagnet },
  { weight: 4, arbitrary: mutatedText(validMagnet.map((v) => v.uri), MAGNET_TOKENS).map((uri) => ({ uri })) },
  { weight: 1, arbitrary: anyText({ maxLength: 60 }).map((s) => ({ uri: `magnet:?${s}` })) },
  { weight: 1, arbitrary: fc.constantFrom(...AWKWARD_NUMBERS).map((n) => ({ uri: `magnet:?xt=urn:btih:${n}` })) },
);

function checkMagnet({ uri, expect }: MagnetInput): Outcome {
  const parsed = expectTyped(() => parseMagnet(uri), MagnetError);
  if ('rejected' in parsed) {
    check(expect === undefined, () => `our own magnet link was refused: ${parsed.message}`);
    return parsed.rejected;
  }
  const link = parsed.value;
  check(link.infoHash.length === 20, 'info hash is not 20 bytes');
  check(new Set(link.trackers).size === link.trackers.length && link.trackers.every((t) => t !== ''), 'trackers repeated or empty');
  if (expect) {
    check(link.infoHash.equals(expect.infoHash), 'info hash differs from the torrent');
    check(link.name === expect.name, 'name differs');
    check(JSON.stringify(link.trackers) === JSON.stringify(trackersOf(expect)), 'trackers differ');
    check(JSON.stringify(link.webSeeds) === JSON.stringify([...new Set(expect.urlList)]), 'web seeds differ');
  }
  return 'accepted';
}

export const magnetTarget: FuzzTarget<MagnetInput> = {
  name: 'magnet',
  about: 'parseMagnet, toMagnet',
  arbitrary: magnetInput,
  setup: () => ({ check: checkMagnet }),
};
