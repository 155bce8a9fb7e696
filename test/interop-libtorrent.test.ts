/**
 * Our engine and libtorrent exchange a whole artifact both ways, over plain BitTorrent
 * on loopback, each side on its own address: our seeder to a libtorrent leecher, a
 * libtorrent seeder to `swarmship download`, and our BEP 16 super-seeder (which
 * announces pieces one at a time) to a libtorrent leecher, which must still finish.
 */
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeLibtorrentPeer } from './helpers/libtorrent-peer.js';
import { CliProcesses, MIB, downloadResult, makeTempDir, removeDir, sha256OfFile, writeArtifact, writeTorrent } from './helpers/swarm.js';
import { PythonPeer, libtorrentAvailable } from './helpers/tracker-libtorrent.js';
import type { RunningCli } from './helpers/cli.js';

const available = libtorrentAvailable();
if (!available) console.warn('skipping the libtorrent interop tests: install the Debian package python3-libtorrent to run them');

/** Not a whole number of pieces, so the short last piece crosses the wire too. */
const FILE_BYTES = 24 * MIB + 12_345;
const OURS = '127.0.0.1';
const LIBTORRENT = '127.0.0.3';
const NAME = 'artifact.bin';

describe.skipIf(!available)('interop with libtorrent (needs python3-libtorrent)', () => {
  const procs = new CliProcesses();
  const pythons: PythonPeer[] = [];
  let dir: string;
  let content: string;
  let script: string;
  let expected: string;
  let runs = 0;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-libtorrent-');
    content = join(dir, NAME);
    await writeArtifact(content, FILE_BYTES, 'interop-libtorrent');
    expected = await sha256OfFile(content);
    script = await writeLibtorrentPeer(dir);
  });

  afterEach(async () => {
    for (const p of pythons.splice(0)) p.kill();
    await procs.stopAll();
  });

  afterAll(async () => {
    for (const p of pythons.splice(0)) p.kill();
    await procs.stopAll();
    await removeDir(dir);
  });

  async function torrentWithPieces(pieceLength: number): Promise<string> {
    const torrent = join(dir, `artifact-${pieceLength}.torrent`);
    await writeTorrent(content, torrent, { pieceLength });
    return torrent;
  }

  async function freshDir(): Promise<string> {
    const out = join(dir, `run-${++runs}`);
    await mkdir(out);
    return out;
  }

  function libtorrent(torrent: string, saveDir: string, role: 'seed' | 'leech', peers: string[] = []): PythonPeer {
    const peer = new PythonPeer(script, [torrent, saveDir, role, LIBTORRENT, '40', ...peers]);
    pythons.push(peer);
    return peer;
  }

  async function libtorrentLeechesFromUs(seedArgs: string[], pieceLength: number): Promise<RunningCli> {
    const torrent = await torrentWithPieces(pieceLength);
    const { cli, port } = await procs.seeder(torrent, content, seedArgs, OURS);
    const out = await freshDir();
    const leecher = libtorrent(torrent, out, 'leech', [`${OURS}:${port}`]);
    expect(await leecher.exitCode(40_000), leecher.output).toBe(0);
    expect(await sha256OfFile(join(out, NAME))).toBe(expected);
    return cli;
  }

  it('(a) our seeder to a libtorrent leecher, 1 MiB pieces', async () => {
    await libtorrentLeechesFromUs([], MIB);
  });

  it('(b) a libtorrent seeder to swarmship download, 256 KiB pieces', async () => {
    const torrent = await torrentWithPieces(256 * 1024);
    const seedDir = await freshDir();
    // libtorrent finds the data under its save path by the torrent's name.
    await symlink(content, join(seedDir, NAME));
    const seeder = libtorrent(torrent, seedDir, 'seed');
    const port = Number((await seeder.line('LISTEN', 20_000)).split(' ')[1]);
    await seeder.line('SEEDING', 20_000);

    const out = await freshDir();
    const cli = procs.downloader(torrent, out, ['--peer', `${LIBTORRENT}:${port}`], OURS);
    const { code, done } = await downloadResult(cli, 40_000);
    expect(code, `${cli.stderr()}\nlibtorrent ${seeder.output}`).toBe(0);
    expect(done).toMatchObject({ outcome: 'complete', hashFailures: 0 });
    expect(await sha256OfFile(join(out, NAME))).toBe(expected);
  });

  it('(c) our super-seeder to a libtorrent leecher, which still completes', async () => {
    const seeder = await libtorrentLeechesFromUs(['--super-seed'], MIB);
    expect(seeder.events.some((e) => e.phase === 'super-seeding')).toBe(true);
  });
});
