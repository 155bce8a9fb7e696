import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine } from '../src/index.js';
import { cleanupAfterEach, describeFile } from './loopback-fixtures.js';

const { cleanups, tempDir } = cleanupAfterEach();

function engine(): Engine {
  const e = new Engine({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => e.close());
  return e;
}

describe('engine on loopback', () => {
  it('moves a file from one seeder to two leechers, every copy identical', async () => {
    const data = randomBytes(6 * 1024 * 1024 + 12345);
    const info = describeFile('artifact.bin', data, 256 * 1024);
    const seedDir = await tempDir();
    await writeFile(join(seedDir, info.name), data);
    const seeder = engine();
    const seedPort = await seeder.listen();
    await seeder.addTorrent(info, { dir: seedDir, mode: 'seed' });

    const leechers = await Promise.all(
      [0, 1].map(async () => {
        const dir = await tempDir();
        const e = engine();
        await e.listen();
        const t = await e.addTorrent(info, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: seedPort }] });
        return { dir, t };
      }),
    );
    await Promise.all(leechers.map(({ t }) => new Promise((resolve, reject) => {
      t.once('complete', resolve);
      t.once('error', reject);
    })));
    for (const { dir, t } of leechers) {
      expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
      expect(t.stats().hashFailures).toBe(0);
    }
  });

  it('resumes: pieces already on disk are verified and not fetched again', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const info = describeFile('resume.bin', data, 128 * 1024);
    const seedDir = await tempDir();
    await writeFile(join(seedDir, info.name), data);
    const seeder = engine();
    const seedPort = await seeder.listen();
    await seeder.addTorrent(info, { dir: seedDir, mode: 'seed' });

    const dir = await tempDir();
    const partial = Buffer.from(data);
    partial.fill(0, 1024 * 1024); // second half missing
    await writeFile(join(dir, info.name), partial);
    const e = engine();
    await e.listen();
    const t = await e.addTorrent(info, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: seedPort }] });
    expect(t.stats().verifiedPieces).toBe(8);
    await new Promise((resolve) => t.once('complete', resolve));
    expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
    expect(t.stats().downloadedBytes).toBe(1024 * 1024);
  });

  it("verifies pieces by the torrent's SHA-256s when it carries them, and fails, blaming nobody, when they disagree with its SHA-1s", async () => {
    const data = randomBytes(1024 * 1024 + 500);
    const pieceLength = 128 * 1024;
    const base = describeFile('sha256.bin', data, pieceLength);
    const sha256s = Buffer.concat(Array.from({ length: base.pieceCount }, (_, i) => createHash('sha256').update(data.subarray(i * pieceLength, (i + 1) * pieceLength)).digest()));
    const seedDir = await tempDir();
    await writeFile(join(seedDir, base.name), data);
    const seeder = engine();
    const seedPort = await seeder.listen();

    // Agreeing lists: an ordinary download, every piece checked by its SHA-256; a resumed copy too.
    const good = { ...base, pieceSha256: sha256s };
    await seeder.addTorrent(good, { dir: seedDir, mode: 'seed' });
    const dir = await tempDir();
    const leecher = engine();
    await leecher.listen();
    const t = await leecher.addTorrent(good, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: seedPort }] });
    await new Promise((resolve, reject) => {
      t.once('complete', resolve);
      t.once('error', reject);
    });
    expect((await readFile(join(dir, base.name))).equals(data)).toBe(true);
    expect(t.stats().hashFailures).toBe(0);
    await leecher.removeTorrent(t.infoHashHex);
    expect((await leecher.addTorrent(good, { dir, mode: 'download' })).stats().verifiedPieces).toBe(base.pieceCount);

    // A SHA-256 list for other bytes (a different info hash, so a swarm of its own).
    const wrong = Buffer.from(sha256s);
    wrong[3 * 32]! ^= 1;
    const bad = { ...describeFile('sha256-bad.bin', data, pieceLength), pieceSha256: wrong };
    const badSeedDir = await tempDir();
    await writeFile(join(badSeedDir, bad.name), data);
    // The seeder trusts its files, as the controller does after making the torrent.
    await seeder.addTorrent(bad, { dir: badSeedDir, mode: 'seed', trustFiles: true });
    const badLeecher = engine();
    await badLeecher.listen();
    const tb = await badLeecher.addTorrent(bad, { dir: await tempDir(), mode: 'download', peers: [{ host: '127.0.0.1', port: seedPort }] });
    const err = await new Promise<Error>((resolve) => tb.once('error', resolve));
    expect(err.name).toBe('DigestListError');
    expect(err.message).toMatch(/piece 3 has the torrent's SHA-1 but not its SHA-256/);
  });

  it('dials back a peer that dialled it and then went, by the port its extension handshake names', async () => {
    // The peer holding the pieces dials us, then drops the torrent and takes it up again
    // knowing nobody (an agent re-adding a finished download as a seed, its tracker gone):
    // we are the only side that can bring the two together again.
    const data = randomBytes(2 * 1024 * 1024);
    const info = describeFile('dial-back.bin', data, 128 * 1024);
    const seedDir = await tempDir();
    await writeFile(join(seedDir, info.name), data);
    const seeder = new Engine({ host: '127.0.0.1', port: 0, uploadRateLimit: 1024 * 1024 });
    cleanups.push(() => seeder.close());
    await seeder.listen();

    const dir = await tempDir();
    const leecher = engine();
    const leecherPort = await leecher.listen();
    const t = await leecher.addTorrent(info, { dir, mode: 'download' });
    const firstPiece = new Promise((resolve) => t.once('piece', resolve));
    await seeder.addTorrent(info, { dir: seedDir, mode: 'seed', peers: [{ host: '127.0.0.1', port: leecherPort }] });
    await firstPiece;
    await seeder.removeTorrent(info.infoHash.toString('hex'));
    expect(t.stats().verifiedPieces).toBeLessThan(info.pieceCount);
    await seeder.addTorrent(info, { dir: seedDir, mode: 'seed' });

    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`never dialled the seeder back: ${t.stats().verifiedPieces}/${info.pieceCount} pieces`)), 10_000);
      t.once('complete', () => resolve(clearTimeout(timer)));
      t.once('error', reject);
    });
    expect((await readFile(join(dir, info.name))).equals(data)).toBe(true);
  });
});
