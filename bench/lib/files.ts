/** What every benchmark needs: the checkout, test data, checksums and sizes in words. */
import { createHash, randomFill } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIB = 1024 * 1024;

/** The checkout's root, from the source file or its compiled copy under dist/. */
export function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'swarmship') return dir;
    const parent = resolve(dir, '..');
    if (parent === dir) throw new Error('cannot find the swarmship checkout above this script');
    dir = parent;
  }
}

export function firstLine(text: string | undefined): string | undefined {
  return text?.trim().split('\n')[0];
}

/**
 * Random bytes so no two pieces are alike, flushed to disk; returns the SHA-1 of the
 * whole, taken on the way, for checking copies. Without the flush the kernel would write
 * the file back during the first measurements, taking CPU at random moments.
 */
export async function generateRandomFile(path: string, size: number): Promise<string> {
  const chunk = 16 * MIB;
  const hash = createHash('sha1');
  const handle = await open(path, 'w');
  try {
    const buffers = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
    const fill = (b: Buffer, n: number) => new Promise<Buffer>((res, rej) => randomFill(b, 0, n, (err, out) => (err ? rej(err) : res(out))));
    let written = 0;
    let i = 0;
    let next = size > 0 ? fill(buffers[0]!, Math.min(chunk, size)) : undefined;
    while (next) {
      const buf = await next;
      const n = Math.min(chunk, size - written);
      i ^= 1;
      // Fill the other buffer while this one is written.
      const rest = size - written - n;
      next = rest > 0 ? fill(buffers[i]!, Math.min(chunk, rest)) : undefined;
      const slice = buf.subarray(0, n);
      hash.update(slice);
      await handle.write(slice, 0, n);
      written += n;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export async function sha1Of(path: string): Promise<string> {
  const hash = createHash('sha1');
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(16 * MIB);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export function fmtBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  if (n >= MIB && n % MIB === 0) return `${n / MIB} MiB`;
  return `${n} bytes`;
}
