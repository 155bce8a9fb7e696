/**
 * `publish --wait` with a selector no agent matches gives up after a short grace with
 * exit 1 and says why, instead of holding the CI job for its whole --timeout.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from './helpers/cli.js';
import { API_TOKEN, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';

describe('publish --wait when no agent matches', () => {
  let data: Awaited<ReturnType<typeof tempDataDir>>;
  let ctl: ControllerUnderTest;

  beforeAll(async () => {
    data = await tempDataDir();
    ctl = await startControllerProcess(join(data.dir, 'controller'));
  }, 60_000);

  afterAll(async () => {
    await ctl?.stop();
    await data?.remove();
  });

  it('exits 1 after the grace, naming the cause, long before its timeout', async () => {
    const artifact = join(data.dir, 'app.bin');
    await writeFile(artifact, Buffer.alloc(64 * 1024, 7));
    const started = performance.now();
    const publish = startCli(['publish', artifact, '--name', 'app', '--version', '1', '--selector', 'tier=nowhere', '--wait', '--timeout', '10m', '--url', ctl.base, '--token', API_TOKEN]);
    const code = await publish.exited;
    const seconds = (performance.now() - started) / 1000;
    expect(code).toBe(1);
    expect(publish.stderr()).toContain('no agent matches the selector');
    expect(seconds).toBeGreaterThan(29);
    expect(seconds).toBeLessThan(120);
  }, 150_000);
});
