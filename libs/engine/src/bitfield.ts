/** A set of piece indexes, stored as the BEP 3 bitfield: high bit of byte 0 is piece 0. */
export class Bitfield {
  readonly bytes: Uint8Array;
  private setCount = 0;

  constructor(readonly size: number, bytes?: Uint8Array) {
    this.bytes = new Uint8Array(Math.ceil(size / 8));
    if (bytes) {
      this.bytes.set(bytes.subarray(0, this.bytes.length));
      this.clearSpareBits();
      this.setCount = countBits(this.bytes);
    }
  }

  static full(size: number): Bitfield {
    const b = new Bitfield(size);
    b.bytes.fill(0xff);
    b.clearSpareBits();
    b.setCount = size;
    return b;
  }

  has(index: number): boolean {
    return (this.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  /** Returns true when the bit was not already set. */
  set(index: number): boolean {
    const mask = 0x80 >> (index & 7);
    const i = index >> 3;
    if (this.bytes[i]! & mask) return false;
    this.bytes[i]! |= mask;
    this.setCount++;
    return true;
  }

  clear(index: number): boolean {
    const mask = 0x80 >> (index & 7);
    const i = index >> 3;
    if (!(this.bytes[i]! & mask)) return false;
    this.bytes[i]! &= ~mask;
    this.setCount--;
    return true;
  }

  get count(): number {
    return this.setCount;
  }

  get complete(): boolean {
    return this.setCount === this.size;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }

  private clearSpareBits(): void {
    const spare = this.bytes.length * 8 - this.size;
    if (spare > 0) this.bytes[this.bytes.length - 1]! &= 0xff << spare;
  }
}

function countBits(bytes: Uint8Array): number {
  let n = 0;
  for (let b of bytes) {
    while (b) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}
