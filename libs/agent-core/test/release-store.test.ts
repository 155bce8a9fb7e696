import { mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReleaseStore } from '../src/release-store.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('ReleaseStore', () => {
  it("prepares a version's staging dir while the artifact's emptied dir is being taken away", async () => {
    // Removing an artifact's last version rmdirs its emptied staging dir (removeRelease);
    // a new version prepared at that moment must not lose its parent between two mkdirs.
    dir = await mkdtemp(join(tmpdir(), 'swarmship-store-'));
    const store = new ReleaseStore(dir);
    await store.init();
    const artifactDir = join(dir, 'staging', 'app');
    let taken = 0;
    for (let i = 0; i < 400; i++) {
      // The dir is there and empty; one rmdir lands at a different step of each preparation.
      const prepared = store.prepareStaging('app', `v${i}`);
      for (let t = 0; t < i % 8; t++) await new Promise((r) => setImmediate(r));
      await rmdir(artifactDir).then(() => taken++, () => undefined);
      const staged = await prepared;
      expect((await stat(staged)).isDirectory()).toBe(true);
      await rm(staged, { recursive: true });
    }
    expect(taken).toBeGreaterThan(0);
  });
});
