/**
 * Fault scenario 6: an agent's disk fills up. Its data dir is a small tmpfs; a real
 * controller publishes to it (each run's releases go to that run's agent alone, by
 * label). Two ways to run out:
 *  - a release larger than the free space: refused before a byte is fetched;
 *  - a release that fits, with the disk filled by something else (a filler file, as a
 *    runaway log would) in the middle of its download: the writes fail;
 *  - a .tar release to unpack that fits, but not once unpacked: unpacking fails.
 * Each time the agent must report `failed` with "no space left on device" (the
 * controller's rollout status and the agent's /metrics say so), leave no staging
 * behind and publish nothing; once space is freed (the tmpfs grown, the filler
 * removed) it must complete on its own, its copy identical to the artifact.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseStatus } from '../../libs/contracts/src/rest.js';
import { parsePrometheus, startAgentProcess, type AgentUnderTest } from '../helpers/agent-process.js';
import { startCli } from '../helpers/cli.js';
import { AGENT_TOKEN, API_TOKEN, authHeaders, startControllerProcess, tempDataDir, type ControllerUnderTest } from '../helpers/controller-process.js';
import { MIB, writeArtifact } from '../helpers/swarm.js';
import { mountTmpfs, tmpfsRefused, type Tmpfs } from '../helpers/tmpfs.js';
import { apiGet, compareCopy, sleep, until } from './checks.js';
import { faultRuns, recordFaultRun } from './record.js';

const RUNS = faultRuns(3, 1);
const REFUSED = tmpfsRefused();
const NO_SPACE = 'no space left on device';
/** The origin's pace: a download lasts long enough for the disk to fill in its middle. */
const ORIGIN_LIMIT = '8MB';
const SMALL_VOLUME = 16 * MIB;
const GROWN_VOLUME = 64 * MIB;
const TOO_BIG = 24 * MIB;
const FITS = 24 * MIB;

const CASES = {
  tooBig: { scenario: '6-agent-disk-full-too-big', title: 'Agent disk full: release larger than the free space' },
  midDownload: { scenario: '6-agent-disk-full-mid-download', title: 'Agent disk full: disk fills up mid-download' },
  unpack: { scenario: '6-agent-disk-full-unpack', title: 'Agent disk full: room for the .tar, not for its unpacked files' },
};
/** The file inside the .tar release, and the room left beside the .tar: far less than its unpacked copy. */
const TAR_PAYLOAD = 12 * MIB;
const UNPACK_SLACK = 4 * MIB;
const FINAL_VOLUME = 112 * MIB;

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Bytes actually allocated under `dir` (sparse files count what was written). */
async function allocated(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await allocated(p);
    else total += ((await stat(p).catch(() => undefined))?.blocks ?? 0) * 512;
  }
  return total;
}

