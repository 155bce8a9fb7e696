import { allocateAligned, isAlignedMemory } from './aligned-memory.js';
import type { PieceStorage } from './storage.js';

interface Entry {
  buf: Buffer;
  /** Blocks of this piece queued in sockets and not yet flushed: the memory must stay. */
  pins: number;
}

/**
 * Whole pieces read from storage for upload, kept while memory allows (least recently
 * used goes first). Peers ask for 16 KiB blocks; reading the whole piece once turns
 * sixty-four small reads into one and lets several peers share it.
 *
 * Buffers are reused, not reallocated: a fresh 1 MiB buffer per piece made the garbage
 * collector the seeder's largest cost. A piece whose blocks still sit in a socket's send
 * queue is pinned and never recycled until they are flushed.
 *
 * The budget's buffers are cut from one aligned slab, so a storage opened for direct I/O
 * reads pieces into them straight from the device (FileStorage.read); pieces loaded
 * beyond the budget, while others are pinned, get memory of their own.
 */
export class PieceReadCache {
  private readonly entries = new Map<number, Entry>();
  private readonly loading = new Map<number, Promise<Entry>>();
  private readonly free: Buffer[] = [];
  /** Aligned memory for the budget's pieces, made on first use; false where none can be had. */
  private slab: Buffer | undefined | false;
  private slabSlotsUsed = 0;
  private bytes = 0;
  /** Loads since the last trim: none means nobody is downloading from us. */
  private loadsSinceTrim = 0;

  constructor(
    private readonly storage: PieceStorage,
    private readonly pieceLength: number,
    private readonly pieceSize: (index: number) => number,
    private readonly budgetBytes: number,
  ) {}

  /** The piece if it is in memory now; marks it recently used. */
  get(index: number): Buffer | undefined {
    const entry = this.entries.get(index);
    if (!entry) return undefined;
    this.entries.delete(index);
    this.entries.set(index, entry);
    return entry.buf;
  }

  load(index: number): Promise<Buffer> {
    const cached = this.get(index);
    if (cached) return Promise.resolve(cached);
    let pending = this.loading.get(index);
    this.loadsSinceTrim++;
    if (!pending) {
      // Room first, so the piece can take the memory of the one it displaces.
      this.bytes += this.pieceLength;
      this.evict();
      const whole = this.free.pop() ?? this.slabSlot() ?? Buffer.allocUnsafeSlow(this.pieceLength);
      const entry: Entry = { buf: whole.subarray(0, this.pieceSize(index)), pins: 0 };
      pending = this.storage.read(index * this.pieceLength, entry.buf).then(
        () => {
          this.loading.delete(index);
          this.entries.set(index, entry);
          return entry;
        },
        (err: unknown) => {
          this.loading.delete(index);
          this.recycle(entry);
          throw err;
        },
      );
      this.loading.set(index, pending);
    }
    return pending.then((e) => e.buf);
  }

  /** Keeps a cached piece's memory from reuse; returns the matching unpin. */
  pin(index: number): () => void {
    const entry = this.entries.get(index);
    if (!entry) return () => undefined;
    entry.pins++;
    return () => {
      entry.pins--;
      if (entry.pins === 0 && this.entries.get(index) !== entry) this.recycle(entry);
    };
  }

  private evict(): void {
    for (const [index, entry] of this.entries) {
      if (this.bytes <= this.budgetBytes) return;
      this.entries.delete(index);
      if (entry.pins === 0) this.recycle(entry);
      // A pinned piece leaves the cache now and its memory returns when unpinned.
    }
  }

  private slabSlot(): Buffer | undefined {
    const slots = Math.floor(this.budgetBytes / this.pieceLength);
    if (this.slab === false || this.slabSlotsUsed >= slots) return undefined;
    this.slab ??= allocateAligned(slots * this.pieceLength) ?? false;
    if (this.slab === false) return undefined;
    return this.slab.subarray(this.slabSlotsUsed++ * this.pieceLength, this.slabSlotsUsed * this.pieceLength);
  }

  private recycle(entry: Entry): void {
    this.bytes -= this.pieceLength;
    // While there is a slab only its slots are kept: memory taken beyond the budget, or a
    // slab given up by trimIfIdle() while this piece was pinned, is let go.
    if (this.slab ? entry.buf.buffer !== this.slab.buffer : isAlignedMemory(entry.buf)) return;
    this.free.push(Buffer.from(entry.buf.buffer, entry.buf.byteOffset, this.pieceLength));
  }

  /**
   * Called now and then: if nothing was read since the last call, gives the memory back.
   * An origin seeds many releases, and a release nobody fetches any more should not keep
   * its cache.
   */
  trimIfIdle(): void {
    if (this.loadsSinceTrim > 0) {
      this.loadsSinceTrim = 0;
      return;
    }
    for (const [index, entry] of this.entries) {
      if (entry.pins > 0) continue;
      this.entries.delete(index);
      this.bytes -= this.pieceLength;
    }
    this.dropFreeMemory();
  }

  clear(): void {
    this.entries.clear();
    this.dropFreeMemory();
    this.bytes = 0;
  }

  private dropFreeMemory(): void {
    this.free.length = 0;
    if (this.slab) this.slab = undefined;
    this.slabSlotsUsed = 0;
  }
}
