import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
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
});
