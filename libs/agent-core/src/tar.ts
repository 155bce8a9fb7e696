import { createReadStream } from 'node:fs';
import { mkdir, open, symlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;

/** A tar entry that cannot be unpacked safely, or an archive that is not a tar. */
export class TarError extends Error {
  override name = 'TarError';
}

/** Is this artifact one we know how to unpack? */
export function isTarball(fileName: string): boolean {
  return /\.(tar|tar\.gz|tgz)$/i.test(fileName);
}

/**
 * Unpacks a .tar or .tar.gz into `target`, streaming (no whole-archive buffer).
 * Regular files, directories and symbolic links whose target stays inside; an entry
 * whose path or link escapes `target` (absolute, `..`), a link whose target climbs after
 * a name (`x/..`), anything written through a link, a hard link or a device is refused
 * and the unpacking stops with a TarError naming it.
 */
export async function extractTar(archive: string, target: string): Promise<{ files: number; bytes: number }> {
  const root = resolve(target);
  await mkdir(root, { recursive: true });
  const gz = /\.(gz|tgz)$/i.test(archive);
  const input = gz ? createReadStream(archive).pipe(createGunzip()) : createReadStream(archive);
  const reader = new TarReader(root);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) await reader.push(chunk);
  } catch (err) {
    await reader.abort();
    if (err instanceof TarError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'Z_DATA_ERROR' || e.code === 'Z_BUF_ERROR') throw new TarError(`${archive}: not a valid gzip stream (${e.message})`);
    throw err;
  }
  await reader.end();
  return { files: reader.files, bytes: reader.bytes };
}

interface Header {
  path: string;
  type: string;
  size: number;
  mode: number;
  linkName: string;
}

/** Parser state: reading a header, a file's data (then its padding), or a pax/long-name body. */
class TarReader {
  files = 0;
  bytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private file: { handle: FileHandle; left: number; pad: number; position: number } | undefined;
  private skip = 0;
  private meta: { kind: 'pax' | 'longname' | 'longlink' | 'global'; size: number; pad: number } | undefined;
  private next: { path?: string; linkName?: string } = {};
  private ended = false;
  /** Links we made: an entry below one would be written wherever the link points. */
  private readonly links = new Set<string>();

  constructor(private readonly root: string) {}

  async push(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.ended) return;
      if (this.file) {
        const n = Math.min(this.file.left, chunk.length - off);
        if (n > 0) {
          await this.file.handle.write(chunk, off, n, this.file.position);
          this.file.position += n;
          this.file.left -= n;
          this.bytes += n;
          off += n;
        }
        if (this.file.left === 0) {
          await this.file.handle.close();
          this.skip = this.file.pad;
          this.file = undefined;
        }
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      const need = this.meta ? this.meta.size + this.meta.pad : BLOCK;
      const n = Math.min(need - this.pendingBytes, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingBytes += n;
      off += n;
      if (this.pendingBytes < need) continue;
      const block = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      if (this.meta) {
        this.readMeta(block.subarray(0, this.meta.size));
        this.meta = undefined;
      } else {
        await this.onHeader(block);
      }
    }
  }

  private readMeta(body: Buffer): void {
    const kind = this.meta!.kind;
    if (kind === 'longname') this.next.path = cString(body);
    else if (kind === 'longlink') this.next.linkName = cString(body);
    else if (kind === 'pax') {
      // Records: "<len> <key>=<value>\n"; only path and linkpath change what we write.
      let i = 0;
      while (i < body.length) {
        const space = body.indexOf(0x20, i);
        const len = space > i ? Number(body.toString('latin1', i, space)) : NaN;
        if (!Number.isInteger(len) || len <= 0 || i + len > body.length) throw new TarError('malformed pax header');
        const record = body.toString('utf8', space + 1, i + len - 1);
        const eq = record.indexOf('=');
        const key = record.slice(0, eq);
        if (key === 'path') this.next.path = record.slice(eq + 1);
        if (key === 'linkpath') this.next.linkName = record.slice(eq + 1);
        i += len;
      }
    }
  }

