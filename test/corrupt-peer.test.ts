/**
 * Nothing corrupt is ever published, and a lying peer costs time, not the download.
 * A hostile peer on 127.0.0.2 (its own address, because bans are by IP) serves bad
 * data or bad frames; an honest `swarmship seed` on 127.0.0.1 has the real bytes. The
 * downloader is given both with --peer and must end with a byte-identical file.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { HostilePeer, type HostileBehaviour } from './helpers/hostile-peer.js';
import { CliProcesses, MIB, downloadResult, freePort, makeTempDir, removeDir, sha256OfFile, writeArtifact, writeTorrent } from './helpers/swarm.js';
import type { Metainfo } from '../libs/metainfo/src/index.js';

const FILE_BYTES = 16 * MIB;
const PIECE_LENGTH = 256 * 1024;
const HONEST = '127.0.0.1';
const HOSTILE = '127.0.0.2';

describe('downloading beside a hostile peer', () => {
  const procs = new CliProcesses();
  let hostile: HostilePeer | undefined;
  let dir: string;
  let content: string;
  let torrent: string;
  let metainfo: Metainfo;
  let expected: string;
  let runs = 0;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-corrupt-');
    content = join(dir, 'artifact.bin');
    await writeArtifact(content, FILE_BYTES, 'corrupt-peer');
    torrent = join(dir, 'artifact.torrent');
    metainfo = await writeTorrent(content, torrent, { pieceLength: PIECE_LENGTH });
    expected = await sha256OfFile(content);
  });

  afterEach(async () => {
    await procs.stopAll();
    await hostile?.close();
    hostile = undefined;
  });

  afterAll(async () => {
    await procs.stopAll();
    await removeDir(dir);
  });

  async function startHostile(behaviour: HostileBehaviour): Promise<HostilePeer> {
    hostile = await HostilePeer.start({ behaviour, host: HOSTILE, infoHash: metainfo.infoHash, pieceLength: metainfo.pieceLength, pieceCount: metainfo.pieceCount, contentPath: content });
    return hostile;
  }

  async function freshDir(): Promise<string> {
    const out = join(dir, `download-${++runs}`);
    await mkdir(out);
    return out;
  }

  async function expectIntactCopy(out: string, cli: ReturnType<CliProcesses['downloader']>): Promise<Record<string, unknown>> {
    const { code, done } = await downloadResult(cli, 30_000);
    expect(code, cli.stderr()).toBe(0);
    expect(done).toMatchObject({ outcome: 'complete', verifiedPieces: metainfo.pieceCount });
    expect(await sha256OfFile(join(out, metainfo.name))).toBe(expected);
    return done!;
  }

  /**
   * The download starts knowing only the hostile peer and the address where the honest
   * seeder will be. The hostile peer must be dealt with while nothing else can finish
   * the download; only then does the honest seeder start.
   */
  async function hostileFirstThenHonest(behaviour: HostileBehaviour, dealtWith: (peer: HostilePeer) => void): Promise<Record<string, unknown>> {
    const peer = await startHostile(behaviour);
    const honestPort = await freePort(HONEST);
    const out = await freshDir();
    const cli = procs.downloader(torrent, out, ['--peer', peer.address, '--peer', `${HONEST}:${honestPort}`]);
    await vi.waitFor(() => dealtWith(peer), { timeout: 15_000, interval: 50 });
    expect(cli.child.exitCode, `the download died while only the hostile peer was there:\n${cli.stderr()}`).toBeNull();
    await procs.seeder(torrent, content, ['--port', String(honestPort)], HONEST);
    return expectIntactCopy(out, cli);
  }

  it('a peer that inverts every block: the file is intact and hash failures are counted', async () => {
    const peer = await startHostile('flip-bytes');
    const { port } = await procs.seeder(torrent, content, [], HONEST);
    const out = await freshDir();
    const cli = procs.downloader(torrent, out, ['--peer', peer.address, '--peer', `${HONEST}:${port}`]);
    const done = await expectIntactCopy(out, cli);
    expect(peer.stats.blocksSent).toBeGreaterThan(0);
    expect(done.hashFailures).toBeGreaterThan(0);
  });

  it('only the inverting peer at first, the honest seeder later: the download waits, then completes intact', async () => {
    const done = await hostileFirstThenHonest('flip-bytes', (peer) => {
      // Two pieces' worth of bad blocks sent and the connection cut: banned.
      expect(peer.stats.blocksSent).toBeGreaterThanOrEqual((2 * PIECE_LENGTH) / (16 * 1024));
      expect(peer.stats.dropped).toBeGreaterThanOrEqual(1);
    });
    expect(done.hashFailures).toBeGreaterThanOrEqual(2);
  });

  it.each<[HostileBehaviour, string]>([
    ['garbage', 'random bytes instead of a handshake'],
    ['huge-length', 'a 4 GiB length prefix'],
    ['bad-index', 'a block of a piece index past the end'],
  ])('a peer that sends %s (%s) is dropped and the download completes from the honest seeder', async (behaviour) => {
    const done = await hostileFirstThenHonest(behaviour, (peer) => {
      expect(peer.stats.connections).toBeGreaterThanOrEqual(1);
      expect(peer.stats.dropped).toBeGreaterThanOrEqual(1);
    });
    expect(done.hashFailures).toBe(0);
  });
});
