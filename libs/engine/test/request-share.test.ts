import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WireDecoder } from '../../wire/src/decode.js';
import { encodeHandshake, encodeMessage } from '../../wire/src/encode.js';
import type { BlockRef } from '../../wire/src/messages.js';
import { Engine, type TorrentDescriptor } from '../src/index.js';
import { cleanupAfterEach, describeFile, pieceFrame, scriptedPeer } from './loopback-fixtures.js';

const { cleanups, tempDir } = cleanupAfterEach();

/**
 * A seeder that answers its first `fastBlocks` requests at once, so the downloader's
 * pipeline to it grows deep, and from then on one request every `slowMs`: a peer whose
 * upload got busy with others.
 */
async function tiringSeeder(info: TorrentDescriptor, data: Buffer, fastBlocks: number, slowMs: number): Promise<{ port: number; sent: () => number; queued: () => number }> {
  let sent = 0;
  const queue: BlockRef[] = [];
  const port = await scriptedPeer(cleanups, '127.0.0.1', (socket, every) => {
    const answer = (r: BlockRef) => {
      socket.write(pieceFrame(info, data, r));
      sent++;
    };
    every(slowMs, () => {
      const r = queue.shift();
      if (r && !socket.destroyed) answer(r);
    });
    const decoder = new WireDecoder(
      {
        onHandshake: () => {
          socket.write(encodeHandshake({ reserved: Buffer.alloc(8), infoHash: info.infoHash, peerId: randomBytes(20) }));
          socket.write(encodeMessage({ type: 'bitfield', bitfield: Buffer.alloc(Math.ceil(info.pieceCount / 8), 0xff) }));
          socket.write(encodeMessage({ type: 'unchoke' }));
        },
        onMessage: (m) => {
          if (m.type !== 'request') return;
          const r = { index: m.index, begin: m.begin, length: m.length };
          if (sent < fastBlocks) answer(r);
          else queue.push(r);
        },
        onError: () => socket.destroy(),
      },
      { expectHandshake: true, pieceCount: info.pieceCount },
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  return { port, sent: () => sent, queued: () => queue.length };
}

describe('the request budget among peers that unchoke us', () => {
  it('is shared: a peer whose pipeline grew deep before it slowed down cannot keep a fast seed that joins later idle', async () => {
    // One 16 KiB block a piece and room for 64 pieces at once: a budget of 64 requests.
    const pieceLength = 16 * 1024;
    const data = randomBytes(640 * pieceLength);
    const info = describeFile('shared.bin', data, pieceLength);
    const tiring = await tiringSeeder(info, data, 100, 40);

    const leecher = new Engine({ host: '127.0.0.1', port: 0, writeBufferBytes: 64 * pieceLength });
    cleanups.push(() => leecher.close());
    await leecher.listen();
    const dir = await tempDir();
    const t = await leecher.addTorrent(info, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: tiring.port }] });
    const done = new Promise((resolve, reject) => {
      t.once('complete', resolve);
      t.once('error', reject);
    });
    while (tiring.sent() < 100) await new Promise((r) => setTimeout(r, 10));

    const seedDir = await tempDir();
    await writeFile(join(seedDir, info.name), data);
    const seeder = new Engine({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => seeder.close());
    const seedPort = await seeder.listen();
    await seeder.addTorrent(info, { dir: seedDir, mode: 'seed' });
    t.addPeers([{ host: '127.0.0.1', port: seedPort }], true);
    await done;

    // Taking every request the budget allows, the tiring peer would send one piece every
    // 40 ms for the rest of the download (over 20 s) while the seed waited for a slot.
    console.log(`tiring peer sent ${tiring.sent()} of ${info.pieceCount} pieces`);
    expect(tiring.sent()).toBeLessThan(info.pieceCount / 2);
    expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
  }, 30_000);

  it('holds half a second of a peer\'s rate once slow start is over, not the depth slow start grew to', async () => {
    // A pipeline is a queue at the peer: a piece it has just received reaches us only after
    // everything we asked before. Slow start grows the depth by one a block until the rate
    // stops growing, and kept, that depth queued seconds of requests at every peer.
    const pieceLength = 16 * 1024;
    const data = randomBytes(3200 * pieceLength); // a whole number of bitfield bytes (the seeder sets every bit), and more than 15 s of it at the slow pace
    const info = describeFile('depth.bin', data, pieceLength);
    const tiring = await tiringSeeder(info, data, 150, 10);
    const leecher = new Engine({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => leecher.close());
    await leecher.listen();
    await leecher.addTorrent(info, { dir: await tempDir(), mode: 'download', peers: [{ host: '127.0.0.1', port: tiring.port }] });

    let peak = 0;
    let settled = NaN;
    const started = Date.now();
    while (Date.now() - started < 15_000) {
      await new Promise((r) => setTimeout(r, 50));
      peak = Math.max(peak, tiring.queued());
      if (peak > 150 && tiring.queued() < 80) {
        settled = (Date.now() - started) / 1000;
        break;
      }
    }
    // At one block every 10 ms, half a second is about 50 requests; slow start had grown
    // past the peer's reqq (250) by the time the rate stopped growing.
    console.log(`requests queued at the peer: ${peak} at most, under 80 after ${settled} s; ${tiring.sent()} answered`);
    expect(peak).toBeGreaterThan(150);
    expect(settled).toBeLessThan(10);
  }, 30_000);
});
