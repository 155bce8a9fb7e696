/**
 * Two libtorrent sessions, a seeder and a leecher, that can find each other only through
 * our tracker (no DHT, LSD, PEX, UPnP, NAT-PMP): the leecher must end up with the file.
 * The torrent is made by libtorrent too, so this proves the tracker alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTrackerServer, type RunningTracker } from '../libs/tracker/src/index.js';
import { PythonPeer, libtorrentAvailable, makeTorrent, writeScripts } from './helpers/tracker-libtorrent.js';

const available = libtorrentAvailable();
if (!available) console.warn('skipping the libtorrent tracker interop test: install python3-libtorrent to run it');

/** A few MiB and not a whole number of pieces, so the short last piece is exercised. */
const FILE_BYTES = 3 * 1024 * 1024 + 12_345;

describe.skipIf(!available)('tracker interop with libtorrent (needs python3-libtorrent)', () => {
  let dir: string;
  let tracker: RunningTracker;
  const peers: PythonPeer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-tracker-interop-'));
    // Private from the start; the torrent's hash is allowed once it is known.
    tracker = await startTrackerServer({ host: '127.0.0.1', port: 0, allow: [], interval: 30 });
  });

  afterAll(async () => {
    for (const peer of peers) peer.kill();
    await tracker?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a libtorrent leecher finds a libtorrent seeder through our tracker and downloads a byte-identical file', async () => {
    const scripts = await writeScripts(dir);
    const seedDir = join(dir, 'seed');
    const leechDir = join(dir, 'leech');
    await mkdir(seedDir);
    await mkdir(leechDir);
    const content = randomBytes(FILE_BYTES);
    await writeFile(join(seedDir, 'artifact.bin'), content);
    const torrent = join(dir, 'artifact.torrent');
    const infoHash = Buffer.from(makeTorrent(scripts.makeTorrent, join(seedDir, 'artifact.bin'), torrent, tracker.url), 'hex');
    tracker.core.allow(infoHash);
    const counts = () => tracker.core.store.counts(infoHash.toString('latin1'));

    const seeder = new PythonPeer(scripts.peer, [torrent, seedDir, 'seed', '110']);
    peers.push(seeder);
    await seeder.line('SEEDING', 30_000);
    await vi.waitFor(() => expect(counts().complete).toBe(1), { timeout: 15_000, interval: 100 });

    const leecher = new PythonPeer(scripts.peer, [torrent, leechDir, 'leech', '80']);
    peers.push(leecher);
    const code = await leecher.exitCode(90_000);
    expect(code, leecher.output).toBe(0);

    const downloaded = await readFile(join(leechDir, 'artifact.bin'));
    expect(downloaded.length).toBe(content.length);
    expect(downloaded.equals(content)).toBe(true);
    // The leecher's `completed` reached the tracker and was counted once; whether its
    // `stopped` on exit arrived too is up to libtorrent, but it is no leecher any more.
    await vi.waitFor(() => expect(counts()).toMatchObject({ incomplete: 0, downloaded: 1 }), { timeout: 10_000, interval: 100 });
    expect(counts().complete).toBeGreaterThanOrEqual(1);
  }, 150_000);
});
