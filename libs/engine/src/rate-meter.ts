import type { Clock } from './clock.js';

const SLOT_MS = 250;

/** Bytes per second over a sliding window, plus the running total. */
export class RateMeter {
  total = 0;
  private readonly slots: Float64Array;
  private currentSlot = 0;
  /** The slots' sum, kept as they change: rate() is asked on every block sent and received. */
  private windowBytes = 0;

  constructor(
    private readonly clock: Clock,
    windowMs = 4000,
  ) {
    this.slots = new Float64Array(Math.max(2, Math.round(windowMs / SLOT_MS)));
    this.currentSlot = Math.floor(clock.now() / SLOT_MS);
  }

  add(bytes: number): void {
    this.advance();
    this.total += bytes;
    this.slots[this.currentSlot % this.slots.length]! += bytes;
    this.windowBytes += bytes;
  }

  /** Bytes per second over the window. */
  rate(): number {
    this.advance();
    return this.windowBytes / ((this.slots.length * SLOT_MS) / 1000);
  }

  private advance(): void {
    const slot = Math.floor(this.clock.now() / SLOT_MS);
    if (slot === this.currentSlot) return;
    const steps = Math.min(slot - this.currentSlot, this.slots.length);
    for (let i = 1; i <= steps; i++) {
      const at = (this.currentSlot + i) % this.slots.length;
      this.windowBytes -= this.slots[at]!;
      this.slots[at] = 0;
    }
    this.currentSlot = slot;
  }
}
