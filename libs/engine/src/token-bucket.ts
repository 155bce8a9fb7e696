import type { Clock } from './clock.js';

/**
 * Bytes per second with a bounded burst. Tokens are counted lazily on each call, so an
 * idle bucket costs no timer. A take larger than the burst is allowed once the bucket is
 * full and leaves it in debt, which keeps the long-run rate exact without starving
 * messages bigger than the burst.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;
  private ratePerMs: number;

  /** `rateBytesPerSecond`: Infinity means unlimited, 0 means paused. */
  constructor(
    rateBytesPerSecond: number,
    readonly burstBytes: number,
    private readonly clock: Clock,
  ) {
    if (!(burstBytes > 0) || !Number.isFinite(burstBytes)) throw new RangeError(`burstBytes must be a positive number, got ${burstBytes}`);
    this.ratePerMs = checkRate(rateBytesPerSecond) / 1000;
    this.tokens = burstBytes;
    this.refilledAt = this.ratePerMs === Infinity ? 0 : clock.now();
  }

  get rate(): number {
    return this.ratePerMs * 1000;
  }

  tryTake(n: number): boolean {
    if (this.ratePerMs === Infinity) return true;
    this.refill();
    if (this.tokens < Math.min(n, this.burstBytes)) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` bytes may be taken: 0 if now, Infinity while paused. */
  delayFor(n: number): number {
    if (this.ratePerMs === Infinity) return 0;
    this.refill();
    const missing = Math.min(n, this.burstBytes) - this.tokens;
    if (missing <= 0) return 0;
    return this.ratePerMs === 0 ? Infinity : Math.ceil(missing / this.ratePerMs);
  }

  setRate(rateBytesPerSecond: number): void {
    const next = checkRate(rateBytesPerSecond) / 1000;
    if (this.ratePerMs === Infinity) {
      // Unlimited kept no account; start limited from a full bucket, as an idle one would be.
      this.tokens = this.burstBytes;
      this.refilledAt = this.clock.now();
    } else {
      this.refill();
    }
    this.ratePerMs = next;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.refilledAt;
    this.refilledAt = now;
    if (elapsed > 0) this.tokens = Math.min(this.burstBytes, this.tokens + elapsed * this.ratePerMs);
  }
}

function checkRate(rate: number): number {
  if (!(rate >= 0)) throw new RangeError(`rateBytesPerSecond must be 0, positive or Infinity, got ${rate}`);
  return rate;
}

interface Waiter {
  n: number;
  cb: () => void;
}

/**
 * A token bucket shared by many senders, served first come, first served: once anyone
 * waits, later takes queue behind it even if they are smaller, so a stream of small
 * blocks cannot starve a large one.
 *
 * Hot path: `if (!gate.takeSync(n)) gate.take(n, send)`. That allocates nothing while
 * bytes are available, and costs one comparison when the rate is unlimited.
 */
export class RateGate {
  private readonly bucket: TokenBucket;
  private readonly queue: Waiter[] = [];
  private head = 0;
  private timer: unknown = undefined;

  constructor(
    rateBytesPerSecond: number,
    burstBytes: number,
    private readonly clock: Clock,
  ) {
    this.bucket = new TokenBucket(rateBytesPerSecond, burstBytes, clock);
  }

  get rate(): number {
    return this.bucket.rate;
  }

  /** Senders waiting for bytes. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Takes `n` bytes now if nobody is waiting and the bucket has them. */
  takeSync(n: number): boolean {
    return this.head === this.queue.length && this.bucket.tryTake(n);
  }

  /**
   * Queues for `n` bytes; `cb` runs from a timer once they are taken, never synchronously,
   * so callers see one order of events. Returns a function that withdraws the request
   * (a disconnected peer must not spend the bytes); it does nothing once `cb` has run.
   */
  take(n: number, cb: () => void): () => void {
    const waiter: Waiter = { n, cb };
    this.queue.push(waiter);
    if (this.waiting === 1) this.schedule();
    return () => {
      const i = this.queue.indexOf(waiter, this.head);
      if (i < 0) return;
      this.queue.splice(i, 1);
      if (i === this.head) this.reschedule();
    };
  }

  setRate(rateBytesPerSecond: number): void {
    this.bucket.setRate(rateBytesPerSecond);
    this.reschedule();
  }

  /** Drops every waiter without calling it, and the timer with them. */
  clear(): void {
    this.queue.length = 0;
    this.head = 0;
    this.cancelTimer();
  }

  private reschedule(): void {
    if (this.waiting > 0) this.schedule();
    else this.cancelTimer();
  }

  private schedule(): void {
    this.cancelTimer();
    const first = this.queue[this.head]!;
    const delay = this.bucket.delayFor(first.n);
    // Paused: setRate() wakes the queue. (A timer of Infinity ms would fire at once.)
    if (delay === Infinity) return;
    this.timer = this.clock.setTimeout(() => this.release(), delay);
  }

  private release(): void {
    this.timer = undefined;
    try {
      while (this.waiting > 0) {
        const first = this.queue[this.head]!;
        if (!this.bucket.tryTake(first.n)) break;
        this.head++;
        first.cb();
      }
    } finally {
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
        this.cancelTimer();
      } else {
        // Served entries are dropped in bulk, not one shift() per block.
        if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
          this.queue.splice(0, this.head);
          this.head = 0;
        }
        if (this.timer === undefined) this.schedule();
      }
    }
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
