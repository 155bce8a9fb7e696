import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractTar, TarError } from '../src/tar.js';

/** One ustar header block plus data blocks, built by hand so hostile entries can be made. */
function entry(path: string, body: string | Buffer, type = '0', linkName = ''): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = Buffer.alloc(512);
  h.write(path, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write(linkName, 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}
const end = () => Buffer.alloc(1024);

describe('extractTar', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-tar-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('unpacks what the system tar made, gzipped, with nested dirs and a link', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'bin', 'deep'), { recursive: true });
    await writeFile(join(src, 'bin', 'app'), 'hello');
    await writeFile(join(src, 'bin', 'deep', 'big'), Buffer.alloc(70_000, 7));
    execFileSync('ln', ['-s', 'bin/app', join(src, 'current')]);
    execFileSync('tar', ['-czf', join(dir, 'a.tar.gz'), '-C', src, '.']);
    const out = join(dir, 'out');
    const { files } = await extractTar(join(dir, 'a.tar.gz'), out);
    expect(files).toBe(2);
    expect(await readFile(join(out, 'bin', 'app'), 'utf8')).toBe('hello');
    expect((await readFile(join(out, 'bin', 'deep', 'big'))).equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect(await readlink(join(out, 'current'))).toBe('bin/app');
  });

  it.each([
    ['a path with ..', [entry('../evil', 'x')]],
    ['an absolute path', [entry('/tmp/evil', 'x')]],
    ['a link out of the target', [entry('l', '', '2', '../../etc')]],
    ['an absolute link', [entry('l', '', '2', '/etc')]],
    ['a write through a link', [entry('l', '', '2', '.'), entry('l/x', 'x')]],
    ['a link through a link', [entry('l', '', '2', '.'), entry('m', '', '2', 'l/..')]],
    ['a file written over a link made before it', [entry('c', '', '2', 'sub/../victim'), entry('sub', '', '2', '.'), entry('c', 'x')]],
    ['a hard link', [entry('h', '', '1', 'a')]],
  ])('refuses %s', async (_what, entries) => {
    await writeFile(join(dir, 'bad.tar.gz'), gzipSync(Buffer.concat([...entries, end()])));
    await expect(extractTar(join(dir, 'bad.tar.gz'), join(dir, 'out'))).rejects.toBeInstanceOf(TarError);
  });

  it('refuses a file that is not a tar and a truncated archive', async () => {
    await writeFile(join(dir, 'x.tar'), Buffer.alloc(512, 1));
    await expect(extractTar(join(dir, 'x.tar'), join(dir, 'o1'))).rejects.toThrow(/not a tar archive/);
    await writeFile(join(dir, 't.tar'), entry('f', Buffer.alloc(2000, 1)).subarray(0, 1024));
    await expect(extractTar(join(dir, 't.tar'), join(dir, 'o2'))).rejects.toThrow(/truncated/);
  });
});
