/**
 * A whole swarm of our own processes on loopback: one tracker, one seeder, five
 * leechers that are told nothing but the torrent. They can only meet through the
 * tracker, so every copy arriving intact proves announce, peer exchange through the
 * tracker, incoming and outgoing connections and verification together.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcesses, MIB, downloadResult, makeTempDir, removeDir, sha256OfFile, writeArtifact, writeTorrent } from './helpers/swarm.js';

const LEECHERS = 5;
const FILE_BYTES = 64 * MIB;

describe('a loopback swarm that meets only through our tracker', () => {
  const procs = new CliProcesses();
  let dir: string;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-swarm-');
  });

  afterAll(async () => {
    await procs.stopAll();
    await removeDir(dir);
  });

  it(`one seeder and ${LEECHERS} leechers: every leecher exits 0 with a byte-identical copy`, async () => {
    const content = join(dir, 'artifact.bin');
    await writeArtifact(content, FILE_BYTES, 'swarm-loopback');
    const { announce } = await procs.tracker();
    const torrent = join(dir, 'artifact.torrent');
    await writeTorrent(content, torrent, { pieceLength: MIB, announce: [announce] });
    const expected = await sha256OfFile(content);

    await procs.seeder(torrent, content);
    const leechers = [];
    for (let i = 0; i < LEECHERS; i++) {
      const out = join(dir, `leecher-${i}`);
      await mkdir(out);
      leechers.push({ out, cli: procs.downloader(torrent, out) });
    }

    const results = await Promise.all(leechers.map(({ cli }) => downloadResult(cli, 45_000)));
    for (const [i, { code, done }] of results.entries()) {
      expect(code, leechers[i]!.cli.stderr()).toBe(0);
      expect(done).toMatchObject({ outcome: 'complete', verifiedPieces: FILE_BYTES / MIB });
    }
    // Leechers served each other: they can only have met through the tracker.
    const sharedBetweenLeechers = results.reduce((sum, { done }) => sum + Number(done?.uploadedBytes ?? 0), 0);
    expect(sharedBetweenLeechers).toBeGreaterThan(0);
    for (const { out } of leechers) expect(await sha256OfFile(join(out, 'artifact.bin'))).toBe(expected);
  }, 60_000);
});
