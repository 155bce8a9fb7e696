import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrackerCore, type RemoteAddress } from '../src/core.js';
import { MemoryPeerStore, type Peer } from '../src/peer-store.js';
import { StepClock, announceQuery, bencodeKey, bytes, compactIpv4, decodeDict, id20, seededRandom, text } from './tracker-fixtures.js';

const local = (n: number): RemoteAddress => ({ address: `127.0.0.${n}`, family: 4 });
const remote = (address: string, family: 4 | 6 = 4): RemoteAddress => ({ address, family });

function core(options: ConstructorParameters<typeof TrackerCore>[0] = {}) {
  const clock = new StepClock();
  return { clock, tracker: new TrackerCore({ interval: 60, clock, random: seededRandom(7), ...options }) };
}

/** Registers peers 1..n of the default swarm, each from its own 10.0.x.y address. */
function fill(tracker: TrackerCore, n: number, left = 1000): void {
  for (let i = 1; i <= n; i++) {
    tracker.announce(announceQuery({ peerId: peerIdFor(i), port: 7000 + (i % 1000), left, numwant: 0 }), remote(`10.0.${i >> 8}.${i & 255}`));
  }
}

function peerIdFor(i: number): Buffer {
  const id = Buffer.alloc(20, 0xee);
  id.writeUInt32BE(i, 0);
  return id;
}

