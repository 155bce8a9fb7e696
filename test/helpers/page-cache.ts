import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const O_DIRECT = constants.O_DIRECT as number | undefined;

/** Whether files in `dir` can be opened with O_DIRECT (not off Linux, nor on some filesystems). */
export function directIoWorksIn(dir: string): boolean {
  if (O_DIRECT === undefined) return false;
  const probe = join(dir, '.probe');
  try {
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | O_DIRECT, 0o644));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Bytes of `path` in the page cache, as util-linux's fincore counts them; undefined without fincore. */
export function cachedBytes(path: string): number | undefined {
  try {
    return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}
