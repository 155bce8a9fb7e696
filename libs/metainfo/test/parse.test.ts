import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode, type BencodeValue, type Encodable } from '../../bencode/src/index.js';
import { infoHashOf, MetainfoError, parseTorrent, pieceHash, pieceSize, type MetainfoErrorCode } from '../src/index.js';
import { goodTorrent, sha1, torrentOf, type Dict } from './fixtures.js';

function refusal(bytes: Buffer): MetainfoError {
  try {
    parseTorrent(bytes);
  } catch (err) {
    if (err instanceof MetainfoError) return err;
    throw err;
  }
  throw new Error('expected the torrent to be refused');
}

/** A good torrent with one edit, as bytes. */
function edited(edit: (t: ReturnType<typeof goodTorrent>) => void): Buffer {
  const t = goodTorrent();
  edit(t);
  return torrentOf(t.top);
}

describe('parseTorrent of a valid torrent', () => {
  it('reads every field', () => {
    const bytes = torrentOf(goodTorrent().top);
    const m = parseTorrent(bytes);
    expect(m.name).toBe('release-1.2.3');
    expect(m.singleFile).toBe(false);
    expect(m.length).toBe(40_100);
    expect(m.pieceLength).toBe(16_384);
    expect(m.pieceCount).toBe(3);
    expect(m.files).toEqual([
      { path: ['docs', 'readme.txt'], length: 100, offset: 0 },
      { path: ['empty'], length: 0, offset: 100 },
      { path: ['bin', 'tool'], length: 40_000, offset: 100 },
    ]);
    expect(m.private).toBe(false);
    expect(m.announce).toBe('http://tracker.test/announce');
    expect(m.announceList).toEqual([['http://tracker.test/announce'], ['http://backup.test/announce']]);
    expect(m.urlList).toEqual(['http://seed.test/']);
    expect(m.comment).toBe('a comment');
    expect(m.createdBy).toBe('test');
    expect(m.creationDate).toBe(1_700_000_000);
    expect(m.rawInfo.equals(encode(goodTorrent().info))).toBe(true);
    expect(m.infoHash.equals(sha1(m.rawInfo))).toBe(true);
    expect(m.infoHash.equals(infoHashOf(m.rawInfo))).toBe(true);
    expect(m.infoHashHex).toBe(m.infoHash.toString('hex'));
    expect(pieceHash(m, 2).equals(Buffer.alloc(20, 0xab))).toBe(true);
    expect([0, 1, 2].map((i) => pieceSize(m, i))).toEqual([16_384, 16_384, 40_100 - 2 * 16_384]);
    expect(() => pieceSize(m, 3)).toThrow(RangeError);
    expect(() => pieceHash(m, -1)).toThrow(RangeError);
  });

  it('reads a single-file torrent as one file named after the torrent, and the private flag', () => {
    const bytes = torrentOf({ info: { length: 16_385, name: 'app.tar', 'piece length': 16_384, pieces: Buffer.alloc(40), private: 1 }, 'url-list': 'http://one.test/' });
    const m = parseTorrent(bytes);
    expect(m.singleFile).toBe(true);
    expect(m.files).toEqual([{ path: ['app.tar'], length: 16_385, offset: 0 }]);
    expect(m.private).toBe(true);
    expect(m.urlList).toEqual(['http://one.test/']);
    expect(m.announce).toBeUndefined();
    expect(m.announceList).toEqual([]);
    expect(pieceSize(m, 1)).toBe(1);
  });

  it('hands out views of the input, not copies, for the info dictionary and piece hashes', () => {
    const bytes = torrentOf(goodTorrent().top);
    const m = parseTorrent(bytes);
    expect(m.rawInfo.buffer).toBe(bytes.buffer);
    expect(m.pieceHashes.buffer).toBe(bytes.buffer);
  });

  it('marks BEP 47 padding files, which may share a name', () => {
    const bytes = edited(({ info, files }) => {
      files.splice(1, 0, { attr: 'p', length: 16_284, path: ['.pad', '16284'] });
      files.push({ attr: 'p', length: 16_284, path: ['.pad', '16284'] });
      info['pieces'] = Buffer.alloc(20 * 5);
    });
    const m = parseTorrent(bytes);
    expect(m.files.map((f) => f.pad ?? false)).toEqual([false, true, false, false, true]);
    expect(m.files[2]!.offset).toBe(16_384);
  });

  it('ignores keys it does not know', () => {
    const bytes = edited(({ top, info }) => {
      top['zzz'] = ['anything'];
      info['source'] = 'ci';
    });
    expect(parseTorrent(bytes).name).toBe('release-1.2.3');
  });
});

