import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

/**
 * SHA-1 on worker threads, so hashing never blocks the thread that moves bytes.
 *
 * Buffers backed by a SharedArrayBuffer are hashed in place (no copy); any other buffer
 * is copied once into the message to the worker. Jobs go to the worker with the fewest
 * bytes queued.
 */
export class HashPool {
  private readonly workers: PoolWorker[] = [];
  private nextJobId = 1;
  private closed = false;

  constructor(size: number = availableParallelism()) {
    for (let i = 0; i < Math.max(1, size); i++) this.workers.push(new PoolWorker());
  }

  get size(): number {
    return this.workers.length;
  }

  /** SHA-1 of `data` (a view; only its bytes are hashed). */
  sha1(data: Uint8Array): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    let target = this.workers[0]!;
    for (const w of this.workers) if (w.queuedBytes < target.queuedBytes) target = w;
    return target.hash(this.nextJobId++, data);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

interface Pending {
  resolve: (digest: Buffer) => void;
  reject: (err: Error) => void;
  bytes: number;
}

// Shared buffers are sent to a worker once and then named by a slot number: posting a
// SharedArrayBuffer costs far more than posting a few numbers (measured ~0.7 ms vs
// microseconds per 1 MiB piece), and pieces are assembled in a small reused set.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let slots = new Map();
parentPort.on('message', (job) => {
  if (job.forget) { slots = new Map(); return; }
  let buffer = job.buffer;
  if (job.slot !== undefined) {
    if (buffer) slots.set(job.slot, buffer);
    else buffer = slots.get(job.slot);
  }
  const view = new Uint8Array(buffer, job.offset, job.length);
  const digest = createHash('sha1').update(view).digest();
  parentPort.postMessage({ id: job.id, digest });
});
`;

/** Shared buffers a worker remembers before it forgets them all and starts again. */
const MAX_SLOTS = 512;

class PoolWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private slots = new WeakMap<SharedArrayBuffer, number>();
  private slotCount = 0;
  queuedBytes = 0;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    // An idle pool must not keep the process alive.
    this.worker.unref();
    this.worker.on('message', (msg: { id: number; digest: Uint8Array }) => {
      const job = this.pending.get(msg.id);
      if (!job) return;
      this.pending.delete(msg.id);
      this.queuedBytes -= job.bytes;
      if (this.pending.size === 0) this.worker.unref();
      job.resolve(Buffer.from(msg.digest.buffer, msg.digest.byteOffset, msg.digest.byteLength));
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new Error(`hash worker exited with code ${code}`)));
  }

  hash(id: number, data: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, bytes: data.byteLength });
      this.queuedBytes += data.byteLength;
      this.worker.ref();
      if (data.buffer instanceof SharedArrayBuffer) {
        const known = this.slots.get(data.buffer);
        if (known !== undefined) {
          this.worker.postMessage({ id, slot: known, offset: data.byteOffset, length: data.byteLength });
          return;
        }
        if (this.slotCount >= MAX_SLOTS) {
          this.worker.postMessage({ forget: true });
          this.slots = new WeakMap();
          this.slotCount = 0;
        }
        const slot = this.slotCount++;
        this.slots.set(data.buffer, slot);
        this.worker.postMessage({ id, slot, buffer: data.buffer, offset: data.byteOffset, length: data.byteLength });
      } else {
        const copy = data.slice();
        this.worker.postMessage({ id, buffer: copy.buffer, offset: 0, length: copy.byteLength }, [copy.buffer]);
      }
    });
  }

  private failAll(err: Error): void {
    for (const job of this.pending.values()) job.reject(err);
    this.pending.clear();
    this.queuedBytes = 0;
  }

  async terminate(): Promise<void> {
    // Whoever still awaits a digest learns the pool is gone rather than waiting forever.
    this.failAll(new Error('hash pool is closed'));
    await this.worker.terminate();
  }
}
