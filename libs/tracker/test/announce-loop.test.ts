import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../engine/src/clock.js';
import { AnnounceLoop, trackerTiers, type AnnounceLoopOptions } from '../src/announce-loop.js';
import { TrackerClient, type AnnounceRequest, type AnnounceResponse, type Announcer, type TrackerPeer } from '../src/client.js';
import { startTrackerServer, type RunningTracker } from '../src/server.js';
import { deadPort, id20 } from './tracker-fixtures.js';

const INFO_HASH = id20(0x5a);

/** Passes announces on and remembers each one. */
class Recording implements Announcer {
  readonly calls: AnnounceRequest[] = [];
  constructor(private readonly inner: Announcer) {}
  get url(): string {
    return this.inner.url;
  }
  announce(request: AnnounceRequest): Promise<AnnounceResponse> {
    this.calls.push(request);
    return this.inner.announce(request);
  }
  get events(): (string | undefined)[] {
    return this.calls.map((c) => c.event);
  }
}

/** A tracker that answers from a script, for timing rules no real tracker needs to exercise. */
class Scripted implements Announcer {
  readonly calls: AnnounceRequest[] = [];
  constructor(
    readonly url: string,
    private readonly answer: (request: AnnounceRequest) => Promise<AnnounceResponse>,
  ) {}
  announce(request: AnnounceRequest): Promise<AnnounceResponse> {
    this.calls.push(request);
    return this.answer(request);
  }
}

const running: (AnnounceLoop | RunningTracker)[] = [];
afterEach(async () => {
  for (const item of running.splice(0)) {
    if (item instanceof AnnounceLoop) void item.stop();
    else await item.close();
  }
});

async function tracker(interval = 60): Promise<RunningTracker> {
  const t = await startTrackerServer({ port: 0, interval });
  running.push(t);
  return t;
}

async function deadClient(): Promise<TrackerClient> {
  return new TrackerClient(`http://127.0.0.1:${await deadPort()}/announce`, { timeoutMs: 2000 });
}

function loop(tiers: Announcer[][], clock: ManualClock, overrides: Partial<AnnounceLoopOptions> = {}) {
  const peers: TrackerPeer[][] = [];
  const errors: Error[] = [];
  const stats = { uploaded: 0, downloaded: 0, left: 1000 };
  const l = new AnnounceLoop({
    tiers,
    infoHash: INFO_HASH,
    peerId: id20(1),
    port: 7001,
    stats: () => stats,
    clock,
    random: () => 0,
    onPeers: (p) => peers.push(p),
    onError: (e) => errors.push(e),
    ...overrides,
  });
  running.push(l);
  return { loop: l, peers, errors, stats };
}

/** Waits for the loop to settle on its next announce and returns how far off it is. */
async function nextDelay(l: AnnounceLoop, clock: ManualClock): Promise<number> {
  await vi.waitFor(() => expect(l.nextAnnounceAt).toBeDefined());
  return (l.nextAnnounceAt as number) - clock.now();
}

const swarm = (t: RunningTracker) => t.core.store.counts(INFO_HASH.toString('latin1'));

