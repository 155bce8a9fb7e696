import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WireDecoder } from '../../wire/src/decode.js';
import { encodeHandshake, encodeMessage } from '../../wire/src/encode.js';
import type { BlockRef } from '../../wire/src/messages.js';
import { Bitfield } from '../src/bitfield.js';
import { systemClock, type Clock } from '../src/clock.js';
import { Engine, type Torrent, type TorrentDescriptor } from '../src/index.js';
import { cleanupAfterEach, describeFile, pieceFrame, scriptedPeer } from './loopback-fixtures.js';

const { cleanups, tempDir } = cleanupAfterEach();
const PIECE = 32 * 1024;

/** Real time, but the torrent's once-a-second housekeeping runs only when the test calls tick(). */
function ticksOnDemand(): Clock & { tick(): void } {
  const intervals = new Set<() => void>();
  return {
    ...systemClock,
    setInterval: (fn) => {
      intervals.add(fn);
      return fn;
    },
    clearInterval: (handle) => void intervals.delete(handle as () => void),
    tick: () => {
      for (const fn of [...intervals]) fn();
    },
  };
}

function bitfieldOf(info: TorrentDescriptor, pieces: readonly number[]): Buffer {
  const bits = new Bitfield(info.pieceCount);
  for (const i of pieces) bits.set(i);
  return Buffer.from(bits.bytes);
}

/**
 * A scripted peer holding `has`. A seeder (`data` given) unchokes us and answers
 * requests and is not interested in us; the others are. Each records the HAVEs it is
 * sent, with the number of the socket read each arrived in.
 */
async function scriptedHolder(info: TorrentDescriptor, has: readonly number[], data?: Buffer) {
  const haves: { index: number; read: number }[] = [];
  let reads = 0;
  const port = await scriptedPeer(cleanups, '127.0.0.1', (socket) => {
    const requests: BlockRef[] = [];
    const decoder = new WireDecoder(
      {
        onHandshake: () => {
          socket.write(encodeHandshake({ reserved: Buffer.alloc(8), infoHash: info.infoHash, peerId: randomBytes(20) }));
          socket.write(encodeMessage({ type: 'bitfield', bitfield: bitfieldOf(info, has) }));
          socket.write(encodeMessage({ type: data ? 'unchoke' : 'interested' }));
        },
        onMessage: (m) => {
          if (m.type === 'have') haves.push({ index: m.index, read: reads });
          if (m.type === 'request') requests.push({ index: m.index, begin: m.begin, length: m.length });
        },
        onError: () => socket.destroy(),
      },
      { expectHandshake: true, pieceCount: info.pieceCount },
    );
    socket.on('data', (chunk: Buffer) => {
      reads++;
      decoder.push(chunk);
      if (data) for (const r of requests.splice(0)) socket.write(pieceFrame(info, data, r));
    });
  });
  return { port, haves };
}

async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !done(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
  }
}

async function downloader(info: TorrentDescriptor, clock: Clock, peers: number[]): Promise<Torrent> {
  const engine = new Engine({ host: '127.0.0.1', port: 0, clock });
  cleanups.push(() => engine.close());
  await engine.listen();
  return engine.addTorrent(info, { dir: await tempDir(), mode: 'download', peers: peers.map((port) => ({ host: '127.0.0.1', port })) });
}

describe('HAVEs for pieces a peer holds already', () => {
  it('wait for the next tick and go together, while a peer lacking the piece hears at once', async () => {
    const data = randomBytes(6 * PIECE);
    const info = describeFile('held.bin', data, PIECE);
    // The seeder lacks piece 5, so the download stays unfinished and only ticks send what is held.
    const seeder = await scriptedHolder(info, [0, 1, 2, 3, 4], data);
    const holder = await scriptedHolder(info, [0, 1, 2]);
    const lacker = await scriptedHolder(info, []);
    const clock = ticksOnDemand();
    const t = await downloader(info, clock, [seeder.port, holder.port, lacker.port]);

    await until('five pieces', () => t.stats().verifiedPieces === 5);
    await until('five HAVEs at the peer lacking them', () => lacker.haves.length === 5);
    await until('two HAVEs at the peer holding 0-2', () => holder.haves.length === 2);
    expect(holder.haves.map((h) => h.index).sort()).toEqual([3, 4]);

    clock.tick();
    await until('the held HAVEs', () => holder.haves.length === 5);
    const held = holder.haves.slice(2);
    expect(held.map((h) => h.index).sort()).toEqual([0, 1, 2]);
    // One write: the three arrive in one read.
    expect(new Set(held.map((h) => h.read)).size).toBe(1);
    // A peer not interested in us hears of every piece at once, those it holds too: a
    // super-seeding origin learns so that the pieces it offered spread.
    expect(seeder.haves.map((h) => h.index).sort()).toEqual([0, 1, 2, 3, 4]);
  }, 30_000);

  it('go out when the download completes, without waiting for a tick: the peer then knows we are a seed', async () => {
    const data = randomBytes(6 * PIECE);
    const info = describeFile('held-complete.bin', data, PIECE);
    const seeder = await scriptedHolder(info, [0, 1, 2, 3, 4, 5], data);
    const holder = await scriptedHolder(info, [0, 1, 2]);
    const t = await downloader(info, ticksOnDemand(), [seeder.port, holder.port]);
    await new Promise((resolve, reject) => {
      t.once('complete', resolve);
      t.once('error', reject);
    });
    await until('a HAVE for every piece', () => holder.haves.length === 6);
    expect(holder.haves.map((h) => h.index).sort()).toEqual([0, 1, 2, 3, 4, 5]);
  }, 30_000);
});