  private async onHeader(block: Buffer): Promise<void> {
    if (block.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const header = parseHeader(block);
    const size = header.size;
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    switch (header.type) {
      case 'x':
      case 'g':
      case 'L':
      case 'K':
        if (size > 1024 * 1024) throw new TarError(`an extended header of ${size} bytes is too large`);
        this.meta = { kind: header.type === 'x' ? 'pax' : header.type === 'g' ? 'global' : header.type === 'L' ? 'longname' : 'longlink', size, pad };
        if (size + pad === 0) this.meta = undefined;
        return;
    }
    const path = this.next.path ?? header.path;
    const linkName = this.next.linkName ?? header.linkName;
    this.next = {};
    const dest = this.inside(path, path);
    switch (header.type) {
      case '0':
      case '\0':
      case '7': {
        // open() follows a link an earlier entry made here, and its target may resolve outside.
        if (this.links.has(dest)) throw new TarError(`${path}: would be written through the symbolic link of the same name`);
        await mkdir(dirname(dest), { recursive: true });
        const handle = await open(dest, 'w', header.mode & 0o777 || 0o644);
        this.files++;
        if (size === 0) {
          await handle.close();
          this.skip = pad;
          return;
        }
        this.file = { handle, left: size, pad, position: 0 };
        return;
      }
      case '5':
        await mkdir(dest, { recursive: true });
        this.skip = size + pad;
        return;
      case '2': {
        if (isAbsolute(linkName)) throw new TarError(`${path}: symbolic link to an absolute path (${linkName}) is refused`);
        // '..' only at the start: it then climbs real directories from the link's own. After
        // a name it would climb from wherever that name points, and a later entry can make
        // the name a link (a -> b/.., then b -> .): checked alone, each stays inside.
        const steps = linkName.split('/').filter((p) => p !== '' && p !== '.');
        const down = steps.findIndex((p) => p !== '..');
        if (down >= 0 && steps.slice(down).includes('..')) throw new TarError(`${path} -> ${linkName}: a link target that climbs ('..') after a name is refused`);
        this.inside(join(dirname(path), linkName), `${path} -> ${linkName}`);
        this.notThroughLinks(`${dirname(path)}/${linkName}`, `${path} -> ${linkName}`);
        await mkdir(dirname(dest), { recursive: true });
        await symlink(linkName, dest);
        this.links.add(dest);
        this.skip = size + pad;
        return;
      }
      case '1':
        throw new TarError(`${path}: hard links are not unpacked`);
      default:
        throw new TarError(`${path}: entry type '${header.type}' (device, fifo or unknown) is not unpacked`);
    }
  }

  /** The entry's path under the root, or a TarError if it would land outside. */
  private inside(path: string, what: string): string {
    if (path === '' || isAbsolute(path) || /^[A-Za-z]:/.test(path)) throw new TarError(`${what}: absolute or empty path is refused`);
    const dest = resolve(this.root, normalize(path));
    const rel = relative(this.root, dest);
    if (rel === '' && /\/$|^\.\/?$/.test(path)) return dest;
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) throw new TarError(`${what}: escapes the target directory`);
    for (let d = dirname(dest); d.length > this.root.length; d = dirname(d)) {
      if (this.links.has(d)) throw new TarError(`${what}: goes through the symbolic link ${relative(this.root, d)}`);
    }
    return dest;
  }

  /** Refuses a link target that walks through one of our links ('..' after a link means the link's parent). */
  private notThroughLinks(path: string, what: string): void {
    let cur = this.root;
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 0; i < parts.length - 1; i++) {
      cur = resolve(cur, parts[i]!);
      if (this.links.has(cur)) throw new TarError(`${what}: goes through the symbolic link ${relative(this.root, cur)}`);
    }
  }

  async end(): Promise<void> {
    if (this.file || this.meta || this.pendingBytes > 0) {
      await this.abort();
      throw new TarError('archive is truncated');
    }
  }

  async abort(): Promise<void> {
    await this.file?.handle.close().catch(() => undefined);
    this.file = undefined;
  }
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('utf8', 0, nul === -1 ? buf.length : nul);
}

function octal(buf: Buffer, what: string): number {
  // GNU base-256 for sizes of 8 GiB and more: high bit set, big-endian after it.
  if (buf[0]! & 0x80) {
    let n = buf[0]! & 0x7f;
    for (let i = 1; i < buf.length; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const text = cString(buf).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`not a tar archive (bad ${what} field "${text}")`);
  return parseInt(text, 8);
}

function parseHeader(block: Buffer): Header {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (octal(block.subarray(148, 156), 'checksum') !== sum) throw new TarError('not a tar archive (header checksum mismatch)');
  const name = cString(block.subarray(0, 100));
  const ustar = block.toString('latin1', 257, 262) === 'ustar';
  const prefix = ustar ? cString(block.subarray(345, 500)) : '';
  return {
    path: prefix ? `${prefix}/${name}` : name,
    type: String.fromCharCode(block[156]!),
    size: octal(block.subarray(124, 136), 'size'),
    mode: octal(block.subarray(100, 108), 'mode'),
    linkName: cString(block.subarray(157, 257)),
  };
}
