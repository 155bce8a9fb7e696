import type { PieceStorage } from './storage.js';

/**
 * Whole pieces read from storage for upload, kept while memory allows (least recently
 * used goes first). Peers ask for 16 KiB blocks; reading the whole piece once turns
 * sixty-four small reads into one and lets several peers share it.
 */
export class PieceReadCache {
  private readonly entries = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<Buffer>>();
  private bytes = 0;

  constructor(
    private readonly storage: PieceStorage,
    private readonly pieceLength: number,
    private readonly pieceSize: (index: number) => number,
    private readonly budgetBytes: number,
  ) {}

  /** The piece if it is in memory now; marks it recently used. */
  get(index: number): Buffer | undefined {
    const piece = this.entries.get(index);
    if (piece) {
      this.entries.delete(index);
      this.entries.set(index, piece);
    }
    return piece;
  }

  load(index: number): Promise<Buffer> {
    const cached = this.get(index);
    if (cached) return Promise.resolve(cached);
    let pending = this.loading.get(index);
    if (!pending) {
      const buf = Buffer.allocUnsafe(this.pieceSize(index));
      pending = this.storage.read(index * this.pieceLength, buf).then(
        () => {
          this.loading.delete(index);
          this.insert(index, buf);
          return buf;
        },
        (err: unknown) => {
          this.loading.delete(index);
          throw err;
        },
      );
      this.loading.set(index, pending);
    }
    return pending;
  }

  /** A piece just verified from download is served from memory without a read. */
  insert(index: number, piece: Buffer): void {
    if (this.entries.has(index)) return;
    this.entries.set(index, piece);
    this.bytes += piece.length;
    for (const [i, p] of this.entries) {
      if (this.bytes <= this.budgetBytes || this.entries.size <= 1) break;
      this.entries.delete(i);
      this.bytes -= p.length;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
