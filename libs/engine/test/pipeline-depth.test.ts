import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/clock.js';
import { INITIAL_PIPELINE, Peer } from '../src/peer.js';
import type { PeerConnection } from '../src/peer-connection.js';

const BLOCK = 16 * 1024;

/** A clock moved by hand, so a ten-second exchange runs in microseconds. */
function manualClock(): Clock & { advance(ms: number): void } {
  let t = 0;
  return {
    now: () => t,
    advance: (ms) => (t += ms),
    setTimeout: () => undefined,
    clearTimeout: () => undefined,
    setInterval: () => undefined,
    clearInterval: () => undefined,
  };
}

/** Only what a Peer reads of its connection when it is made. */
function connection(): PeerConnection {
  return { remoteAddress: '10.0.0.2', remotePort: 6881, remoteHandshake: { peerId: Buffer.alloc(20), infoHash: Buffer.alloc(20), reserved: Buffer.alloc(8) } } as unknown as PeerConnection;
}

/**
 * Downloads from a peer `rttMs` away whose link carries `linkBytesPerSecond`: every round
 * trip it answers what we had in flight, up to what its link moves in that time. Returns
 * the peer and the rate of the last second.
 */
function exchange(rttMs: number, linkBytesPerSecond: number, seconds: number): { peer: Peer; lastSecondRate: number } {
  const clock = manualClock();
  const peer = new Peer(connection(), 1, clock);
  peer.reqq = 1000;
  const perRtt = Math.floor((linkBytesPerSecond * rttMs) / 1000 / BLOCK);
  const steps = Math.round((seconds * 1000) / rttMs);
  const stepsASecond = Math.round(1000 / rttMs);
  let lastSecond = 0;
  for (let step = 1; step <= steps; step++) {
    const answered = Math.min(peer.pipelineDepth(BLOCK), perRtt);
    // Everything in flight is answered each round trip, so every request goes into an empty pipeline.
    peer.requesting(clock.now());
    clock.advance(rttMs);
    for (let i = 0; i < answered; i++) {
      peer.download.add(BLOCK);
      peer.blockArrived(clock.now());
    }
    if (step > steps - stepsASecond) lastSecond += answered * BLOCK;
    if (step % stepsASecond === 0) peer.tick();
  }
  return { peer, lastSecondRate: lastSecond };
}

describe('a peer\'s pipeline depth', () => {
  it('after slow start holds a quarter of a second of the rate: two and a half round trips of a peer 100 ms away, so its link stays full', () => {
    const link = 8e6;
    const { peer, lastSecondRate } = exchange(100, link, 12);
    const perRtt = (link * 0.1) / BLOCK;
    expect(peer.slowStart).toBe(false);
    expect(peer.minRoundTripMs).toBe(100);
    expect(lastSecondRate).toBeGreaterThan(0.95 * link);
    expect(peer.pipelineDepth(BLOCK)).toBeGreaterThan(2 * perRtt);
    expect(peer.pipelineDepth(BLOCK)).toBeLessThan(3 * perRtt);
  });

  it('keeps a link 400 ms away full too: past a quarter of a second, the depth follows the round trip it measured', () => {
    const link = 4e6;
    const { peer, lastSecondRate } = exchange(400, link, 20);
    const perRtt = Math.floor((link * 0.4) / BLOCK);
    expect(peer.slowStart).toBe(false);
    expect(peer.minRoundTripMs).toBe(400);
    expect(lastSecondRate).toBeGreaterThan(0.95 * link);
    expect(peer.pipelineDepth(BLOCK)).toBeGreaterThanOrEqual(2 * perRtt);
    expect(peer.pipelineDepth(BLOCK)).toBeLessThan(2 * perRtt + 2);
  });

  it('times the round trip by a block it asked for, not by a late answer to a request it had given up on', () => {
    const clock = manualClock();
    const peer = new Peer(connection(), 1, clock);
    peer.requesting(clock.now());
    clock.advance(5);
    peer.blockArrived(clock.now(), false);
    expect(peer.minRoundTripMs).toBe(Infinity);
    clock.advance(295);
    peer.blockArrived(clock.now(), true);
    expect(peer.minRoundTripMs).toBe(300);
    // Requests sent while others are in flight wait behind them: they time nothing.
    peer.outstanding.set(1, { index: 0, begin: 0, length: BLOCK });
    peer.requesting(clock.now());
    clock.advance(100);
    peer.blockArrived(clock.now(), true);
    expect(peer.minRoundTripMs).toBe(300);
  });

  it('starts timing afresh when the requests it was timing were given up (a choke), so the wait while choked is not a round trip', () => {
    const clock = manualClock();
    const peer = new Peer(connection(), 1, clock);
    peer.requesting(clock.now());
    peer.outstanding.set(1, { index: 0, begin: 0, length: BLOCK });
    // Choked before any answer: the request is given up, and unchoked ten seconds later.
    clock.advance(10);
    peer.giveUp(1);
    peer.outstanding.clear();
    clock.advance(10_000);
    peer.requesting(clock.now());
    clock.advance(50);
    peer.blockArrived(clock.now(), true);
    expect(peer.minRoundTripMs).toBe(50);
  });

  it('falls to the floor, not to nothing, for a peer that has stopped sending', () => {
    const clock = manualClock();
    const peer = new Peer(connection(), 1, clock);
    for (let i = 0; i < 200; i++) peer.blockArrived(clock.now());
    peer.download.add(200 * BLOCK);
    clock.advance(1000);
    peer.tick();
    clock.advance(1000);
    peer.tick();
    expect(peer.slowStart).toBe(false);
    clock.advance(10_000);
    expect(peer.pipelineDepth(BLOCK)).toBe(INITIAL_PIPELINE);
  });
});
