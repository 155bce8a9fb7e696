import { describe, expect, it } from 'vitest';
import type { AgentIdentity, Holding } from '../../contracts/src/agent-channel.js';
import { Fleet } from '../src/fleet.js';
import { ManualFleetClock } from './manual-fleet-clock.js';

const identity = (name: string): AgentIdentity => ({ name, labels: {}, addresses: ['10.0.0.1'], peerPort: 6881, diskFreeBytes: 0, version: 'test' });
const complete: Holding = { name: 'app', version: '1', infoHash: 'ab'.repeat(20), state: 'complete', verifiedBytes: 1, totalBytes: 1, bytesFromOrigin: 1, bytesFromPeers: 0, bytesSent: 0 };
const states = (fleet: Fleet) => fleet.list().map((a) => `${a.name}:${a.lost ? 'lost' : 'active'}`);

describe('Fleet expiry', () => {
  it('marks a silent agent lost after the timeout and forgets it after the longer one, with what it reported', () => {
    const clock = new ManualFleetClock();
    const fleet = new Fleet(clock, { lostAfterMs: 10_000, forgetAfterMs: 60_000 });
    fleet.recordSync(identity('a'), [complete]);
    fleet.recordSync(identity('b'), []);
    expect(fleet.completedAt('a', complete)).toBe(clock.now());
    clock.advance(10_000);
    expect(states(fleet)).toEqual(['a:active', 'b:active']);
    clock.advance(1);
    fleet.recordProgress('b', []);
    expect(states(fleet)).toEqual(['a:lost', 'b:active']);
    expect(fleet.active().map((a) => a.name)).toEqual(['b']);
    clock.advance(60_000);
    fleet.recordProgress('b', []);
    expect(states(fleet)).toEqual(['b:active']);
    // Its completion times went with it: a new agent of the same name starts afresh.
    expect(fleet.completedAt('a', complete)).toBeUndefined();
    fleet.recordSync(identity('a'), []);
    expect(states(fleet)).toEqual(['a:active', 'b:active']);
  });

  it('counts an agent waiting on a held sync as seen, however long it is held, and sees it again when answered', () => {
    const clock = new ManualFleetClock();
    const fleet = new Fleet(clock, { lostAfterMs: 2_000, forgetAfterMs: 5_000 });
    fleet.recordSync(identity('a'), []);
    const answered = fleet.holdSync('a');
    void fleet.waitForChange(fleet.revision, 25_000);
    clock.advance(20_000);
    expect(states(fleet)).toEqual(['a:active']);
    answered();
    answered();
    clock.advance(2_000);
    expect(states(fleet)).toEqual(['a:active']);
    clock.advance(1);
    expect(states(fleet)).toEqual(['a:lost']);
    clock.advance(3_000);
    expect(states(fleet)).toEqual([]);
  });
});

describe('agent expiry settings', () => {
  it('forgets after an hour by default, always later than the timeout, and refuses a forget time inside it', async () => {
    const { loadControllerConfig } = await import('../src/config.js');
    expect((await loadControllerConfig({ env: {} })).agentForgetSeconds).toBe(3600);
    expect((await loadControllerConfig({ flags: { 'agent-timeout': '7200' }, env: {} })).agentForgetSeconds).toBe(14_400);
    expect((await loadControllerConfig({ flags: { 'agent-timeout': '2', 'agent-forget': '4' }, env: {} })).agentForgetSeconds).toBe(4);
    await expect(loadControllerConfig({ flags: { 'agent-timeout': '60', 'agent-forget': '60' }, env: {} })).rejects.toThrow(/must be longer than agentTimeoutSeconds/);
    await expect(loadControllerConfig({ flags: { 'agent-forget': '0' }, env: {} })).rejects.toThrow(/--agent-forget/);
  });
});
