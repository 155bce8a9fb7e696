import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeHandshake, encodeMessage } from '../../wire/src/encode.js';
import { WireDecoder } from '../../wire/src/decode.js';
import { Engine } from '../src/index.js';
import { cleanupAfterEach, describeFile } from './loopback-fixtures.js';

const { cleanups, tempDir } = cleanupAfterEach();
const KIB = 1024;

function engine(downloadRateLimit?: number, unchokeSlots?: number): Engine {
  const e = new Engine({ host: '127.0.0.1', port: 0, ...(downloadRateLimit ? { downloadRateLimit } : {}), ...(unchokeSlots ? { choker: { slots: unchokeSlots, optimisticSlots: 0 } } : {}) });
  cleanups.push(() => e.close());
  return e;
}

/** An origin super-seeding `pieces` random pieces of `pieceLength`, with `unchokeSlots` if given. */
async function superSeeder(name: string, pieces: number, pieceLength: number, unchokeSlots?: number) {
  const data = randomBytes(pieces * pieceLength);
  const info = describeFile(name, data, pieceLength);
  const originDir = await tempDir();
  await writeFile(join(originDir, info.name), data);
  const origin = engine(undefined, unchokeSlots);
  const originPort = await origin.listen();
  const seed = await origin.addTorrent(info, { dir: originDir, mode: 'seed', superSeed: true });
  return { data, info, originPort, seed };
}

describe('super-seeding offers follow each peer rate', () => {
  // Decision 0007: once measured for 5 s, a peer may hold ceil(8 × its rate / the
  // fastest peer's) offers, at least 2: a slow peer no longer sits on 8 pieces nobody
  // else can get from the origin. The policy is unit-tested; this is the wiring, with
  // rates measured from real transfers.
  it("caps a slow peer's offers by its measured rate while the fastest keeps all 8", async () => {
    const { info, originPort, seed } = await superSeeder('offers.bin', 160, 256 * KIB);

    // Two fast peers and one at a thirty-second of their rate, all knowing each other.
    const engines = [engine(2048 * KIB), engine(2048 * KIB), engine(64 * KIB)];
    const ports: number[] = [];
    for (const e of engines) ports.push(await e.listen());
    for (const [i, e] of engines.entries()) {
      const peers = [{ host: '127.0.0.1', port: originPort }, ...ports.filter((_, j) => j < i).map((port) => ({ host: '127.0.0.1', port }))];
      await e.addTorrent(info, { dir: await tempDir(), mode: 'download', peers });
    }

    await new Promise((r) => setTimeout(r, 7_000));
    const stats = seed.stats();
    expect(stats.superSeeding).toBe(true);
    const limitOf = (port: number) => stats.peerStats.find((p) => p.listenPort === port)?.offers?.limit;
    const fastest = Math.max(limitOf(ports[0]!) ?? 0, limitOf(ports[1]!) ?? 0);
    expect(fastest, JSON.stringify(stats.peerStats.map((p) => [p.listenPort, p.uploadRate, p.offers]))).toBe(8);
    expect(limitOf(ports[2]!), JSON.stringify(stats.peerStats.map((p) => [p.listenPort, p.uploadRate, p.offers]))).toBe(2);
  }, 30_000);

  it('unchokes every peer, whatever its slots: an offer to a peer left choked is a piece nobody can fetch', async () => {
    const { info, originPort, seed } = await superSeeder('unchoked.bin', 64, 64 * KIB, 1);
    // Slow leechers, so the super-seeder is still at it when it is looked at.
    const leechers = [engine(32 * KIB), engine(32 * KIB), engine(32 * KIB)];
    for (const e of leechers) {
      await e.listen();
      await e.addTorrent(info, { dir: await tempDir(), mode: 'download', peers: [{ host: '127.0.0.1', port: originPort }] });
    }
    const unchoked = () => seed.stats().peerStats.filter((p) => !p.amChoking).length;
    for (let i = 0; i < 100 && unchoked() < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(seed.stats().superSeeding).toBe(true);
    expect(unchoked(), JSON.stringify(seed.stats().peerStats.map((p) => [p.listenPort, p.amChoking, p.offers]))).toBe(3);
  }, 30_000);

  it('offers the pieces a stalled peer holds to another peer once they are overdue, and never before', async () => {
    const { data, info, originPort, seed } = await superSeeder('stalled.bin', 8, 16 * KIB);

    // A peer that takes every offer (8 pieces, all of them) and never asks for a byte.
    const offered = new Set<number>();
    const stalled = connect(originPort, '127.0.0.1');
    cleanups.push(async () => void stalled.destroy());
    const decoder = new WireDecoder({
      onHandshake: () => undefined,
      onMessage: (m) => {
        if (m.type === 'have') offered.add(m.index);
      },
      onError: () => undefined,
    });
    stalled.on('data', (chunk: Buffer) => decoder.push(chunk));
    stalled.on('error', () => undefined);
    stalled.write(
      Buffer.concat([
        encodeHandshake({ reserved: Buffer.alloc(8), infoHash: info.infoHash, peerId: randomBytes(20) }),
        encodeMessage({ type: 'bitfield', bitfield: Buffer.alloc(1) }),
        encodeMessage({ type: 'interested' }),
      ]),
    );
    for (let i = 0; i < 100 && offered.size < 8; i++) await new Promise((r) => setTimeout(r, 20));
    expect(offered.size).toBe(8);

    // Every piece is out with it: a leecher that joins now gets no second copy...
    const leecher = engine();
    await leecher.listen();
    const dir = await tempDir();
    const download = await leecher.addTorrent(info, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: originPort }] });
    const joined = Date.now();
    const done = new Promise<number>((resolve) => download.once('complete', () => resolve(Date.now())));
    await new Promise((r) => setTimeout(r, 5_000));
    expect(download.stats().downloadedBytes).toBe(0);
    expect(seed.stats().superSeeding).toBe(true);
    // ...until the stalled peer's offers are 10 s old: then each goes to one more peer.
    const finished = await done;
    expect(finished - joined).toBeGreaterThan(5_000);
    expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
  }, 30_000);
});

