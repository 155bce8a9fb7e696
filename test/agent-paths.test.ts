/**
 * A real `swarmship agent` given hostile names and a data dir with links planted in it:
 * it must refuse, say why, and leave everything outside its data dir exactly as it was.
 * The controller is the fake one that speaks the real agent channel; the origin is an
 * engine in this process seeding the few real releases.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, type Encodable } from '../libs/bencode/src/index.js';
import type { DesiredRelease, Holding } from '../libs/contracts/src/agent-channel.js';
import { Engine } from '../libs/engine/src/engine.js';
import { createTorrent } from '../libs/metainfo/src/index.js';
import { FakeController } from './helpers/agent-fake-controller.js';
import { startCli, type RunningCli } from './helpers/cli.js';
import { freePort, makeTempDir, removeDir } from './helpers/swarm.js';

const TOKEN = 'agent-paths-token-0123456789';

async function startAgent(name: string, dataDir: string, controllerPort: number): Promise<{ cli: RunningCli; httpPort: number }> {
  const httpPort = await freePort('127.0.0.1');
  const cli = startCli(
    ['agent', '--controller', `tcp://127.0.0.1:${controllerPort}`, '--name', name, '--data', dataDir, '--peer-port', '0', '--http-port', String(httpPort), '--listen-host', '127.0.0.1', '--json'],
    // Signatures are another test's subject: these releases are unsigned.
    { SWARMSHIP_AGENT_TOKEN: TOKEN, SWARMSHIP_ALLOW_UNSIGNED: 'true', SWARMSHIP_CONFIG: '', SWARMSHIP_CONTROLLER: '' },
  );
  await cli.waitFor((e) => e['event'] === 'http-listening', 20_000);
  return { cli, httpPort };
}

/** Every entry below `dir` with what it is: file contents' hash, a link's target, or a directory. */
async function snapshot(dir: string, skip: (rel: string) => boolean = () => false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      if (e.isSymbolicLink()) out.set(rel, `link ${await readlink(p)}`);
      else if (e.isDirectory()) {
        out.set(rel, 'dir');
        await walk(p);
      } else out.set(rel, `file ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
    }
  };
  await walk(dir);
  return out;
}

/** A torrent built by hand, so names our own metainfo code would refuse to make can be sent. */
function crafted(name: string, version: string, info: Record<string, Encodable>): DesiredRelease {
  const full = { 'piece length': 16384, pieces: Buffer.alloc(20, 1), ...info };
  const torrent = encode({ announce: 'http://127.0.0.1:1/announce', info: full });
  return { name, version, infoHash: createHash('sha1').update(encode(full)).digest('hex'), torrent: torrent.toString('base64') };
}

describe('agent: no torrent name and no planted link makes it write outside its data dir', () => {
  let dir: string;
  let data: string;
  let outside: string;
  let origin: Engine;
  let controller: FakeController;
  let agent: { cli: RunningCli; httpPort: number } | undefined;

  /** A real release of `files` (one file, or a directory of them), seeded by the origin. */
  async function real(name: string, files: Record<string, number>): Promise<DesiredRelease> {
    const entries = Object.entries(files);
    const single = entries.length === 1 && !entries[0]![0].includes('/');
    const content = single ? join(dir, 'content', name, entries[0]![0]) : join(dir, 'content', name, name);
    for (const [path, size] of entries) {
      const file = single ? content : join(content, path);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, randomBytes(size));
    }
    const { torrent, metainfo } = await createTorrent(content, { pieceLength: 16 * 1024, creationDate: false });
    await origin.addTorrent(metainfo, { contentPath: content, mode: 'seed', trustFiles: true });
    return { name, version: '1', infoHash: metainfo.infoHash.toString('hex'), torrent: torrent.toString('base64') };
  }

  const holding = (name: string): Holding | undefined => controller.holding('node', name, '1');

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-agent-paths-');
    data = join(dir, 'data');
    outside = join(dir, 'outside');
    for (const d of ['a', 'b', 'c', 'd', 'e/1', 'f/1', 'top']) {
      await mkdir(join(outside, d), { recursive: true });
      await writeFile(join(outside, d, 'sentinel'), `do not touch ${d}\n`);
    }
    origin = new Engine({ host: '127.0.0.1', port: 0 });
    await origin.listen();
    controller = new FakeController(TOKEN, { origin: { host: '127.0.0.1', port: origin.port }, announceUrl: '', retireGraceSeconds: 0 });
    await controller.start(await freePort('127.0.0.1'));
  });

  afterAll(async () => {
    await agent?.cli.stop();
    await controller?.close();
    await origin?.close();
    await removeDir(dir);
  });

  it('refuses to start when a top-level dir of its data dir is a link', async () => {
    const data2 = join(dir, 'data2');
    await mkdir(data2);
    await symlink(join(outside, 'top'), join(data2, 'staging'));
    const cli = startCli(
      ['agent', '--controller', `tcp://127.0.0.1:${controller.port}`, '--name', 'x', '--data', data2, '--peer-port', '0', '--http-port', '0', '--listen-host', '127.0.0.1', '--json'],
      { SWARMSHIP_AGENT_TOKEN: TOKEN, SWARMSHIP_ALLOW_UNSIGNED: 'true', SWARMSHIP_CONFIG: '', SWARMSHIP_CONTROLLER: '' },
    );
    const code = await Promise.race([cli.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (code === 'timeout') await cli.stop();
    expect(code).not.toBe(0);
    expect(cli.stderr() + cli.stdout()).toMatch(/staging is a symbolic link/);
    expect(await readdir(join(outside, 'top'))).toEqual(['sentinel']);
  });

  it('refuses hostile names and planted links, reports each, and writes nothing outside', async () => {
    const [a, b, c, d, e] = [
      await real('app-a', { 'a.bin': 100_000 }),
      await real('app-b', { 'b.bin': 100_000 }),
      await real('app-c', { 'c.bin': 100_000 }),
      await real('site-d', { 'top.bin': 50_000, 'sub/x.bin': 50_000 }),
      await real('app-e', { 'e.bin': 100_000 }),
    ];
    for (const t of ['torrents', 'staging', 'releases']) await mkdir(join(data, t), { recursive: true });
    // A link at each place the agent writes: the release's staging dir, its published
    // dir's parent, its torrent's dir, a directory inside a download it resumes, and the
    // published dir itself.
    await symlink(join(outside, 'a'), join(data, 'staging', 'app-a'));
    await symlink(join(outside, 'b'), join(data, 'releases', 'app-b'));
    await symlink(join(outside, 'c'), join(data, 'torrents', 'app-c'));
    await mkdir(join(data, 'staging', 'site-d', '1', 'site-d'), { recursive: true });
    await symlink(join(outside, 'd'), join(data, 'staging', 'site-d', '1', 'site-d', 'sub'));
    await mkdir(join(data, 'releases', 'app-e'), { recursive: true });
    await symlink(join(outside, 'e', '1'), join(data, 'releases', 'app-e', '1'));

    const file = (name: Encodable) => ({ name, length: 5 });
    const multi = (path: Encodable[]) => ({ name: 'multi', files: [{ length: 5, path }] });
    const badTorrents: [string, DesiredRelease][] = [
      ['name ..', crafted('bad-dotdot', '1', file('..'))],
      ['name with ../', crafted('bad-up', '1', file('../../outside/escape'))],
      ['absolute name', crafted('bad-abs', '1', file(join(outside, 'escape')))],
      ['backslashes', crafted('bad-backslash', '1', file('..\\..\\escape'))],
      ['drive letter', crafted('bad-drive', '1', file('C:escape'))],
      ['empty name', crafted('bad-empty', '1', file(''))],
      ['path element ..', crafted('bad-path-dotdot', '1', multi(['..', '..', 'escape']))],
      ['empty path element', crafted('bad-path-empty', '1', multi(['', 'escape']))],
      ['absolute path element', crafted('bad-path-abs', '1', multi(['/tmp', 'escape']))],
      ['no path elements', crafted('bad-path-none', '1', multi([]))],
      ['NUL in a name', crafted('bad-nul', '1', file('a\0b'))],
    ];
    const good = crafted('fine', '1', file('ok.bin'));
    // Release names and versions become directories too: these are never held at all.
    const badNames = [
      { ...good, name: '..' },
      { ...good, name: 'a/b' },
      { ...good, version: '../../../outside' },
      { ...good, version: '' },
      { ...good, name: '.hidden' },
    ];
    const before = await snapshot(dir, (rel) => rel === 'data' || rel.startsWith(`data/`));

    agent = await startAgent('node', data, controller.port);
    controller.setDesired([a, b, c, d, e, ...badTorrents.map(([, r]) => r), ...badNames]);
    const failedWith = async (name: string, error: RegExp) => {
      const h = await controller.waitForHolding('node', name, '1', (x) => x?.state === 'failed', 20_000);
      expect(h?.error, name).toMatch(error);
    };
    await failedWith('app-a', /staging\/app-a is a symbolic link/);
    await failedWith('app-b', /releases\/app-b is a symbolic link/);
    await failedWith('app-c', /torrents\/app-c is a symbolic link/);
    await failedWith('site-d', /site-d\/sub is a symbolic link in the staging dir/);
    await failedWith('app-e', /app-e\/1 exists already as a symbolic link/);
    for (const [what, r] of badTorrents) {
      const h = await controller.waitForHolding('node', r.name, '1', (x) => x?.state === 'failed', 10_000);
      expect(h?.error, what).toMatch(/torrent is invalid/);
    }
    const holdings = controller.holdings.get('node') ?? [];
    for (const n of badNames) expect(holdings.some((h) => h.name === n.name && h.version === n.version), `${n.name}@${n.version}`).toBe(false);
    expect(agent.cli.events.filter((ev) => ev['event'] === 'release-refused' && /not a safe path element/.test(String(ev['error']))).length).toBeGreaterThanOrEqual(badNames.length);

    // Everything outside the data dir is as it was: no file named by a torrent, no write through a link.
    expect(await snapshot(dir, (rel) => rel === 'data' || rel.startsWith(`data/`))).toEqual(before);
    expect((await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(200);
  }, 60_000);

  it('removes a retired release only through real directories: a link put in its place keeps what it points to', async () => {
    const f = await real('app-f', { 'f.bin': 100_000 });
    const others = controller.desired;
    controller.setDesired([...others, f]);
    await controller.waitForHolding('node', 'app-f', '1', (x) => x?.state === 'complete', 20_000);
    expect((await lstat(join(data, 'releases', 'app-f', '1', 'f.bin'))).isFile()).toBe(true);
    // The published copy's parent swapped for a link to a directory of someone else's.
    await rename(join(data, 'releases', 'app-f'), join(data, 'moved-app-f'));
    await symlink(join(outside, 'f'), join(data, 'releases', 'app-f'));
    const before = await snapshot(outside);
    controller.setDesired(others);
    const h = await controller.waitForHolding('node', 'app-f', '1', (x) => x?.state === 'failed', 20_000);
    expect(h?.error).toMatch(/releases\/app-f is a symbolic link/);
    expect(await readFile(join(outside, 'f', '1', 'sentinel'), 'utf8')).toBe('do not touch f/1\n');
    expect(await snapshot(outside)).toEqual(before);
    expect(holding('app-a')?.state).toBe('failed');
  }, 40_000);
});
