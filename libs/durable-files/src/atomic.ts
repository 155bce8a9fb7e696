/**
 * Files replaced whole: a reader, or a restart after a crash or a power cut, sees the old
 * contents or the new, never a mix. Used by the controller (release records, tokens, its
 * signing key) and the agent (the torrents it holds).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A hidden temp file beside `path`, so the rename stays in one directory and filesystem. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `data`: write a temp file beside it (created exclusively, with
 * `mode` less the umask), fsync, rename, fsync the directory so the rename itself survives.
 * The temp file is removed if any step before the rename fails.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

/** `writeFileAtomic` for start-up code that cannot wait (a few hundred bytes, once). */
export function writeFileAtomicSync(path: string, data: string | Buffer, mode = 0o644): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDirSync(dirname(path));
}

/**
 * fsync a directory so the entries just made or renamed in it are durable. A directory
 * that cannot be opened, or a filesystem that refuses fsync on one, is let be: the rename
 * is then as durable as that filesystem makes it.
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory.
  } finally {
    await fh.close();
  }
}

function syncDirSync(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory.
  } finally {
    closeSync(fd);
  }
}