describe('TrackerCore announce', () => {
  it('answers the first peer with the intervals, its own count and no peers', () => {
    const { tracker } = core();
    const answer = decodeDict(tracker.announce(announceQuery({ event: 'started' }), local(1)));
    expect(answer).toMatchObject({ interval: 60, 'min interval': 30, complete: 0, incomplete: 1 });
    expect(compactIpv4(answer.peers)).toEqual([]);
    expect(answer.peers6).toBeUndefined();
  });

  it('introduces two peers to each other and never a peer to itself (compact, BEP 23)', () => {
    const { tracker } = core();
    tracker.announce(announceQuery({ peerId: id20(1), port: 6001 }), local(1));
    const second = decodeDict(tracker.announce(announceQuery({ peerId: id20(2), port: 6002 }), local(2)));
    expect(compactIpv4(second.peers)).toEqual(['127.0.0.1:6001']);
    const first = decodeDict(tracker.announce(announceQuery({ peerId: id20(1), port: 6001 }), local(1)));
    expect(compactIpv4(first.peers)).toEqual(['127.0.0.2:6002']);
  });

  it('sends the dictionary form with peer ids unless no_peer_id is set', () => {
    const { tracker } = core();
    tracker.announce(announceQuery({ peerId: id20(0xf1), port: 6001 }), local(1));
    const withIds = decodeDict(tracker.announce(announceQuery({ peerId: id20(2), compact: false }), local(2)));
    expect(withIds.peers).toEqual([{ ip: bytes('127.0.0.1'), 'peer id': new Uint8Array(id20(0xf1)), port: 6001 }]);
    const without = decodeDict(tracker.announce(announceQuery({ peerId: id20(2), compact: false, noPeerId: true }), local(2)));
    expect(without.peers).toEqual([{ ip: bytes('127.0.0.1'), port: 6001 }]);
  });

  it('puts IPv6 peers in peers6 (BEP 7) and v4-mapped callers in peers', () => {
    const { tracker } = core();
    tracker.announce(announceQuery({ peerId: id20(1), port: 6001 }), remote('fd00::7', 6));
    tracker.announce(announceQuery({ peerId: id20(2), port: 6002 }), remote('::ffff:10.1.2.3', 6));
    const answer = decodeDict(tracker.announce(announceQuery({ peerId: id20(3), numwant: 10 }), local(3)));
    expect(compactIpv4(answer.peers)).toEqual(['10.1.2.3:6002']);
    const expected6 = Buffer.alloc(18);
    expected6.writeUInt16BE(0xfd00, 0);
    expected6.writeUInt16BE(7, 14);
    expected6.writeUInt16BE(6001, 16);
    expect(Buffer.from(answer.peers6 as Uint8Array)).toEqual(expected6);
    const dict = decodeDict(tracker.announce(announceQuery({ peerId: id20(3), compact: false, noPeerId: true }), local(3)));
    expect((dict.peers as { ip: Uint8Array }[]).map((p) => text(p.ip)).sort()).toEqual(['10.1.2.3', 'fd00::7']);
  });

  it('gives 50 peers by default, at most 200, none for numwant=0, distinct and never the asker', () => {
    const { tracker } = core();
    fill(tracker, 300);
    const ask = (numwant: number | undefined) =>
      compactIpv4(decodeDict(tracker.announce(announceQuery({ peerId: peerIdFor(5), port: 7005, numwant }), remote('10.0.0.5'))).peers);
    expect(ask(undefined)).toHaveLength(50);
    expect(ask(1000)).toHaveLength(200);
    expect(ask(0)).toHaveLength(0);
    const many = ask(200);
    expect(new Set(many).size).toBe(200);
    expect(many).not.toContain('10.0.0.5:7005');
    expect(ask(299)).toHaveLength(200);
  });

  it('draws a different subset as the random source moves on', () => {
    const { tracker } = core();
    fill(tracker, 100);
    const ask = () => compactIpv4(decodeDict(tracker.announce(announceQuery({ peerId: id20(0x42), numwant: 10 }), local(9))).peers);
    expect(ask()).not.toEqual(ask());
  });

  it('counts seeders and leechers, a completion once, and forgets a stopped peer', () => {
    const { tracker } = core();
    tracker.announce(announceQuery({ peerId: id20(1), event: 'started', left: 0 }), local(1));
    tracker.announce(announceQuery({ peerId: id20(2), event: 'started', left: 5 }), local(2));
    expect(tracker.store.counts(id20(0xaa).toString('latin1'))).toEqual({ complete: 1, incomplete: 1, downloaded: 0 });
    tracker.announce(announceQuery({ peerId: id20(2), event: 'completed', left: 0 }), local(2));
    tracker.announce(announceQuery({ peerId: id20(2), event: 'completed', left: 0 }), local(2));
    const after = decodeDict(tracker.announce(announceQuery({ peerId: id20(3), left: 5 }), local(3)));
    expect(after).toMatchObject({ complete: 2, incomplete: 1 });
    const stopped = decodeDict(tracker.announce(announceQuery({ peerId: id20(1), event: 'stopped' }), local(1)));
    expect(stopped).toMatchObject({ complete: 1, incomplete: 1 });
    expect(compactIpv4(stopped.peers)).toEqual([]);
    const files = decodeDict(tracker.scrape([id20(0xaa)])).files as Record<string, unknown>;
    expect(files[bencodeKey(id20(0xaa))]).toEqual({ complete: 1, downloaded: 1, incomplete: 1 });
  });

  it('drops a peer not heard from for twice the interval', () => {
    const { clock, tracker } = core();
    tracker.announce(announceQuery({ peerId: id20(1), port: 6001 }), local(1));
    tracker.announce(announceQuery({ peerId: id20(2), port: 6002 }), local(2));
    clock.time = 100_000;
    tracker.announce(announceQuery({ peerId: id20(2), port: 6002 }), local(2)); // 2 stays fresh
    clock.time = 119_999;
    expect(compactIpv4(decodeDict(tracker.announce(announceQuery({ peerId: id20(3) }), local(3))).peers).sort()).toEqual(['127.0.0.1:6001', '127.0.0.2:6002']);
    clock.time = 120_001;
    expect(compactIpv4(decodeDict(tracker.announce(announceQuery({ peerId: id20(3) }), local(3))).peers).sort()).toEqual(['127.0.0.2:6002']);
  });

  it('refuses info hashes outside the allow list of a private tracker', () => {
    const { tracker } = core({ allow: [id20(0xaa)] });
    expect(decodeDict(tracker.announce(announceQuery(), local(1)))).toHaveProperty('interval', 60);
    const refused = decodeDict(tracker.announce(announceQuery({ infoHash: id20(0xbb) }), local(1)));
    expect(text(refused['failure reason'])).toMatch(/info_hash is not served/);
    tracker.allow(id20(0xbb));
    expect(decodeDict(tracker.announce(announceQuery({ infoHash: id20(0xbb) }), local(1)))).not.toHaveProperty('failure reason');
    tracker.disallow(id20(0xbb));
    expect(decodeDict(tracker.announce(announceQuery({ infoHash: id20(0xbb) }), local(1)))).toHaveProperty('failure reason');
  });

  it('believes the ip parameter only from loopback unless told otherwise', () => {
    const ask = (tracker: TrackerCore, from: RemoteAddress) => {
      tracker.announce(announceQuery({ peerId: id20(1), port: 6001, ip: '10.9.9.9' }), from);
      return compactIpv4(decodeDict(tracker.announce(announceQuery({ peerId: id20(2) }), local(2))).peers);
    };
    expect(ask(core().tracker, local(1))).toEqual(['10.9.9.9:6001']);
    expect(ask(core().tracker, remote('192.0.2.1'))).toEqual(['192.0.2.1:6001']);
    expect(ask(core({ trustIp: 'always' }).tracker, remote('192.0.2.1'))).toEqual(['10.9.9.9:6001']);
    expect(ask(core({ trustIp: 'never' }).tracker, local(1))).toEqual(['127.0.0.1:6001']);
    // A DNS name is not resolved: the caller's address stands.
    const named = core().tracker;
    named.announce(announceQuery({ peerId: id20(1), port: 6001, ip: 'seed.example' }), local(4));
    expect(compactIpv4(decodeDict(named.announce(announceQuery({ peerId: id20(2) }), local(2))).peers)).toEqual(['127.0.0.4:6001']);
  });
});

