import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.js';
import { Peer } from '../src/peer.js';
import type { PeerConnection } from '../src/peer-connection.js';
import type { PieceStorage } from '../src/storage.js';
import { RateGate } from '../src/token-bucket.js';
import { SEND_HIGH_WATER, SEND_HIGH_WATER_MIN, Uploader } from '../src/uploader.js';

const PIECE = 32 * 1024;
const BLOCK = 16 * 1024;
const PIECES = 4;
/** Every piece's bytes differ from every other's. */
const data = Buffer.from(Array.from({ length: PIECES * PIECE }, (_, i) => (Math.floor(i / PIECE) * 37 + i) % 251));

/** Storage over `data` whose reads finish when the test says so, as a disk's do later. */
function slowStorage(): PieceStorage & { finish(): Promise<void> } {
  const pending: (() => void)[] = [];
  return {
    length: data.length,
    read(offset, target) {
      return new Promise<void>((resolve) => {
        pending.push(() => {
          target.set(data.subarray(offset, offset + target.byteLength));
          resolve();
        });
      });
    },
    async write() {},
    async sync() {},
    async close() {},
    async finish() {
      while (pending.length) pending.shift()!();
      // Let the cache's and the uploader's continuations run.
      for (let i = 0; i < 10; i++) await Promise.resolve();
    },
  };
}

/**
 * The peer's end of the socket, as the uploader sees it: what was sent, in order. A
 * socket that `takesNothing` keeps every frame queued (a receiver that cannot keep up);
 * otherwise each block reaches the kernel at once.
 */
function peerWithSocket(clock: ManualClock, port: number, { pieces = PIECES, takesNothing = false } = {}): { peer: Peer; sent: { index: number; begin: number; bytes: Buffer }[]; queued: () => number } {
  const sent: { index: number; begin: number; bytes: Buffer }[] = [];
  let queued = 0;
  const conn = {
    remoteAddress: '127.0.0.1',
    remotePort: port,
    remoteHandshake: { peerId: Buffer.alloc(20, port % 256), reserved: Buffer.alloc(8), infoHash: Buffer.alloc(20) },
    closed: false,
    get queuedBytes() {
      return queued;
    },
    supportsFast: false,
    send() {},
    destroy() {},
    cork() {},
    uncork() {},
    sendPiece(index: number, begin: number, block: Uint8Array, onFlushed?: () => void) {
      if (takesNothing) {
        queued += 13 + block.byteLength;
        return;
      }
      // Copied when it "reaches the kernel", which is now: what the peer receives.
      sent.push({ index, begin, bytes: Buffer.from(block) });
      onFlushed?.();
    },
  } as unknown as PeerConnection;
  const peer = new Peer(conn, pieces, clock);
  peer.amChoking = false;
  return { peer, sent, queued: () => queued };
}

