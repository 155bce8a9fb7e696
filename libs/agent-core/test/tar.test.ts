import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, realpath, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractTar, TarError } from '../src/tar.js';

/** One ustar header block plus data blocks, built by hand so hostile entries can be made. */
function entry(path: string, body: string | Buffer, type = '0', linkName = '', prefix = ''): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = Buffer.alloc(512);
  h.write(path, 0, 100, 'utf8');
  h.write(prefix, 345, 155, 'utf8');
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

/** A pax extended header ('x') setting `key` for the entry after it. */
function pax(key: string, value: string): Buffer {
  const rest = ` ${key}=${value}\n`;
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len++;
  return entry('PaxHeader/x', `${len}${rest}`, 'x');
}

/** Every entry below `dir`: a file's hash, a link's target, or a directory. */
async function tree(dir: string, skip: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (p === skip) continue;
      if (e.isSymbolicLink()) out.set(relative(dir, p), `link ${await readlink(p)}`);
      else if (e.isDirectory()) {
        out.set(relative(dir, p), 'dir');
        await walk(p);
      } else out.set(relative(dir, p), createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  };
  await walk(dir);
  return out;
}

/** Every link below `root` resolves inside it (or to nothing at all). */
async function linksStayInside(root: string): Promise<void> {
  const real = await realpath(root);
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) {
        const to = await realpath(p).catch(() => undefined);
        if (to !== undefined) expect(to === real || to.startsWith(`${real}/`), `${relative(root, p)} -> ${await readlink(p)} resolves to ${to}`).toBe(true);
      } else if (e.isDirectory()) await walk(p);
    }
  };
  await walk(root);
}

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
    ['a path that climbs after a name', [entry('sub/../../evil', 'x')]],
    ['an absolute path', [entry('/tmp/evil', 'x')]],
    ['a drive-letter path', [entry('C:\\evil', 'x')]],
    ['a directory entry with ..', [entry('../evil-dir', '', '5')]],
    ['a pax path with ..', [pax('path', '../evil'), entry('innocent', 'x')]],
    ['an absolute pax path', [pax('path', '/tmp/evil'), entry('innocent', 'x')]],
    ['a GNU long name with ..', [entry('././@LongLink', '../evil\0', 'L'), entry('innocent', 'x')]],
    ['a ustar prefix with ..', [entry('evil', 'x', '0', '', '..')]],
    ['a link out of the target', [entry('l', '', '2', '../../etc')]],
    ['an absolute link', [entry('l', '', '2', '/etc')]],
    ['a pax link path out of the target', [pax('linkpath', '../../etc'), entry('l', '', '2', 'harmless')]],
    ['a GNU long link name out of the target', [entry('././@LongLink', '../../etc\0', 'K'), entry('l', '', '2', 'harmless')]],
    ['a write through a link', [entry('l', '', '2', '.'), entry('l/x', 'x')]],
    ['a directory made through a link', [entry('l', '', '2', '.'), entry('l/sub', '', '5')]],
    ['a link through a link', [entry('l', '', '2', '.'), entry('m', '', '2', 'l/..')]],
    // Each link alone stays inside; together, a resolves to the target's parent.
    ['a link climbing through a name a later link turns into "."', [entry('a', '', '2', 'b/..'), entry('b', '', '2', '.')]],
    ['a link climbing two levels through later links', [entry('a', '', '2', 'b/b/../..'), entry('b', '', '2', '.')]],
    ['a file written over a link made before it', [entry('c', '', '2', 'sub/../victim'), entry('sub', '', '2', '.'), entry('c', 'x')]],
    ['a hard link', [entry('h', '', '1', 'a')]],
    ['a device', [entry('dev', '', '3')]],
  ])('refuses %s, and nothing outside the target changes', async (_what, entries) => {
    // The target sits where the agent puts it, in a release's staging dir, beside others.
    const stage = join(dir, 'staging', 'app', '1');
    await mkdir(stage, { recursive: true });
    await writeFile(join(stage, 'app.tar.gz'), 'the artifact');
    await mkdir(join(dir, 'etc'));
    await writeFile(join(dir, 'etc', 'victim'), 'untouched');
    await writeFile(join(dir, 'bad.tar.gz'), gzipSync(Buffer.concat([...entries, end()])));
    const out = join(stage, 'unpacked');
    const before = await tree(dir, out);
    await expect(extractTar(join(dir, 'bad.tar.gz'), out)).rejects.toBeInstanceOf(TarError);
    expect(await tree(dir, out)).toEqual(before);
    await linksStayInside(out);
  });

  it('unpacks links that climb only from where they are, as packages make them', async () => {
    const entries = [entry('lib/libx.so.1', 'x'), entry('lib/libx.so', '', '2', 'libx.so.1'), entry('bin/tool', '', '2', '../lib/libx.so'), entry('share/doc/a', '', '2', '../../lib/./libx.so.1')];
    await writeFile(join(dir, 'ok.tar'), Buffer.concat([...entries, end()]));
    const out = join(dir, 'out');
    await extractTar(join(dir, 'ok.tar'), out);
    expect(await readFile(join(out, 'bin', 'tool'), 'utf8')).toBe('x');
    expect(await readFile(join(out, 'share', 'doc', 'a'), 'utf8')).toBe('x');
    expect((await lstat(join(out, 'bin', 'tool'))).isSymbolicLink()).toBe(true);
    await linksStayInside(out);
  });

  it('refuses a file that is not a tar and a truncated archive', async () => {
    await writeFile(join(dir, 'x.tar'), Buffer.alloc(512, 1));
    await expect(extractTar(join(dir, 'x.tar'), join(dir, 'o1'))).rejects.toThrow(/not a tar archive/);
    await writeFile(join(dir, 't.tar'), entry('f', Buffer.alloc(2000, 1)).subarray(0, 1024));
    await expect(extractTar(join(dir, 't.tar'), join(dir, 'o2'))).rejects.toThrow(/truncated/);
  });
});
