import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../durable-files/src/atomic.js';

/** A name or version as a single safe path element. */
export function safeElement(text: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/.test(text) && text !== '.' && text !== '..';
}

/**
 * A symbolic link, or something else that is not a directory, where the agent would
 * write or delete. It never goes through one: whatever it points to is outside what the
 * agent owns, even when the link itself sits inside its data dir.
 */
export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
  readonly code = 'EUNSAFEPATH';
}

export interface StoredTorrent {
  name: string;
  version: string;
  torrent: Buffer;
  unpack: boolean;
}

/**
 * The agent's data dir:
 *   torrents/<name>/<version>.torrent (+ .json)  what it was asked to hold, so it can seed without the controller
 *   staging/<name>/<version>/                     downloads in progress (the engine resumes from here)
 *   releases/<name>/<version>/                    published copies: whole and verified, or absent
 *   trash/                                        releases being deleted, out of sight first
 */
export class ReleaseStore {
  constructor(readonly dataDir: string) {}

  stagingDir(name: string, version: string): string {
    return join(this.dataDir, 'staging', name, version);
  }
  releaseDir(name: string, version: string): string {
    return join(this.dataDir, 'releases', name, version);
  }
  private torrentPath(name: string, version: string): string {
    return join(this.dataDir, 'torrents', name, `${version}.torrent`);
  }

  async init(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    for (const d of ['torrents', 'staging', 'releases']) await this.realDir(d);
    // Whatever was being deleted when we stopped (a link here is removed, not followed).
    await rm(join(this.dataDir, 'trash'), { recursive: true, force: true });
    await this.realDir('trash');
  }