describe('each fault names its field and code', () => {
  const cases: [string, () => Buffer, string, MetainfoErrorCode][] = [
    ['not bencode', () => Buffer.from('hello'), '', 'malformed'],
    ['empty input', () => Buffer.alloc(0), '', 'malformed'],
    ['bytes after the torrent', () => Buffer.concat([torrentOf(goodTorrent().top), Buffer.from('x')]), '', 'malformed'],
    ['a list at the top', () => Buffer.from('li1ee'), '', 'wrong-type'],
    ['no info', () => edited(({ top }) => delete top['info']), 'info', 'missing'],
    ['info as a string', () => edited(({ top }) => (top['info'] = 'x')), 'info', 'wrong-type'],
    ['no name', () => edited(({ info }) => delete info['name']), 'info.name', 'missing'],
    ['name as an integer', () => edited(({ info }) => (info['name'] = 5)), 'info.name', 'wrong-type'],
    ['name ..', () => edited(({ info }) => (info['name'] = '..')), 'info.name', 'unsafe-path'],
    ['name with a slash', () => edited(({ info }) => (info['name'] = '/etc')), 'info.name', 'unsafe-path'],
    ['name not UTF-8', () => edited(({ info }) => (info['name'] = Buffer.from([0xc3, 0x28]))), 'info.name', 'bad-value'],
    ['no piece length', () => edited(({ info }) => delete info['piece length']), 'info.piece length', 'missing'],
    ['piece length not a power of two', () => edited(({ info }) => (info['piece length'] = 3 * 16_384)), 'info.piece length', 'bad-value'],
    ['piece length below 16 KiB', () => edited(({ info }) => (info['piece length'] = 8192)), 'info.piece length', 'bad-value'],
    ['piece length zero', () => edited(({ info }) => (info['piece length'] = 0)), 'info.piece length', 'bad-value'],
    ['piece length beyond what libtorrent accepts', () => edited(({ info }) => (info['piece length'] = 2 ** 30)), 'info.piece length', 'bad-value'],
    ['no pieces', () => edited(({ info }) => delete info['pieces']), 'info.pieces', 'missing'],
    ['pieces as a list', () => edited(({ info }) => (info['pieces'] = [])), 'info.pieces', 'wrong-type'],
    ['pieces not a multiple of 20', () => edited(({ info }) => (info['pieces'] = Buffer.alloc(61))), 'info.pieces', 'bad-value'],
    ['too few pieces', () => edited(({ info }) => (info['pieces'] = Buffer.alloc(40))), 'info.pieces', 'piece-count-mismatch'],
    ['too many pieces', () => edited(({ info }) => (info['pieces'] = Buffer.alloc(80))), 'info.pieces', 'piece-count-mismatch'],
    ['both length and files', () => edited(({ info }) => (info['length'] = 5)), 'info', 'bad-value'],
    ['neither length nor files', () => edited(({ info }) => delete info['files']), 'info.length', 'missing'],
    ['negative length', () => edited(({ info }) => { delete info['files']; info['length'] = -1; }), 'info.length', 'bad-value'],
    ['a length beyond 2^53', () => Buffer.from(torrentOf({ info: { length: 1, name: 'x', 'piece length': 16_384, pieces: Buffer.alloc(20) } }).toString('latin1').replace('i1e', 'i9007199254740993e'), 'latin1'), 'info.length', 'bad-value'],
    ['no data at all', () => edited(({ info }) => { info['files'] = [{ length: 0, path: ['a'] }]; info['pieces'] = Buffer.alloc(0); }), 'info.files', 'bad-value'],
    ['files as a dictionary', () => edited(({ info }) => (info['files'] = {})), 'info.files', 'wrong-type'],
    ['an empty file list', () => edited(({ info }) => (info['files'] = [])), 'info.files', 'bad-value'],
    ['a file entry that is a string', () => edited(({ files }) => (files[1] = 'x' as never)), 'info.files[1]', 'wrong-type'],
    ['a file without a length', () => edited(({ files }) => delete files[1]!['length']), 'info.files[1].length', 'missing'],
    ['a negative file length', () => edited(({ files }) => (files[1]!['length'] = -5)), 'info.files[1].length', 'bad-value'],
    ['a file length as a string', () => edited(({ files }) => (files[1]!['length'] = '5')), 'info.files[1].length', 'wrong-type'],
    ['a file without a path', () => edited(({ files }) => delete files[2]!['path']), 'info.files[2].path', 'missing'],
    ['a path that is a string', () => edited(({ files }) => (files[2]!['path'] = 'bin/tool')), 'info.files[2].path', 'wrong-type'],
    ['an empty path', () => edited(({ files }) => (files[2]!['path'] = [])), 'info.files[2].path', 'unsafe-path'],
    ['an empty path element', () => edited(({ files }) => (files[2]!['path'] = ['bin', ''])), 'info.files[2].path[1]', 'unsafe-path'],
    ['a . element', () => edited(({ files }) => (files[2]!['path'] = ['bin', '.'])), 'info.files[2].path[1]', 'unsafe-path'],
    ['a .. element', () => edited(({ files }) => (files[2]!['path'] = ['..', 'etc', 'passwd'])), 'info.files[2].path[0]', 'unsafe-path'],
    ['an absolute element', () => edited(({ files }) => (files[2]!['path'] = ['/etc/passwd'])), 'info.files[2].path[0]', 'unsafe-path'],
    ['a slash inside an element', () => edited(({ files }) => (files[2]!['path'] = ['bin', 'a/b'])), 'info.files[2].path[1]', 'unsafe-path'],
    ['a backslash inside an element', () => edited(({ files }) => (files[2]!['path'] = ['bin', 'a\\b'])), 'info.files[2].path[1]', 'unsafe-path'],
    ['a NUL inside an element', () => edited(({ files }) => (files[2]!['path'] = ['bin', 'a\0b'])), 'info.files[2].path[1]', 'unsafe-path'],
    ['a drive letter', () => edited(({ files }) => (files[2]!['path'] = ['C:', 'x'])), 'info.files[2].path[0]', 'unsafe-path'],
    ['a path element that is an integer', () => edited(({ files }) => (files[2]!['path'] = ['bin', 7])), 'info.files[2].path[1]', 'wrong-type'],
    ['a path element not UTF-8', () => edited(({ files }) => (files[2]!['path'] = ['bin', Buffer.from([0xff])])), 'info.files[2].path[1]', 'bad-value'],
    ['the same path twice', () => edited(({ files }) => (files[2]!['path'] = ['docs', 'readme.txt'])), 'info.files[2].path', 'duplicate-path'],
    ['a file that is also a directory (file first)', () => edited(({ files }) => (files[2]!['path'] = ['empty', 'x'])), 'info.files[2].path', 'duplicate-path'],
    ['a file that is also a directory (directory first)', () => edited(({ files }) => (files[2]!['path'] = ['docs'])), 'info.files[2].path', 'duplicate-path'],
    ['private as a string', () => edited(({ info }) => (info['private'] = '1')), 'info.private', 'wrong-type'],
    ['private 2', () => edited(({ info }) => (info['private'] = 2)), 'info.private', 'bad-value'],
    ['announce as an integer', () => edited(({ top }) => (top['announce'] = 1)), 'announce', 'wrong-type'],
    ['announce-list of strings', () => edited(({ top }) => (top['announce-list'] = ['http://x/'])), 'announce-list[0]', 'wrong-type'],
    ['announce-list with an integer URL', () => edited(({ top }) => (top['announce-list'] = [['http://x/', 3]])), 'announce-list[0][1]', 'wrong-type'],
    ['url-list as an integer', () => edited(({ top }) => (top['url-list'] = 3)), 'url-list', 'wrong-type'],
    ['creation date as a string', () => edited(({ top }) => (top['creation date'] = 'today')), 'creation date', 'wrong-type'],
    ['a v2-only torrent', () => edited(({ info }) => { delete info['pieces']; delete info['files']; info['meta version'] = 2; info['file tree'] = {}; }), 'info', 'unsupported'],
  ];

  it.each(cases)('%s', (_name, make, field, code) => {
    const err = refusal(make());
    expect({ field: err.field, code: err.code }).toEqual({ field, code });
    expect(err.message).toMatch(new RegExp(`^invalid torrent: ${field ? `${escape(field)}: ` : ''}\\S`));
    expect(err.message).not.toContain('\n');
  });

  it('reads well as one line', () => {
    expect(refusal(edited(({ info }) => (info['pieces'] = Buffer.alloc(61)))).message).toBe('invalid torrent: info.pieces: length 61 is not a multiple of 20');
    expect(refusal(edited(({ info }) => (info['pieces'] = Buffer.alloc(40)))).message).toBe('invalid torrent: info.pieces: 2 piece hashes for 40100 bytes in 16384-byte pieces; expected 3');
  });

  const good = torrentOf(goodTorrent().top).toString('latin1');
  const nonCanonical: [string, string, string][] = [
    ['a leading zero in info', good.replace('6:lengthi0e', '6:lengthi00e'), 'info.files[1].length'],
    ['negative zero in info', good.replace('6:lengthi0e', '6:lengthi-0e'), 'info.files[1].length'],
    ["'+' in info", good.replace('12:piece lengthi16384e', '12:piece lengthi+16384e'), 'info.piece length'],
    ['a string length with a leading zero', good.replace('4:name13:', '4:name013:'), 'info.name'],
    ['unsorted keys in info', good.replace('5:filesl', '5:filexl').replace('4:name', '4:file').replace('5:filexl', '4:namel'), 'info'],
    ['unsorted keys outside info', good.replace('7:comment9:a comment', '7:zomment9:a comment'), ''],
  ];
  it.each(nonCanonical)('not canonical: %s', (_name, bytes, field) => {
    const err = refusal(Buffer.from(bytes, 'latin1'));
    expect({ field: err.field, code: err.code }).toEqual({ field, code: 'not-canonical' });
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('any bytes give a Metainfo or a MetainfoError, nothing else', () => {
  const onlyMetainfoErrors = (bytes: Uint8Array) => {
    try {
      parseTorrent(Buffer.from(bytes));
    } catch (err) {
      if (!(err instanceof MetainfoError)) throw err;
    }
  };

  it('for arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), onlyMetainfoErrors), { numRuns: 3000 });
  });

  it('for valid torrents with bytes changed, inserted or removed', () => {
    const good = torrentOf(goodTorrent().top);
    const edit = fc.oneof(
      fc.tuple(fc.constant('set' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.constant('insert' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.constant('delete' as const), fc.nat(), fc.constant(0)),
    );
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 5 }), (edits) => {
        const bytes = [...good];
        for (const [kind, at, byte] of edits) {
          const i = at % bytes.length;
          if (kind === 'set') bytes[i] = byte;
          else if (kind === 'insert') bytes.splice(i, 0, byte);
          else if (bytes.length > 1) bytes.splice(i, 1);
        }
        onlyMetainfoErrors(Uint8Array.from(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  it('for valid torrents with any value swapped for an arbitrary one', () => {
    const anyValue: fc.Arbitrary<Encodable> = fc.letrec<{ v: Encodable }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.integer({ min: -5, max: 70_000 }),
        fc.constantFrom('', '.', '..', 'a/b', 'docs', 'readme.txt', 'p', 'http://x/'),
        fc.uint8Array({ maxLength: 45 }),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom('length', 'path', 'name', 'files', 'pieces', 'attr', 'piece length', 'private'), tie('v'), { maxKeys: 3 }),
      ),
    })).v;
    // Every place a value sits in the good torrent, as a path of keys and indexes.
    const places: (string | number)[][] = [];
    const walk = (v: BencodeValue | Encodable | undefined, path: (string | number)[]) => {
      places.push(path);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) for (const [k, x] of Object.entries(v)) walk(x as Encodable, [...path, k]);
    };
    walk(goodTorrent().top, []);
    fc.assert(
      fc.property(fc.constantFrom(...places.filter((p) => p.length > 0)), anyValue, (place, replacement) => {
        const { top } = goodTorrent();
        let parent = top as unknown as Record<string | number, unknown>;
        for (const key of place.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
        parent[place[place.length - 1]!] = replacement;
        onlyMetainfoErrors(encode(top as Dict));
      }),
      { numRuns: 3000 },
    );
  });
});
