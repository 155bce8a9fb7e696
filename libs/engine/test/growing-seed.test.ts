import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine, type Torrent } from '../src/index.js';
import { cleanupAfterEach, describeFile } from './loopback-fixtures.js';

const { cleanups, tempDir } = cleanupAfterEach();
const KIB = 1024;

function engine(downloadRateLimit?: number): Engine {
  const e = new Engine({ host: '127.0.0.1', port: 0, ...(downloadRateLimit ? { downloadRateLimit } : {}) });
  cleanups.push(() => e.close());
  return e;
}

const completion = (t: Torrent) => new Promise<void>((resolve) => (t.complete ? resolve() : t.once('complete', () => resolve())));

describe('a growing torrent (an origin seeding an upload as it arrives)', () => {
  // The controller starts seeding a release whose upload is still arriving: its file
  // exists at full length (sparse), and each piece is offered only once the upload has
  // written and verified it. Here the "upload" writes a piece every 15 ms.
  for (const superSeed of [true, false]) {
    it(`serves each piece only once it has landed, and its peers finish with the exact bytes (${superSeed ? 'super-seeding' : 'plain seeding'})`, async () => {
      const pieceLength = 64 * KIB;
      const data = randomBytes(48 * pieceLength - 1000);
      const info = describeFile('growing.bin', data, pieceLength);
      const originDir = await tempDir();
      const file = await open(join(originDir, info.name), 'w');
      await file.truncate(data.length);
      const origin = engine();
      const originPort = await origin.listen();
      const seed = await origin.addTorrent(info, { dir: originDir, mode: 'growing', superSeed });
      expect(seed.complete).toBe(false);
      expect(seed.superSeeding).toBe(superSeed);

      const peers = [engine(4096 * KIB), engine(4096 * KIB)];
      const ports: number[] = [];
      for (const e of peers) ports.push(await e.listen());
      const landed = new Set<number>();
      const early: string[] = [];
      const torrents: Torrent[] = [];
      const dirs: string[] = [];
      for (const [i, e] of peers.entries()) {
        dirs.push(await tempDir());
        const t = await e.addTorrent(info, { dir: dirs[i]!, mode: 'download', peers: [{ host: '127.0.0.1', port: originPort }, ...ports.slice(0, i).map((port) => ({ host: '127.0.0.1', port }))] });
        t.on('piece', (index: number) => {
          if (!landed.has(index)) early.push(`peer ${i} verified piece ${index} before it landed`);
        });
        torrents.push(t);
      }
      const completed = Promise.all(torrents.map(completion));

      for (let index = 0; index < info.pieceCount; index++) {
        const start = index * pieceLength;
        await file.write(data, start, Math.min(pieceLength, data.length - start), start);
        landed.add(index);
        seed.pieceLanded(index);
        await new Promise((r) => setTimeout(r, 15));
      }
      await file.close();
      expect(seed.complete).toBe(true);
      await completed;

      expect(early).toEqual([]);
      for (const [i, t] of torrents.entries()) {
        expect(t.stats().hashFailures, `peer ${i}`).toBe(0);
        expect((await readFile(join(dirs[i]!, info.name))).equals(data), `peer ${i}'s copy`).toBe(true);
      }
      // It never asked its peers for anything: the upload is its only source.
      expect(seed.stats().downloadedBytes).toBe(0);
    }, 30_000);
  }
});