  /**
   * `<data>/<parts…>` as real directories, made where missing. The data dir itself may be
   * a link (a volume mounted elsewhere); below it, a link or a file on the way is refused.
   */
  async realDir(...parts: string[]): Promise<string> {
    // Removing a release takes its artifact's emptied dirs away (removeRelease), so a dir
    // made a moment ago for another version may be gone before its child is made: then
    // the walk starts again. A handful of rounds; losing every one would mean a loop.
    for (let round = 1; ; round++) {
      try {
        return await this.realDirOnce(parts);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || round >= 5) throw err;
      }
    }
  }

  private async realDirOnce(parts: string[]): Promise<string> {
    let dir = this.dataDir;
    for (const part of parts) {
      dir = join(dir, part);
      let s = await lstatOrUndefined(dir);
      if (!s) {
        await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        s = await lstat(dir);
      }
      if (!s.isDirectory()) throw notADirectory(dir, s.isSymbolicLink());
    }
    return dir;
  }

  /** Whether `<data>/<parts…>` exists as real directories all the way; refuses a link on the way. */
  private async realDirExists(...parts: string[]): Promise<boolean> {
    let dir = this.dataDir;
    for (const part of parts) {
      dir = join(dir, part);
      const s = await lstatOrUndefined(dir);
      if (!s) return false;
      if (!s.isDirectory()) throw notADirectory(dir, s.isSymbolicLink());
    }
    return true;
  }

  /**
   * The staging dir of a release, ready to download into: real directories down to it,
   * and no link anywhere inside (a resumed download would write through one); the
   * `scratch` entries in it are removed first.
   */
  async prepareStaging(name: string, version: string, scratch: string[] = []): Promise<string> {
    const dir = await this.realDir('staging', name, version);
    // Made by an earlier attempt and made again from scratch (an unpacking cut short has
    // links of its own); rm takes a link away, never what it points to.
    for (const entry of scratch) await rm(join(dir, entry), { recursive: true, force: true });
    const link = await findLink(dir);
    if (link) throw new UnsafePathError(`${link} is a symbolic link in the staging dir of ${name}@${version}; the agent does not write through links. Remove it and the download resumes`);
    return dir;
  }

  async saveTorrent(t: StoredTorrent): Promise<void> {
    const path = this.torrentPath(t.name, t.version);
    await this.realDir('torrents', t.name);
    // 0666 less the umask, as a plain write makes a file.
    await writeFileAtomic(path, t.torrent, 0o666);
    await writeFileAtomic(`${path.slice(0, -'.torrent'.length)}.json`, Buffer.from(JSON.stringify({ unpack: t.unpack })), 0o666);
  }

  /** Every torrent we were asked to hold and have not removed. */
  async storedTorrents(): Promise<StoredTorrent[]> {
    const out: StoredTorrent[] = [];
    const root = join(this.dataDir, 'torrents');
    for (const name of await readdir(root).catch(() => [] as string[])) {
      for (const file of await readdir(join(root, name)).catch(() => [] as string[])) {
        if (!file.endsWith('.torrent')) continue;
        const version = file.slice(0, -'.torrent'.length);
        const torrent = await readFile(join(root, name, file)).catch(() => undefined);
        if (!torrent) continue;
        const extra = await readFile(join(root, name, `${version}.json`), 'utf8').then((t) => JSON.parse(t) as { unpack?: boolean }).catch(() => ({ unpack: false }));
        out.push({ name, version, torrent, unpack: extra.unpack === true });
      }
    }
    return out;
  }

  /** A published copy is a real directory: a link at its place is not one (and is not followed). */
  async isPublished(name: string, version: string): Promise<{ at: number } | undefined> {
    const s = await lstatOrUndefined(this.releaseDir(name, version));
    return s?.isDirectory() ? { at: s.ctimeMs } : undefined;
  }

  /**
   * Moves a verified staging dir to its published path in one rename, after flushing
   * every file and directory in it: a crash leaves either no release or a whole one.
   */
  async publish(name: string, version: string): Promise<string> {
    const from = this.stagingDir(name, version);
    const to = this.releaseDir(name, version);
    if (!(await this.realDirExists('staging', name, version))) throw new Error(`${from} is gone`);
    await syncTree(from);
    await this.realDir('releases', name);
    const there = await lstatOrUndefined(to);
    if (there) throw new UnsafePathError(`${to} exists already as ${there.isSymbolicLink() ? 'a symbolic link' : 'something the agent did not publish'}; not replaced`);
    await rename(from, to);
    await syncDir(dirname(to));
    await syncDir(dirname(from));
    return to;
  }

  async removeStaging(name: string, version: string): Promise<void> {
    if (await this.realDirExists('staging', name)) await this.removeDir(this.stagingDir(name, version));
  }

  /** Takes the published copy and its torrent away: out of sight by rename first, then deleted. */
  async removeRelease(name: string, version: string): Promise<void> {
    // Only through real directories: behind a link lies what is not ours to delete.
    if (await this.realDirExists('releases', name)) await this.removeDir(this.releaseDir(name, version));
    if (await this.realDirExists('staging', name)) await this.removeDir(this.stagingDir(name, version));
    const t = this.torrentPath(name, version);
    if (await this.realDirExists('torrents', name)) {
      await rm(t, { force: true });
      await rm(`${t.slice(0, -'.torrent'.length)}.json`, { force: true });
    }
    // The artifact's own dirs go with its last version (rmdir fails on a non-empty one).
    for (const d of [dirname(this.releaseDir(name, version)), dirname(this.stagingDir(name, version)), dirname(t)]) await rmdir(d).catch(() => undefined);
  }

  private async removeDir(dir: string): Promise<void> {
    const trash = join(this.dataDir, 'trash', randomBytes(6).toString('hex'));
    try {
      await rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await syncDir(dirname(dir)).catch(() => undefined);
    await rm(trash, { recursive: true, force: true });
  }

  /** Bytes the agent may still write on the data dir's volume. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.dataDir);
    return s.bavail * s.bsize;
  }
}

async function lstatOrUndefined(path: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function notADirectory(path: string, link: boolean): UnsafePathError {
  return new UnsafePathError(link ? `${path} is a symbolic link; the agent does not write or delete through links in its data dir` : `${path} is not a directory`);
}

/** The first symbolic link below `dir` (depth first), if any. */
async function findLink(dir: string): Promise<string | undefined> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isSymbolicLink()) return p;
    if (entry.isDirectory()) {
      const found = await findLink(p);
      if (found) return found;
    }
  }
  return undefined;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync every regular file and directory below `dir`, and `dir` itself. */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(p);
    else if (entry.isFile()) {
      const fh = await open(p, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }
  await syncDir(dir);
}
