/**
 * When to announce, to which tracker, with which event. The HTTP is the Announcer's;
 * this owns only the schedule: `started`, then every `interval` (never sooner than
 * `min interval`), `completed` once, `stopped` at the end, exponential backoff while
 * every tracker fails. Trackers come in tiers (BEP 12): tiers are tried in order, and
 * a tracker that answers moves to the front of its tier.
 */
import type { Clock, Random } from '../../engine/src/clock.js';
import { TrackerClient, type AnnounceResponse, type Announcer, type TrackerClientOptions, type TrackerPeer } from './client.js';
import type { AnnounceEvent } from './query.js';

export interface TransferStats {
  uploaded: number;
  downloaded: number;
  left: number;
}

export interface AnnounceLoopOptions {
  /** announce-list tiers; a single tracker is `[[client]]`. */
  tiers: Announcer[][];
  infoHash: Buffer;
  peerId: Buffer;
  /** The port our peers listen on. */
  port: number;
  stats: () => TransferStats;
  clock: Clock;
  random?: Random;
  onPeers: (peers: TrackerPeer[]) => void;
  onError: (err: Error) => void;
  numwant?: number;
  /** First retry after this many ms, doubling per failure; default 5 s. */
  backoffInitialMs?: number;
  /** Retries never wait longer than this; default 5 min. */
  backoffMaxMs?: number;
  /** How long stop() waits for `stopped` to be delivered; default 3 s. */
  stopTimeoutMs?: number;
}

/** Whatever a tracker says, announcing more than once a second is never wanted. */
const MIN_DELAY_MS = 1000;

/** Clients for the trackers of an announce-list; URLs this client cannot speak (udp://) are left out. */
export function trackerTiers(announceList: string[][], options?: TrackerClientOptions): TrackerClient[][] {
  const tiers: TrackerClient[][] = [];
  for (const urls of announceList) {
    const tier: TrackerClient[] = [];
    for (const url of urls) {
      try {
        tier.push(new TrackerClient(url, options));
      } catch {
        // Not http(s): another tier may still reach the swarm.
      }
    }
    if (tier.length > 0) tiers.push(tier);
  }
  return tiers;
}

export class AnnounceLoop {
  private readonly tiers: Announcer[][];
  private readonly random: Random;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly stopTimeoutMs: number;
  /** Trackers that have our `started`, and so are owed a `stopped`. */
  private readonly started = new Set<Announcer>();
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private completedMarked = false;
  private completedPending = false;
  private failures = 0;
  private timer: unknown;
  private nextAt: number | undefined;
  private inFlight: Promise<unknown> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: AnnounceLoopOptions) {
    this.random = options.random ?? Math.random;
    this.backoffInitialMs = options.backoffInitialMs ?? 5_000;
    this.backoffMaxMs = options.backoffMaxMs ?? 300_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 3_000;
    // BEP 12: each tier is shuffled once so a fleet spreads over its trackers.
    this.tiers = options.tiers.filter((t) => t.length > 0).map((tier) => shuffle([...tier], this.random));
    if (this.tiers.length === 0) throw new Error('AnnounceLoop needs at least one tracker');
  }

  /** Sends `started` now and keeps announcing until stop(). */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    void this.cycle();
  }

  /** The download finished: send `completed` now (once, however often this is called). */
  markCompleted(): void {
    if (this.completedMarked) return;
    this.completedMarked = true;
    this.completedPending = true;
    if (this.state === 'running' && !this.inFlight) {
      this.options.clock.clearTimeout(this.timer);
      void this.cycle();
    }
  }

  /** Sends `stopped` to every tracker that knows us; resolves within stopTimeoutMs. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.state = 'stopped';
      this.options.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.nextAt = undefined;
      this.stopping = this.sendStopped();
    }
    return this.stopping;
  }

  /** Clock time of the next announce; undefined while one is under way or after stop(). */
  get nextAnnounceAt(): number | undefined {
    return this.nextAt;
  }

  /** The order trackers are tried in now, for status pages and tests. */
  get trackerOrder(): string[][] {
    return this.tiers.map((tier) => tier.map((t) => t.url));
  }

  private async cycle(): Promise<void> {
    this.timer = undefined;
    this.nextAt = undefined;
    if (this.state !== 'running' || this.inFlight) return;
    const attempt = this.announceOnce();
    this.inFlight = attempt;
    let response: AnnounceResponse | undefined;
    let failure: Error | undefined;
    try {
      response = await attempt;
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    this.inFlight = undefined;
    if (this.state !== 'running') return;
    if (response) {
      this.failures = 0;
      this.schedule(this.completedPending ? 0 : this.regularDelay(response));
      if (response.peers.length > 0) {
        try {
          this.options.onPeers(response.peers);
        } catch (err) {
          this.options.onError(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } else {
      this.failures++;
      this.schedule(this.backoffDelay());
      this.options.onError(failure as Error);
    }
  }

  private async announceOnce(): Promise<AnnounceResponse> {
    const stats = this.options.stats();
    const errors: Error[] = [];
    for (const tier of this.tiers) {
      for (let i = 0; i < tier.length; i++) {
        const tracker = tier[i] as Announcer;
        const event: AnnounceEvent | undefined = this.completedPending ? 'completed' : this.started.has(tracker) ? undefined : 'started';
        try {
          const response = await tracker.announce(this.request(stats, event));
          this.started.add(tracker);
          if (event === 'completed') this.completedPending = false;
          tier.splice(i, 1);
          tier.unshift(tracker);
          return response;
        } catch (err) {
          errors.push(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
    if (errors.length === 1) throw errors[0];
    throw new AggregateError(errors, `all ${errors.length} trackers failed: ${errors.map((e) => e.message).join('; ')}`);
  }

  private request(stats: TransferStats, event: AnnounceEvent | undefined) {
    const { infoHash, peerId, port, numwant } = this.options;
    return { infoHash, peerId, port, ...stats, ...(event ? { event } : {}), ...(numwant !== undefined ? { numwant } : {}) };
  }

  private regularDelay(response: AnnounceResponse): number {
    return Math.max(response.interval * 1000, (response.minInterval ?? 0) * 1000, MIN_DELAY_MS);
  }

  private backoffDelay(): number {
    const full = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** Math.min(this.failures - 1, 30));
    // Up to half off, so a fleet that lost its tracker together does not return together.
    return Math.round(full * (1 - this.random() / 2));
  }

  private schedule(ms: number): void {
    this.nextAt = this.options.clock.now() + ms;
    this.timer = this.options.clock.setTimeout(() => void this.cycle(), ms);
  }

  private async sendStopped(): Promise<void> {
    const deliver = async () => {
      // An announce still on its way may yet register us; wait for it, then say goodbye.
      await this.inFlight?.catch(() => undefined);
      const stats = this.options.stats();
      await Promise.allSettled([...this.started].map((t) => t.announce({ ...this.request(stats, 'stopped'), numwant: 0 })));
    };
    let timer: unknown;
    const timeout = new Promise<void>((resolve) => {
      timer = this.options.clock.setTimeout(resolve, this.stopTimeoutMs);
    });
    await Promise.race([deliver(), timeout]);
    this.options.clock.clearTimeout(timer);
  }
}

/** Fisher–Yates with the injected random source. */
function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