describe('AnnounceLoop against the tracker over loopback HTTP', () => {
  it('sends started, finds peers, then announces every interval', async () => {
    const t = await tracker(60);
    const clock = new ManualClock();
    const rec = new Recording(new TrackerClient(t.url));
    const seeder = loop([[rec]], clock, { peerId: id20(1), port: 7001 });
    seeder.stats.left = 0;
    seeder.loop.start();
    await vi.waitFor(() => expect(swarm(t).complete).toBe(1));
    const leecher = loop([[new TrackerClient(t.url)]], clock, { peerId: id20(2), port: 7002 });
    leecher.loop.start();
    await vi.waitFor(() => expect(leecher.peers).toEqual([[{ host: '127.0.0.1', port: 7001 }]]));

    expect(await nextDelay(seeder.loop, clock)).toBe(60_000);
    expect(rec.events).toEqual(['started']);
    clock.advance(59_999);
    expect(rec.calls).toHaveLength(1);
    clock.advance(1);
    await vi.waitFor(() => expect(rec.events).toEqual(['started', undefined]));
    await vi.waitFor(() => expect(seeder.peers.at(-1)).toEqual([{ host: '127.0.0.1', port: 7002 }]));
  });

  it('sends completed once, and stopped on stop()', async () => {
    const t = await tracker();
    const clock = new ManualClock();
    const rec = new Recording(new TrackerClient(t.url));
    const { loop: l, stats } = loop([[rec]], clock);
    l.start();
    await nextDelay(l, clock);
    expect(swarm(t)).toEqual({ complete: 0, incomplete: 1, downloaded: 0 });
    stats.left = 0;
    l.markCompleted();
    l.markCompleted();
    await vi.waitFor(() => expect(swarm(t)).toEqual({ complete: 1, incomplete: 0, downloaded: 1 }));
    await nextDelay(l, clock);
    l.markCompleted();
    await l.stop();
    expect(l.nextAnnounceAt).toBeUndefined();
    expect(rec.events).toEqual(['started', 'completed', 'stopped']);
    expect(swarm(t)).toEqual({ complete: 0, incomplete: 0, downloaded: 1 });
    clock.advance(3_600_000);
    expect(rec.calls).toHaveLength(3);
  });

  it('backs off from a dead tracker: 5 s doubling to 5 min, jittered by the random source', async () => {
    const clock = new ManualClock();
    const rec = new Recording(await deadClient());
    const { loop: l, errors } = loop([[rec]], clock, { random: () => 0 });
    l.start();
    let expectedErrors = 1;
    await vi.waitFor(() => expect(errors).toHaveLength(expectedErrors));
    expect(errors[0]?.message).toMatch(/ECONNREFUSED/);
    for (const delay of [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]) {
      expect(await nextDelay(l, clock)).toBe(delay);
      clock.advance(delay - 1);
      expect(rec.calls).toHaveLength(expectedErrors);
      clock.advance(1);
      expectedErrors++;
      await vi.waitFor(() => expect(errors).toHaveLength(expectedErrors));
    }
    expect(rec.events.every((e) => e === 'started')).toBe(true);
    await l.stop();

    // With the random source at its top, each wait is half as long.
    const jittered = new Recording(await deadClient());
    const j = loop([[jittered]], clock, { random: () => 0.999999 });
    j.loop.start();
    await vi.waitFor(() => expect(j.errors).toHaveLength(1));
    expect(await nextDelay(j.loop, clock)).toBe(2_500);
    clock.advance(2_500);
    await vi.waitFor(() => expect(j.errors).toHaveLength(2));
  });

  it('resets the backoff once the tracker answers again', async () => {
    const clock = new ManualClock();
    let up = false;
    const t = await tracker(60);
    const real = new TrackerClient(t.url);
    const flaky = new Scripted('http://flaky/announce', (r) => (up ? real.announce(r) : Promise.reject(new Error('down'))));
    const { loop: l, errors } = loop([[flaky]], clock);
    l.start();
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    clock.advance(5_000);
    await vi.waitFor(() => expect(errors).toHaveLength(2));
    up = true;
    expect(await nextDelay(l, clock)).toBe(10_000);
    clock.advance(10_000);
    await vi.waitFor(() => expect(swarm(t).incomplete).toBe(1));
    expect(await nextDelay(l, clock)).toBe(60_000);
    up = false;
    clock.advance(60_000);
    await vi.waitFor(() => expect(errors).toHaveLength(3));
    expect(await nextDelay(l, clock)).toBe(5_000);
    clock.advance(4_999);
    expect(flaky.calls).toHaveLength(4);
    clock.advance(1);
    await vi.waitFor(() => expect(flaky.calls).toHaveLength(5));
  });

  it('tries tiers in order and moves a tracker that answers to the front of its tier (BEP 12)', async () => {
    const t = await tracker();
    const clock = new ManualClock();
    const dead = new Recording(await deadClient());
    const live = new Recording(new TrackerClient(t.url));
    const backup = new Recording(new TrackerClient(t.url.replace('127.0.0.1', 'localhost')));
    // random 0 makes the BEP 12 shuffle reverse a two-tracker tier: [live, dead] is tried as [dead, live].
    const { loop: l } = loop([[live, dead], [backup]], clock);
    expect(l.trackerOrder).toEqual([[dead.url, live.url], [backup.url]]);
    l.start();
    await vi.waitFor(() => expect(live.events).toEqual(['started']));
    expect(dead.calls).toHaveLength(1);
    expect(backup.calls).toHaveLength(0);
    expect(l.trackerOrder).toEqual([[live.url, dead.url], [backup.url]]);
    expect(await nextDelay(l, clock)).toBe(60_000);
    clock.advance(60_000);
    await vi.waitFor(() => expect(live.events).toEqual(['started', undefined]));
    expect(dead.calls).toHaveLength(1);
  });

  it('falls through to the next tier when a whole tier is down', async () => {
    const t = await tracker();
    const clock = new ManualClock();
    const dead = new Recording(await deadClient());
    const backup = new Recording(new TrackerClient(t.url));
    const { loop: l, errors } = loop([[dead], [backup]], clock);
    l.start();
    await vi.waitFor(() => expect(backup.events).toEqual(['started']));
    expect(errors).toEqual([]);
    await l.stop();
    expect(backup.events).toEqual(['started', 'stopped']);
    expect(dead.events).toEqual(['started']);
  });

  it('never announces sooner than min interval, and stop() gives up after its timeout', async () => {
    const clock = new ManualClock();
    let hang = false;
    const scripted = new Scripted('http://scripted/announce', () =>
      hang ? new Promise<AnnounceResponse>(() => undefined) : Promise.resolve({ interval: 1, minInterval: 30, peers: [] }),
    );
    const { loop: l } = loop([[scripted]], clock, { stopTimeoutMs: 2_000 });
    l.start();
    expect(await nextDelay(l, clock)).toBe(30_000);
    clock.advance(29_999);
    expect(scripted.calls).toHaveLength(1);
    clock.advance(1);
    expect(await nextDelay(l, clock)).toBe(30_000);
    expect(scripted.calls).toHaveLength(2);
    hang = true;
    let stopped = false;
    const stopping = l.stop().then(() => (stopped = true));
    await vi.waitFor(() => expect(scripted.calls.at(-1)?.event).toBe('stopped'));
    clock.advance(1_999);
    await Promise.resolve();
    expect(stopped).toBe(false);
    clock.advance(1);
    await stopping;
    expect(stopped).toBe(true);
  });

  it('builds tiers from an announce-list, leaving out what it cannot speak', () => {
    const tiers = trackerTiers([['udp://a:1/announce', 'http://a:2/announce'], ['udp://b:1/announce'], ['https://c/announce']]);
    expect(tiers.map((t) => t.map((c) => c.url))).toEqual([['http://a:2/announce'], ['https://c/announce']]);
  });
});
