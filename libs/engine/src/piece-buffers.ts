/**
 * Buffers that assemble downloaded pieces, backed by SharedArrayBuffers so the hash
 * workers read them in place. A bounded pool: the count in use is what bounds the
 * engine's write-back memory, and reuse keeps large allocations off the hot path.
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

  /** A buffer of `size` bytes (≤ pieceLength), or undefined when the pool is spent. */
  acquire(size: number): Buffer | undefined {
    if (this.inUse >= this.capacity) return undefined;
    this.inUse++;
    const whole = this.free.pop() ?? Buffer.from(new SharedArrayBuffer(this.pieceLength));
    return whole.subarray(0, size);
  }

  release(buf: Buffer): void {
    this.inUse--;
    this.free.push(Buffer.from(buf.buffer, 0, this.pieceLength));
  }
}