/** Writes `bytes` (or as many as fit) to `path`, as another program on the node would. */
async function fill(path: string, bytes: number): Promise<number> {
  const f = await open(path, 'w');
  const chunk = Buffer.alloc(MIB, 0x5a);
  let written = 0;
  try {
    while (written < bytes) {
      const n = Math.min(chunk.length, bytes - written);
      try {
        written += (await f.write(chunk, 0, n, written)).bytesWritten;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  } finally {
    await f.close();
  }
  return written;
}

describe('fault 6: an agent disk fills up', () => {
  let ctlDir: { dir: string; remove: () => Promise<void> } | undefined;
  let ctl: ControllerUnderTest | undefined;
  let volume: Tmpfs | undefined;
  let agent: AgentUnderTest | undefined;

  beforeAll(async () => {
    if (REFUSED !== undefined) return;
    ctlDir = await tempDataDir();
    ctl = await startControllerProcess(join(ctlDir.dir, 'data'), ['--origin-upload-limit', ORIGIN_LIMIT]);
  }, 60_000);

  afterEach(async () => {
    await agent?.cli.stop();
    agent = undefined;
    volume?.unmount();
    volume = undefined;
  });

  afterAll(async () => {
    await ctl?.stop();
    await ctlDir?.remove();
  });

  it.runIf(REFUSED !== undefined)(`is skipped: ${REFUSED}`, async (ctx) => {
    for (const c of Object.values(CASES)) await recordFaultRun({ ...c, skipped: REFUSED! });
    ctx.skip(REFUSED);
  });

  async function publish(file: string, name: string, version: string, selector: string): Promise<void> {
    const cli = startCli(['publish', file, '--name', name, '--version', version, '--selector', selector, '--url', ctl!.base, '--token', API_TOKEN, '--json']);
    expect(await cli.exited, cli.stderr()).toBe(0);
  }

  async function node(name: string, version: string): Promise<ReleaseStatus['rollout']['nodes'][number] | undefined> {
    const s = await apiGet<ReleaseStatus>(ctl!.api, `/releases/${name}/${version}`, API_TOKEN);
    return s.rollout.nodes.find((n) => n.agent === agent!.name);
  }

  /** The agent reports the release failed for want of space, to the controller and in its metrics; nothing staged or published. */
  async function expectNoSpaceFailure(name: string, version: string): Promise<void> {
    const a = agent!;
    let last: unknown;
    const reported = await until(`${a.name} to report ${name}@${version} failed`, async () => {
      const n = await node(name, version);
      last = n;
      return n?.state === 'failed' ? n : undefined;
    }, 60_000, 100).catch((err: Error) => {
      const events = a.cli.events.filter((e) => String(e.release ?? '').startsWith(name)).slice(-5);
      throw new Error(`${err.message}; last reported ${JSON.stringify(last)}; agent said ${JSON.stringify(events)}`);
    });
    expect(reported.error).toBe(NO_SPACE);
    const metrics = parsePrometheus(await a.metrics());
    expect(metrics.get('swarmship_agent_release_state{state="failed"}'), 'releases failed, in the agent metrics').toBe(1);
    expect(metrics.get('swarmship_agent_release_failures_total{reason="no-space"}') ?? 0, 'failures for want of space, in the agent metrics').toBeGreaterThanOrEqual(1);
    // Its staging goes with the failure (right after it is reported).
    await until(`${a.name} to clear the staging of ${name}@${version}`, async () => ((await exists(join(a.dataDir, 'staging', name, version))) ? undefined : true), 10_000, 100);
    expect(await exists(a.releaseDir(name, version)), 'a published path after a failure').toBe(false);
  }

  async function verifiedCopy(file: string, name: string, version: string): Promise<{ lost: number; corrupted: number }> {
    const a = agent!;
    await until(`${a.name} to complete ${name}@${version}`, async () => ((await node(name, version))?.state === 'complete' ? true : undefined), 90_000, 100).catch(() => undefined);
    return compareCopy(file, join(a.releaseDir(name, version), name === 'bundle' ? 'bundle.tar' : `${name}.bin`));
  }

  for (let run = 1; run <= RUNS; run++) {
    it.runIf(REFUSED === undefined)(`run ${run}: failed "${NO_SPACE}", staging cleared, nothing published; complete once space is freed`, async () => {
      const c = ctl!;
      const version = `r${run}`;
      const selector = `disk-run=${version}`;
      volume = mountTmpfs('swarmship-fault-agent-volume-', SMALL_VOLUME);
      const dataDir = join(volume.dir, 'data');
      agent = await startAgentProcess({ name: `disk-node-${run}`, dataDir, controllerPort: c.channel.port, token: AGENT_TOKEN, trustKeys: [c.publicKeyFile], extra: ['--labels', selector] });
      const work = join(ctlDir!.dir, version);
      await rm(work, { recursive: true, force: true });
      await mkdir(work);

      // 1. Larger than the whole free space: refused before anything is fetched.
      const tooBigFile = join(work, 'too-big.bin');
      await writeArtifact(tooBigFile, TOO_BIG, `too-big-${version}`);
      await publish(tooBigFile, 'too-big', version, selector);
      await expectNoSpaceFailure('too-big', version);
      volume.resize(GROWN_VOLUME);
      const grownAt = Date.now();
      const tooBig = await verifiedCopy(tooBigFile, 'too-big', version);
      const tooBigRecovery = Date.now() - grownAt;
      await recordFaultRun({
        ...CASES.tooBig,
        run,
        ok: tooBig.lost === 0 && tooBig.corrupted === 0,
        bytesLost: tooBig.lost,
        bytesCorrupted: tooBig.corrupted,
        recoveryMs: tooBigRecovery,
        detail: `${TOO_BIG / MIB} MiB release, ${SMALL_VOLUME / MIB} MiB volume grown to ${GROWN_VOLUME / MIB} MiB`,
      });
      expect(tooBig).toEqual({ lost: 0, corrupted: 0 });

      // 2. Fits, but the disk fills up while it downloads.
      const fitsFile = join(work, 'fills-up.bin');
      await writeArtifact(fitsFile, FITS, `fills-up-${version}`);
      expect(volume.freeBytes()).toBeGreaterThan(FITS + 4 * MIB);
      await publish(fitsFile, 'fills-up', version, selector);
      const staging = join(dataDir, 'staging', 'fills-up', version);
      const startedWith = await until('the download to have written a few pieces', async () => {
        const n = await allocated(staging);
        return n >= 2 * MIB ? n : undefined;
      }, 60_000, 20);
      const filler = join(volume.dir, 'filler.log');
      const filled = await fill(filler, volume.freeBytes());
      const written = await allocated(staging);
      expect(written, 'the download finished before the disk filled; nothing was tested').toBeLessThan(FITS);
      await expectNoSpaceFailure('fills-up', version);
      expect(await allocated(join(dataDir, 'staging')) + (await allocated(join(dataDir, 'trash'))), 'bytes left in staging or trash after the failure').toBe(0);
      // Give the failed retries a moment with the disk still full: they must fail the same way.
      await sleep(1000);
      expect((await node('fills-up', version))?.state).not.toBe('complete');
      await rm(filler);
      const freedAt = Date.now();
      const fills = await verifiedCopy(fitsFile, 'fills-up', version);
      const recovery = Date.now() - freedAt;
      await recordFaultRun({
        ...CASES.midDownload,
        run,
        ok: fills.lost === 0 && fills.corrupted === 0,
        bytesLost: fills.lost,
        bytesCorrupted: fills.corrupted,
        recoveryMs: recovery,
        detail: `disk filled (${Math.round(filled / MIB)} MiB) with ${Math.round(startedWith / MIB)}-${Math.round(written / MIB)} of ${FITS / MIB} MiB written`,
      });
      expect(fills).toEqual({ lost: 0, corrupted: 0 });
      expect(await readdir(join(dataDir, 'staging', 'fills-up')).catch(() => []), 'staging after completion').toEqual([]);

      // 3. A .tar to unpack: the archive fits, its unpacked copy does not.
      const src = join(work, 'tree');
      await mkdir(src);
      await writeArtifact(join(src, 'payload.bin'), TAR_PAYLOAD, `payload-${version}`);
      const tarFile = join(work, 'bundle.tar');
      execFileSync('tar', ['-cf', tarFile, '-C', src, 'payload.bin']);
      // Used so far, plus the .tar, plus a little: the download fits, the unpacking cannot.
      volume.resize(GROWN_VOLUME - volume.freeBytes() + (await stat(tarFile)).size + UNPACK_SLACK);
      expect(volume.freeBytes()).toBeLessThan((await stat(tarFile)).size + TAR_PAYLOAD);
      const res = await fetch(`${c.api}/releases?name=bundle&version=${version}&filename=bundle.tar&unpack=true&selector=${selector}`, {
        method: 'POST',
        headers: { ...authHeaders(), 'content-type': 'application/octet-stream' },
        body: await readFile(tarFile),
      });
      expect(res.status, await res.clone().text()).toBe(201);
      await expectNoSpaceFailure('bundle', version);
      volume.resize(FINAL_VOLUME);
      const grownForUnpackAt = Date.now();
      const bundle = await verifiedCopy(tarFile, 'bundle', version);
      const unpacked = await compareCopy(join(src, 'payload.bin'), join(agent.releaseDir('bundle', version), 'unpacked', 'payload.bin'));
      const lost = bundle.lost + unpacked.lost;
      const corrupted = bundle.corrupted + unpacked.corrupted;
      await recordFaultRun({
        ...CASES.unpack,
        run,
        ok: lost === 0 && corrupted === 0,
        bytesLost: lost,
        bytesCorrupted: corrupted,
        recoveryMs: Date.now() - grownForUnpackAt,
        detail: `${TAR_PAYLOAD / MIB} MiB .tar, room for it and ${UNPACK_SLACK / MIB} MiB more`,
      });
      expect({ lost, corrupted }).toEqual({ lost: 0, corrupted: 0 });
    }, 300_000);
  }
});
