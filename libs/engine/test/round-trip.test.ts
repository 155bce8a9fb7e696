import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WireDecoder } from '../../wire/src/decode.js';
import { encodeHandshake, encodeMessage } from '../../wire/src/encode.js';
import type { BlockRef } from '../../wire/src/messages.js';
import { Bitfield } from '../src/bitfield.js';
import { Engine } from '../src/index.js';
import { cleanupAfterEach, describeFile, pieceFrame, scriptedPeer } from './loopback-fixtures.js';

const { cleanups, tempDir } = cleanupAfterEach();
const PIECE = 32 * 1024;
const DELAY_MS = 300;

describe('a peer\'s round trip', () => {
  it('is measured by the torrent from requests sent into an empty pipeline, so a distant peer gets a pipeline to match', async () => {
    const data = randomBytes(4 * PIECE);
    const info = describeFile('far.bin', data, PIECE);
    // A seeder that answers every batch of requests DELAY_MS late, and lacks the last
    // piece, so the download never completes and the peer stays connected.
    const port = await scriptedPeer(cleanups, '127.0.0.1', (socket) => {
      const bits = new Bitfield(info.pieceCount);
      for (const i of [0, 1, 2]) bits.set(i);
      const decoder = new WireDecoder(
        {
          onHandshake: () => {
            socket.write(encodeHandshake({ reserved: Buffer.alloc(8), infoHash: info.infoHash, peerId: randomBytes(20) }));
            socket.write(encodeMessage({ type: 'bitfield', bitfield: Buffer.from(bits.bytes) }));
            socket.write(encodeMessage({ type: 'unchoke' }));
          },
          onMessage: (m) => {
            if (m.type !== 'request') return;
            const r: BlockRef = { index: m.index, begin: m.begin, length: m.length };
            setTimeout(() => socket.writable && socket.write(pieceFrame(info, data, r)), DELAY_MS);
          },
          onError: () => socket.destroy(),
        },
        { expectHandshake: true, pieceCount: info.pieceCount },
      );
      socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    });
    const engine = new Engine({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => engine.close());
    await engine.listen();
    const t = await engine.addTorrent(info, { dir: await tempDir(), mode: 'download', peers: [{ host: '127.0.0.1', port }] });

    for (const end = Date.now() + 10_000; t.stats().verifiedPieces < 3; await new Promise((r) => setTimeout(r, 10))) {
      if (Date.now() > end) throw new Error('three pieces did not arrive within 10 s');
    }
    const [peer] = t.stats().peerStats;
    expect(peer?.roundTripMs).toBeGreaterThanOrEqual(DELAY_MS - 5);
    expect(peer?.roundTripMs).toBeLessThan(DELAY_MS + 1000);
  }, 30_000);
});
