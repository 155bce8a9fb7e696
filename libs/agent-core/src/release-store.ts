import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** A name or version as a single safe path element. */
export function safeElement(text: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/.test(text) && text !== '.' && text !== '..';
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
    for (const d of ['torrents', 'staging', 'releases', 'trash']) await mkdir(join(this.dataDir, d), { recursive: true });
    // Whatever was being deleted when we stopped.
    await rm(join(this.dataDir, 'trash'), { recursive: true, force: true });
    await mkdir(join(this.dataDir, 'trash'));
  }

  async saveTorrent(t: StoredTorrent): Promise<void> {
    const path = this.torrentPath(t.name, t.version);
    await mkdir(dirname(path), { recursive: true });
    await writeFileDurably(path, t.torrent);
    await writeFileDurably(`${path.slice(0, -'.torrent'.length)}.json`, Buffer.from(JSON.stringify({ unpack: t.unpack })));
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

  async isPublished(name: string, version: string): Promise<{ at: number } | undefined> {
    const s = await stat(this.releaseDir(name, version)).catch(() => undefined);
    return s?.isDirectory() ? { at: s.ctimeMs } : undefined;
  }

  /**
   * Moves a verified staging dir to its published path in one rename, after flushing
   * every file and directory in it: a crash leaves either no release or a whole one.
   */
  async publish(name: string, version: string): Promise<string> {
    const from = this.stagingDir(name, version);
    const to = this.releaseDir(name, version);
    await syncTree(from);
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
    await syncDir(dirname(to));
    await syncDir(dirname(from));
    return to;
  }

  async removeStaging(name: string, version: string): Promise<void> {
    await this.removeDir(this.stagingDir(name, version));
  }

  /** Takes the published copy and its torrent away: out of sight by rename first, then deleted. */
  async removeRelease(name: string, version: string): Promise<void> {
    await this.removeDir(this.releaseDir(name, version));
    await this.removeDir(this.stagingDir(name, version));
    const t = this.torrentPath(name, version);
    await rm(t, { force: true });
    await rm(`${t.slice(0, -'.torrent'.length)}.json`, { force: true });
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

async function writeFileDurably(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data);
  const fh = await open(tmp, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
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