describe('Uploader', () => {
  function setup() {
    const clock = new ManualClock();
    const storage = slowStorage();
    // One block per 100 ms, and the bucket starts empty, so every block waits for the rate.
    const gate = new RateGate(BLOCK * 10, BLOCK, clock);
    expect(gate.takeSync(BLOCK)).toBe(true);
    // Room for one piece: a second piece read evicts the first.
    const uploader = new Uploader({ storage, pieceLength: PIECE, pieceSize: () => PIECE, readCacheBytes: PIECE, gate, mayServe: () => true, onSent: () => undefined, onFlood: () => undefined, onError: (e) => { throw e; } });
    return { clock, storage, gate, uploader };
  }

  it('sends a block from its own piece when other reads evict that piece while the block waits for the rate', async () => {
    const { clock, storage, uploader } = setup();
    const a = peerWithSocket(clock, 1001);
    const b = peerWithSocket(clock, 1002);
    const c = peerWithSocket(clock, 1003);
    uploader.request(a.peer, { index: 0, begin: 0, length: BLOCK });
    await storage.finish();
    // A's block waits for the rate. Meanwhile B's request reads piece 1, which evicts
    // piece 0, and C's reads piece 2 into whatever memory is free.
    uploader.request(b.peer, { index: 1, begin: 0, length: BLOCK });
    await storage.finish();
    uploader.request(c.peer, { index: 2, begin: 0, length: BLOCK });
    await storage.finish();
    for (let i = 0; i < 5; i++) {
      clock.advance(200);
      await storage.finish();
    }
    expect(a.sent.map((s) => [s.index, s.begin])).toEqual([[0, 0]]);
    expect(a.sent[0]!.bytes.equals(data.subarray(0, BLOCK))).toBe(true);
    for (const s of [...b.sent, ...c.sent]) expect(s.bytes.equals(data.subarray(s.index * PIECE + s.begin, s.index * PIECE + s.begin + BLOCK)), `piece ${s.index}`).toBe(true);
    expect(b.sent.length + c.sent.length).toBe(2);
  });

  it('sends nothing for a request cancelled while it waited, and the next one from its own piece', async () => {
    const { clock, storage, uploader } = setup();
    const a = peerWithSocket(clock, 1004);
    uploader.request(a.peer, { index: 0, begin: 0, length: BLOCK });
    uploader.request(a.peer, { index: 1, begin: BLOCK, length: BLOCK });
    await storage.finish();
    uploader.cancel(a.peer, { index: 0, begin: 0, length: BLOCK });
    for (let i = 0; i < 5; i++) {
      clock.advance(200);
      await storage.finish();
    }
    expect(a.sent.map((s) => [s.index, s.begin])).toEqual([[1, BLOCK]]);
    expect(a.sent[0]!.bytes.equals(data.subarray(PIECE + BLOCK, 2 * PIECE))).toBe(true);
  });
});

describe('Uploader send queue', () => {
  const pieceLength = 256 * 1024;
  const pieces = 40;
  const content = Buffer.alloc(pieces * pieceLength, 7);
  const storage: PieceStorage = {
    length: content.length,
    async read(offset, target) {
      target.set(content.subarray(offset, offset + target.byteLength));
    },
    async write() {},
    async sync() {},
    async close() {},
  };

  /** Unsent bytes the uploader leaves in the socket of a peer we have been sending `rate` bytes a second. */
  async function queuedFor(rate: number): Promise<number> {
    const clock = new ManualClock();
    const uploader = new Uploader({ storage, pieceLength, pieceSize: () => pieceLength, readCacheBytes: 64 * 1024 * 1024, gate: new RateGate(Infinity, BLOCK, clock), mayServe: () => true, onSent: () => undefined, onFlood: () => undefined, onError: (e) => { throw e; } });
    const { peer, queued } = peerWithSocket(clock, 2000 + Math.round(rate / 1000), { pieces, takesNothing: true });
    // A second's worth in each second of the meter's 4 s window.
    for (let t = 0; t < 4; t++) {
      if (t > 0) clock.advance(1000);
      peer.upload.add(rate);
    }
    expect(peer.upload.rate()).toBe(rate);
    for (let index = 0; index < pieces; index++) {
      for (let begin = 0; begin < pieceLength; begin += BLOCK) uploader.request(peer, { index, begin, length: BLOCK });
    }
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    return queued();
  }

  it('keeps about 20 ms of a peer\'s rate queued beyond the kernel, between one block and a ceiling, so what follows is not held back', async () => {
    const frame = 13 + BLOCK;
    const slow = await queuedFor(50_000);
    expect(slow).toBeGreaterThanOrEqual(SEND_HIGH_WATER_MIN);
    expect(slow).toBeLessThan(SEND_HIGH_WATER_MIN + frame);
    const middling = await queuedFor(5_000_000);
    expect(middling).toBeGreaterThanOrEqual(100_000);
    expect(middling).toBeLessThan(100_000 + frame);
    const fast = await queuedFor(400_000_000);
    expect(fast).toBeGreaterThanOrEqual(SEND_HIGH_WATER);
    expect(fast).toBeLessThan(SEND_HIGH_WATER + frame);
  });
});
