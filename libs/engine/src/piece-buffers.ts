/**
 * Buffers that assemble downloaded pieces. A bounded pool: the count in use is what
 * bounds the engine's write-back memory, and reuse keeps large allocations (and the
 * garbage collector) off the hot path. Each buffer owns its whole ArrayBuffer, so it can
 * be moved to a hash worker and back without a copy.
 */
export class PieceBufferPool {
  private readonly free: Buffer[] = [];
  private inUse = 0;

  constructor(
    private readonly pieceLength: number,
    readonly capacity: number,
  ) {}

  get available(): number {
    return this.capacity - this.inUse;
  }

  /** A whole-piece buffer, or undefined when the pool is spent. */
  acquire(): Buffer | undefined {
    if (this.inUse >= this.capacity) return undefined;
    this.inUse++;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.pieceLength);
  }

  /** Returns a buffer (possibly a new view of memory that came back from a worker). */
  release(buf: Buffer): void {
    this.inUse--;
    if (buf.length === this.pieceLength && buf.byteOffset === 0) this.free.push(buf);
  }

  /** A buffer that was moved away and never came back still frees its place. */
  forget(): void {
    this.inUse--;
  }
}
