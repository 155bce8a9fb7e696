import type { Clock, Random } from './clock.js';

export interface PeerAddress {
  host: string;
  port: number;
}

interface Entry extends PeerAddress {
  key: string;
  /** Given by the user: retried forever. Others are forgotten after MAX_FAILURES. */
  persistent: boolean;
  failures: number;
  nextAttemptAt: number;
  /** 'seed': a seed we dropped because we are one too; not dialled again. */
  state: 'idle' | 'connecting' | 'connected' | 'self' | 'seed';
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;
const MAX_FAILURES = 8;

/**
 * The addresses a torrent may dial, and when: a failed or dropped connection is retried
 * with exponential backoff (with jitter, so a fleet that lost its origin does not come
 * back in lockstep).
 */
export class PeerBook {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  keyOf(a: PeerAddress): string {
    return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  }

  add(a: PeerAddress, persistent: boolean): void {
    const key = this.keyOf(a);
    const existing = this.entries.get(key);
    if (existing) {
      existing.persistent ||= persistent;
      return;
    }
    this.entries.set(key, { ...a, key, persistent, failures: 0, nextAttemptAt: this.clock.now(), state: 'idle' });
  }

  /** Up to `max` addresses whose turn has come. */
  due(max: number, now: number): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const e of this.entries.values()) {
      if (out.length >= max) break;
      if (e.state === 'idle' && e.nextAttemptAt <= now) out.push(e);
    }
    return out;
  }

  attempting(key: string): void {
    const e = this.entries.get(key);
    if (e) e.state = 'connecting';
  }

  connected(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.state = 'connected';
    e.failures = 0;
  }

  isSelf(key: string): void {
    const e = this.entries.get(key);
    if (e) e.state = 'self';
  }

  /** A seed, and we are one: redialling it every second, as a clean close would, only churns. */
  isSeed(key: string): void {
    const e = this.entries.get(key);
    if (e) e.state = 'seed';
  }

  /** The address is known to be back (its owner said so): due now, whatever its backoff. */
  retryNow(key: string, now: number): void {
    const e = this.entries.get(key);
    if (!e || e.state !== 'idle') return;
    e.failures = 0;
    e.nextAttemptAt = now;
  }

  disconnected(key: string, now: number, failed: boolean): void {
    const e = this.entries.get(key);
    if (!e || e.state === 'self' || e.state === 'seed') return;
    e.state = 'idle';
    if (failed) e.failures++;
    if (!e.persistent && e.failures >= MAX_FAILURES) {
      this.entries.delete(key);
      return;
    }
    const backoff = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, e.failures - 1));
    e.nextAttemptAt = now + backoff * (0.75 + this.random() * 0.5);
  }

  get size(): number {
    return this.entries.size;
  }
}
