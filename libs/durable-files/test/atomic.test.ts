import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync } from '../src/atomic.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmship-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const variants = [
  ['writeFileAtomic', writeFileAtomic],
  ['writeFileAtomicSync', async (path: string, data: string | Buffer, mode?: number) => writeFileAtomicSync(path, data, mode)],
] as const;

describe.each(variants)('%s', (_name, write) => {
  it('writes a new file, text or bytes, and leaves no temp file', async () => {
    await write(join(dir, 'a.txt'), 'hello\n');
    await write(join(dir, 'b.bin'), Buffer.from([0, 1, 2, 255]));
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('hello\n');
    expect([...(await readFile(join(dir, 'b.bin')))]).toEqual([0, 1, 2, 255]);
    expect((await readdir(dir)).sort()).toEqual(['a.txt', 'b.bin']);
  });

  it('replaces an existing file whole', async () => {
    await writeFile(join(dir, 'record.json'), 'old contents, longer than the new ones');
    await write(join(dir, 'record.json'), 'new');
    expect(await readFile(join(dir, 'record.json'), 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['record.json']);
  });

  it('gives the file the mode asked for, 0644 by default (less the umask)', async () => {
    await write(join(dir, 'secret'), 'key', 0o600);
    await write(join(dir, 'public'), 'key');
    const umask = process.umask();
    expect((await stat(join(dir, 'secret'))).mode & 0o777).toBe(0o600 & ~umask);
    expect((await stat(join(dir, 'public'))).mode & 0o777).toBe(0o644 & ~umask);
  });

  it('fails without leaving a temp file or touching the old file when the rename cannot happen', async () => {
    // A directory in the way: the temp file is written, the rename over it fails.
    await mkdir(join(dir, 'taken', 'inner'), { recursive: true });
    await expect(write(join(dir, 'taken'), 'x')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['taken']);
    expect(await readdir(join(dir, 'taken'))).toEqual(['inner']);
  });
});
