import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadControllerConfig } from '../src/config.js';
import { ControllerCore } from '../src/controller-core.js';
import { ControllerError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';

/** A controller core on real files and a real origin engine, not started until a test says so. */
async function makeCore(dataDir: string, pathRoot: string): Promise<ControllerCore> {
  const config = await loadControllerConfig({ flags: { data: dataDir, host: '127.0.0.1', port: '0', 'agent-port': '0', 'peer-port': '0', 'path-roots': pathRoot }, env: {} });
  return new ControllerCore({ ...config, token: 'api-token-0123456789', agentToken: 'agent-token-0123456789' }, silentLogger);
}

const code = (p: Promise<unknown> | (() => unknown)) =>
  (typeof p === 'function' ? Promise.resolve().then(p) : p).then(
    () => 'resolved',
    (err: unknown) => (err instanceof ControllerError ? err.code : `other: ${String(err)}`),
  );

describe('ControllerCore publish guards', () => {
  let dir: string;
  let core: ControllerCore | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-publish-guards-'));
  });
  afterEach(async () => {
    await core?.close();
    core = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('answers unavailable to every release call before the stored releases are loaded, and serves them after', async () => {
    core = await makeCore(join(dir, 'data'), dir);
    const body = () => Readable.from([randomBytes(10_000)]);
    expect(await code(core.publishStream({ name: 'a', version: '1' }, 'a.bin', body(), undefined))).toBe('unavailable');
    expect(await code(core.publishPath({ name: 'a', version: '1' }, '/tmp'))).toBe('unavailable');
    expect(await code(core.publishMultipart({ name: 'a', version: '1' }, body(), 'multipart/form-data; boundary=x', undefined))).toBe('unavailable');
    expect(await code(core.retire('a', '1'))).toBe('unavailable');
    expect(await code(() => core!.list())).toBe('unavailable');
    expect(await code(() => core!.status('a', '1'))).toBe('unavailable');
    expect(await code(() => core!.torrent('a', '1'))).toBe('unavailable');
    await core.start(0);
    expect(await code(core.publishStream({ name: 'a', version: '1' }, 'a.bin', body(), undefined))).toBe('resolved');
    expect(core.list().map((r) => r.name)).toEqual(['a']);
  });

  it('never leaves a release retired on disk yet allowed by the tracker and seeded, whatever moment a retire comes', async () => {
    core = await makeCore(join(dir, 'data'), dir);
    await core.start(0);
    const c = core;
    // A release published from a path is hashed again by the origin before it seeds it:
    // the longest window between the store registering a release and its going live.
    const big = join(dir, 'big.bin');
    await writeFile(big, randomBytes(1024));
    await truncate(big, 48 * 1024 * 1024);
    // The retire is sent at each turn of the event loop of the publish, from its start to
    // its end, so it lands in every window there is: while the body streams, after the
    // store has registered the release, while the origin adds it.
    for (let round = 0; round < 4; round++) {
      const version = String(round);
      const publish =
        round % 2 === 0
          ? c.publishStream({ name: 'app', version }, 'app.bin', Readable.from([randomBytes(300_000)]), undefined)
          : c.publishPath({ name: 'app', version }, big);
      let finished = false;
      void publish.finally(() => (finished = true)).catch(() => undefined);
      const outcomes: string[] = [];
      for (let turn = 0; turn < 10_000 && !finished; turn++) {
        outcomes.push(await code(c.retire('app', version)));
        if (outcomes.at(-1) === 'resolved') break;
        await new Promise((r) => setImmediate(r));
      }
      const published = await code(publish);
      const release = c.store.get('app', version);
      const retired = release.record.retiredAt !== undefined;
      // Consistent either way: retired means gone from the tracker and the origin.
      expect(c.tracker.isAllowed(release.metainfo.infoHash), `round ${round}: retired ${retired}, outcomes ${outcomes.join(',')}`).toBe(!retired);
      expect(c.origin.engine.getTorrent(release.record.infoHash) !== undefined).toBe(!retired);
      expect(published).toBe('resolved');
      // A retire while the publish was under way is refused as a conflict, never half-done.
      expect(outcomes.every((o) => o === 'not-found' || o === 'conflict' || o === 'resolved')).toBe(true);
      expect(outcomes).toContain('conflict');
      if (!retired) expect(await code(c.retire('app', version))).toBe('resolved');
      expect(c.tracker.isAllowed(release.metainfo.infoHash)).toBe(false);
    }
  });
});
