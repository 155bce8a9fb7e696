import { describe, expect, it } from 'vitest';
import type { Holding } from '../../contracts/src/agent-channel.js';
import { Fleet } from '../src/fleet.js';
import { releaseStatus } from '../src/rollout.js';
import type { ReleaseRecord } from '../src/release-store.js';
import { ManualFleetClock } from './manual-fleet-clock.js';

const release: ReleaseRecord = { name: 'web', version: '1', infoHash: 'ab'.repeat(20), bytes: 1000, createdAt: new Date(1_000_000).toISOString(), selector: { zone: 'a' }, metadata: {}, unpack: false, content: 'content/artifact' };

function holding(state: Holding['state'], extra: Partial<Holding> = {}): Holding {
  return { name: 'web', version: '1', infoHash: release.infoHash, state, verifiedBytes: 0, totalBytes: 1000, bytesFromOrigin: 0, bytesFromPeers: 0, bytesSent: 0, ...extra };
}

function identity(name: string, zone: string) {
  return { name, labels: { zone }, addresses: [], peerPort: 1, diskFreeBytes: 1, version: 't' };
}

describe('rollout status', () => {
  it('counts targeted nodes by state and times 50/90/100 % from publish', () => {
    const clock = new ManualFleetClock();
    const fleet = new Fleet(clock);
    for (let i = 0; i < 10; i++) fleet.recordSync(identity(`n${i}`, 'a'), []);
    fleet.recordSync(identity('other', 'b'), [holding('complete')]);
    // Five complete at +1 s … +5 s, four more at +9 s, one failed.
    for (let i = 0; i < 9; i++) fleet.recordProgress(`n${i}`, [holding('complete', { completedAt: 1_000_000 + (i < 5 ? (i + 1) * 1000 : 9000), verifiedBytes: 1000 })]);
    fleet.recordProgress('n9', [holding('failed', { error: 'no space left on device' })]);
    const s = releaseStatus({ release, agents: fleet.list(), originBytesSent: 1200, completedAt: (a, h) => fleet.completedAt(a, h) });
    expect(s.rollout).toMatchObject({ targeted: 10, complete: 9, failed: 1, pending: 0, downloading: 0, timeTo50: 5, timeTo90: 9, timeTo100: null, originBytesSent: 1200 });
    expect(s.rollout.nodes.find((n) => n.agent === 'n9')).toMatchObject({ state: 'failed', error: 'no space left on device' });
  });

  it('falls back to when the controller first saw a completion', () => {
    const clock = new ManualFleetClock();
    const fleet = new Fleet(clock);
    fleet.recordSync(identity('n0', 'a'), []);
    clock.advance(4000);
    fleet.recordProgress('n0', [holding('complete')]);
    clock.advance(4000);
    fleet.recordProgress('n0', [holding('complete')]);
    const s = releaseStatus({ release, agents: fleet.list(), originBytesSent: 0, completedAt: (a, h) => fleet.completedAt(a, h) });
    expect(s.rollout.timeTo100).toBe(4);
  });
});

describe('fleet long-poll', () => {
  it('answers at once on a stale revision, on a change, or when the wait ends', async () => {
    const clock = new ManualFleetClock();
    const fleet = new Fleet(clock);
    const rev = fleet.revision;
    await fleet.waitForChange(rev - 1, 10_000);

    let woke = false;
    const waiting = fleet.waitForChange(rev, 10_000).then(() => (woke = true));
    clock.advance(5000);
    await Promise.resolve();
    expect(woke).toBe(false);
    fleet.bump();
    await waiting;
    expect(fleet.revision).toBe(rev + 1);

    let timedOut = false;
    const idle = fleet.waitForChange(fleet.revision, 60_000).then(() => (timedOut = true));
    clock.advance(25_000);
    await idle;
    expect(timedOut).toBe(true);
  });
});
