import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WireDecoder } from '../../wire/src/decode.js';
import { encodeHandshake, encodeMessage } from '../../wire/src/encode.js';
import { Reserved, type BlockRef } from '../../wire/src/messages.js';
import { Engine, type TorrentDescriptor } from '../src/index.js';
import { cleanupAfterEach, describeFile, pieceFrame, scriptedPeer } from './loopback-fixtures.js';

const BLOCK = 16 * 1024;

const { cleanups, tempDir } = cleanupAfterEach();

/**
 * A peer that says it has every piece, never unchokes (so it is never asked for
 * anything) and pushes blocks of random bytes at real block offsets, a few every
 * millisecond or two: into whatever piece the downloader is assembling from others.
 */
async function injector(info: TorrentDescriptor): Promise<{ port: number; pushed: () => number }> {
  let pushed = 0;
  const port = await scriptedPeer(cleanups, '127.0.0.2', (socket, every) => {
    let handshook = false;
    socket.on('data', () => {
      if (handshook) return;
      handshook = true;
      const reserved = Buffer.alloc(8);
      reserved[Reserved.fastExtension.byte]! |= Reserved.fastExtension.mask;
      socket.write(encodeHandshake({ reserved, infoHash: info.infoHash, peerId: randomBytes(20) }));
      socket.write(encodeMessage({ type: 'have-all' }));
      every(2, () => {
        for (let i = 0; i < 4 && !socket.destroyed; i++) {
          const index = Math.floor(Math.random() * info.pieceCount);
          const begin = BLOCK * Math.floor((Math.random() * info.pieceLength) / BLOCK);
          socket.write(encodeMessage({ type: 'piece', index, begin, block: randomBytes(BLOCK) }));
          pushed++;
        }
      });
    });
  });
  return { port, pushed: () => pushed };
}

describe('blocks nobody asked for', () => {
  it('never enter a piece: pushed into pieces being fetched from an honest seeder, they fail no hash and the file is intact', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const info = describeFile('pushed.bin', data, 64 * 1024);
    const seedDir = await tempDir();
    const dir = await tempDir();
    await writeFile(join(seedDir, info.name), data);
    // Slow enough that pieces stay half-assembled while the injector pushes.
    const seeder = new Engine({ host: '127.0.0.1', port: 0, uploadRateLimit: 2 * 1024 * 1024 });
    cleanups.push(() => seeder.close());
    const seedPort = await seeder.listen();
    await seeder.addTorrent(info, { dir: seedDir, mode: 'seed' });
    const bad = await injector(info);

    const leecher = new Engine({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => leecher.close());
    await leecher.listen();
    const t = await leecher.addTorrent(info, { dir, mode: 'download', peers: [{ host: '127.0.0.2', port: bad.port }, { host: '127.0.0.1', port: seedPort }] });
    await new Promise((resolve, reject) => {
      t.once('complete', resolve);
      t.once('error', reject);
    });
    expect(bad.pushed()).toBeGreaterThan(100);
    expect(t.stats().hashFailures).toBe(0);
    expect(t.stats().wastedBytes).toBeGreaterThan(0);
    expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
  }, 30_000);
});

/**
 * A seeder that, with the fast extension, chokes us on every batch of requests and then
 * answers them anyway, then unchokes: BEP 6 lets a choking peer still send what it was
 * asked for. Every block it sends was requested of it.
 */
async function chokingSeeder(info: TorrentDescriptor, data: Buffer): Promise<{ port: number; sent: () => number }> {
  let sent = 0;
  const port = await scriptedPeer(cleanups, '127.0.0.1', (socket) => {
    let batch: BlockRef[] = [];
    const decoder = new WireDecoder(
      {
        onHandshake: () => {
          const reserved = Buffer.alloc(8);
          reserved[Reserved.fastExtension.byte]! |= Reserved.fastExtension.mask;
          socket.write(encodeHandshake({ reserved, infoHash: info.infoHash, peerId: randomBytes(20) }));
          socket.write(encodeMessage({ type: 'have-all' }));
          socket.write(encodeMessage({ type: 'unchoke' }));
        },
        onMessage: (m) => {
          if (m.type === 'request') batch.push({ index: m.index, begin: m.begin, length: m.length });
        },
        onError: () => socket.destroy(),
      },
      { expectHandshake: true, pieceCount: info.pieceCount },
    );
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      if (batch.length === 0) return;
      socket.write(encodeMessage({ type: 'choke' }));
      for (const r of batch) {
        socket.write(pieceFrame(info, data, r));
        sent++;
      }
      batch = [];
      socket.write(encodeMessage({ type: 'unchoke' }));
    });
  });
  return { port, sent: () => sent };
}

describe('blocks a peer sends after choking us', () => {
  it('are kept: requests given up on a choke may still be answered, and nothing is fetched twice', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const info = describeFile('choked.bin', data, 64 * 1024);
    const dir = await tempDir();
    const seeder = await chokingSeeder(info, data);
    const leecher = new Engine({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => leecher.close());
    await leecher.listen();
    const t = await leecher.addTorrent(info, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: seeder.port }] });
    await new Promise((resolve, reject) => {
      t.once('complete', resolve);
      t.once('error', reject);
    });
    expect(seeder.sent()).toBe(data.length / BLOCK);
    expect(t.stats().wastedBytes).toBe(0);
    expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
  }, 30_000);
});
