import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MagnetError, parseMagnet, parseTorrent, toMagnet } from '../src/index.js';
import { goodTorrent, torrentOf } from './fixtures.js';

describe('magnet links', () => {
  it('round-trip the info hash, name, trackers and web seeds', () => {
    const t = goodTorrent();
    t.info['name'] = 'release 1.2 & more+ü';
    const m = parseTorrent(torrentOf(t.top));
    const uri = toMagnet(m);
    expect(uri).toMatch(new RegExp(`^magnet:\\?xt=urn:btih:${m.infoHashHex}&dn=`));
    expect(uri).toContain('&xl=40100');
    expect(parseMagnet(uri)).toEqual({
      infoHash: m.infoHash,
      name: 'release 1.2 & more+ü',
      trackers: ['http://tracker.test/announce', 'http://backup.test/announce'],
      webSeeds: ['http://seed.test/'],
    });
  });

  it('round-trip any name and tracker text', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.array(fc.webUrl(), { maxLength: 3 }), (name, urls) => {
        const t = goodTorrent();
        t.info['name'] = name;
        t.top['announce-list'] = urls.map((u) => [u]);
        let m;
        try {
          m = parseTorrent(torrentOf(t.top));
        } catch {
          return; // names the parser refuses as paths
        }
        const back = parseMagnet(toMagnet(m));
        expect(back.name).toBe(name);
        expect(back.trackers).toEqual([...new Set(urls.length ? urls : ['http://tracker.test/announce'])]);
      }),
    );
  });

  it('read base32 info hashes, indexed keys and "+" as a space', () => {
    const hex = '0123456789abcdef0123456789abcdef01234567';
    const base32 = 'AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH';
    const link = parseMagnet(`magnet:?xt=urn:btih:${base32}&dn=my+release&tr.1=udp%3A%2F%2Fa&tr.2=udp%3A%2F%2Fb&x.pe=1.2.3.4:5`);
    expect(link.infoHash.toString('hex')).toBe(hex);
    expect(link.name).toBe('my release');
    expect(link.trackers).toEqual(['udp://a', 'udp://b']);
    expect(link.webSeeds).toEqual([]);
    expect(parseMagnet(`MAGNET:?xt=urn:btih:${hex.toUpperCase()}`).infoHash.toString('hex')).toBe(hex);
  });

  it.each([
    ['http://example.com/?xt=urn:btih:0123456789abcdef0123456789abcdef01234567', 'not-magnet'],
    ['magnet:?dn=x', 'missing-info-hash'],
    ['magnet:?xt=urn:btmh:1220abcd', 'missing-info-hash'],
    ['magnet:?xt=urn:btih:0123', 'bad-info-hash'],
    ['magnet:?xt=urn:btih:zz23456789abcdef0123456789abcdef01234567', 'bad-info-hash'],
    ['magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&xt=urn:btih:1123456789abcdef0123456789abcdef01234567', 'conflicting-info-hash'],
  ])('refuse %s with %s', (uri, code) => {
    expect(() => parseMagnet(uri)).toThrow(MagnetError);
    expect(() => parseMagnet(uri)).toThrow(expect.objectContaining({ code }));
  });

  it('never throw anything but MagnetError', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        for (const uri of [s, `magnet:?${s}`, `magnet:?xt=urn:btih:${s}`]) {
          try {
            parseMagnet(uri);
          } catch (err) {
            if (!(err instanceof MagnetError)) throw err;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
