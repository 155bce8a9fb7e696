/**
 * Memory a direct (O_DIRECT) read may fill. The kernel moves such a read straight from
 * the device into our memory, with no page-cache copy, but only into memory aligned to
 * the device's block; JavaScript cannot choose an allocation's address, and a
 * WebAssembly memory always starts on a page boundary, so aligned slabs are made from
 * those. Which buffers are aligned is remembered here, so a storage can tell from a
 * target alone whether it may read into it directly.
 */

import { DIRECT_IO_ALIGNMENT } from '../../hashing/src/hash-pool.js';

const WASM_PAGE = 65536;

const alignedBuffers = new WeakSet<ArrayBufferLike>();

/**
 * `bytes` of page-aligned memory, or undefined where none can be had (no WebAssembly
 * under --jitless; a virtual-memory limit: each slab reserves address space well beyond
 * its size).
 */
export function allocateAligned(bytes: number): Buffer | undefined {
  let memory: { buffer: ArrayBuffer };
  try {
    memory = new (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory({ initial: Math.ceil(bytes / WASM_PAGE) });
  } catch {
    return undefined;
  }
  alignedBuffers.add(memory.buffer);
  return Buffer.from(memory.buffer, 0, bytes);
}

/** Whether `view` lies in memory from allocateAligned(). */
export function isAlignedMemory(view: Uint8Array): boolean {
  return alignedBuffers.has(view.buffer);
}

function roundUpToBlock(n: number): number {
  return Math.ceil(n / DIRECT_IO_ALIGNMENT) * DIRECT_IO_ALIGNMENT;
}

/**
 * A view of `length` bytes (rounded up to whole blocks) at `from` in `target`, for a
 * direct read, if `target`'s memory is aligned there and has room for the whole blocks;
 * otherwise undefined.
 */
export function directReadView(target: Uint8Array, from: number, length: number): Uint8Array | undefined {
  const start = target.byteOffset + from;
  const blocks = roundUpToBlock(length);
  if (!alignedBuffers.has(target.buffer) || start % DIRECT_IO_ALIGNMENT !== 0 || start + blocks > target.buffer.byteLength) return undefined;
  return new Uint8Array(target.buffer, start, blocks);
}
