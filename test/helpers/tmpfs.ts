/**
 * Small real file systems for disk-full tests: a tmpfs of a chosen size mounted on a
 * fresh temp dir (root only). Where mounting is refused (no privilege, no tmpfs) the
 * probe says why, so a test can skip with that reason instead of failing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  dir: string;
  /** Bytes an unprivileged writer may still write. */
  freeBytes(): number;
  /** Changes the size in place (files stay): `mount -o remount,size=`. */
  resize(bytes: number): void;
  /** Unmounts and removes the mount point; safe to call twice. */
  unmount(): void;
}

function run(args: string[]): string | undefined {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return r.error.message;
  if (r.status !== 0) return (r.stderr || r.stdout || `exit ${r.status}`).trim();
  return undefined;
}

/** Why a tmpfs cannot be mounted here, or undefined when it can (tries a 1 MiB one). */
export function tmpfsRefused(): string | undefined {
  let mounted: Tmpfs;
  try {
    mounted = mountTmpfs('swarmship-tmpfs-probe-', 1024 * 1024);
  } catch (err) {
    return `cannot mount a tmpfs (${(err as Error).message}); needs root and mount(8)`;
  }
  mounted.unmount();
  return undefined;
}

/** Mounts a tmpfs of `bytes` on a new temp dir; throws with mount's own message if refused. */
export function mountTmpfs(prefix: string, bytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const refused = run(['mount', '-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  if (refused !== undefined) {
    rmdirSync(dir);
    throw new Error(refused);
  }
  let mounted = true;
  return {
    dir,
    freeBytes: () => {
      const s = statfsSync(dir);
      return Number(s.bavail) * Number(s.bsize);
    },
    resize: (size: number) => {
      execFileSync('mount', ['-o', `remount,size=${size}`, dir], { stdio: 'pipe', timeout: 30_000 });
    },
    unmount: () => {
      if (!mounted) return;
      // A process still holding a file open (one that did not stop in time) makes a
      // plain umount fail: detach it lazily, the memory goes when the last file closes.
      if (run(['umount', dir]) !== undefined) run(['umount', '-l', dir]);
      mounted = false;
      try {
        rmdirSync(dir);
      } catch {
        // Still busy after a lazy unmount: an empty dir in the temp dir is all that is left.
      }
    },
  };
}