describe('TrackerCore scrape (BEP 48)', () => {
  it('keys files by the raw 20-byte info hash, sorted, once each', () => {
    const { tracker } = core();
    const high = id20(0xfe);
    tracker.announce(announceQuery({ infoHash: high, left: 0 }), local(1));
    const body = tracker.scrape([high, id20(0x01), high]);
    const raw = body.toString('latin1');
    expect(raw.indexOf(id20(0x01).toString('latin1'))).toBeLessThan(raw.indexOf(high.toString('latin1')));
    const files = decodeDict(body).files as Record<string, unknown>;
    expect(Object.keys(files)).toHaveLength(2);
    expect(files[bencodeKey(high)]).toEqual({ complete: 1, downloaded: 0, incomplete: 0 });
    expect(files[bencodeKey(id20(1))]).toEqual({ complete: 0, downloaded: 0, incomplete: 0 });
  });

  it('leaves out hashes a private tracker does not serve, and refuses a full scrape', () => {
    const { tracker } = core({ allow: [id20(0xaa)] });
    const files = decodeDict(tracker.scrape([id20(0xaa), id20(0xbb)])).files as Record<string, unknown>;
    expect(Object.keys(files)).toEqual([bencodeKey(id20(0xaa))]);
    expect(text(decodeDict(tracker.scrape([]))['failure reason'])).toMatch(/info_hash/);
  });
});

describe('MemoryPeerStore', () => {
  const peer = (n: number, seeder: boolean): Peer => ({
    key: `peer-${String(n).padStart(15, '0')}`,
    address: '10.0.0.1',
    family: 4,
    port: 1000 + n,
    compact: '\0\0\0\0\0\0',
    seeder,
  });

  it('keeps its counts and lists consistent under any sequence of operations', () => {
    type Op = { kind: 'upsert'; n: number; seeder: boolean; dt: number } | { kind: 'remove'; n: number } | { kind: 'list'; n: number; want: number } | { kind: 'expire'; age: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('upsert' as const), n: fc.nat(20), seeder: fc.boolean(), dt: fc.nat(50) }),
      fc.record({ kind: fc.constant('remove' as const), n: fc.nat(20) }),
      fc.record({ kind: fc.constant('list' as const), n: fc.nat(20), want: fc.nat(30) }),
      fc.record({ kind: fc.constant('expire' as const), age: fc.nat(200) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer(), (ops, seed) => {
        const store = new MemoryPeerStore(seededRandom(seed));
        const model = new Map<number, { seeder: boolean; seen: number }>();
        let now = 0;
        for (const o of ops) {
          if (o.kind === 'upsert') {
            now += o.dt;
            const before = model.get(o.n);
            expect(store.upsert('swarm', peer(o.n, o.seeder), now)).toBe(before ? (before.seeder ? 'seeder' : 'leecher') : 'absent');
            model.set(o.n, { seeder: o.seeder, seen: now });
          } else if (o.kind === 'remove') {
            store.remove('swarm', peer(o.n, false).key);
            model.delete(o.n);
          } else if (o.kind === 'expire') {
            store.expire(now - o.age);
            for (const [n, p] of model) if (p.seen < now - o.age) model.delete(n);
          } else {
            const listed = store.list('swarm', o.want, peer(o.n, false).key).map((p) => p.port - 1000);
            expect(new Set(listed).size).toBe(listed.length);
            expect(listed).not.toContain(o.n);
            for (const n of listed) expect(model.has(n)).toBe(true);
            expect(listed).toHaveLength(Math.min(o.want, model.size - (model.has(o.n) ? 1 : 0)));
          }
          const seeders = [...model.values()].filter((p) => p.seeder).length;
          expect(store.counts('swarm')).toMatchObject({ complete: seeders, incomplete: model.size - seeders });
          expect(store.size).toBe(model.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
