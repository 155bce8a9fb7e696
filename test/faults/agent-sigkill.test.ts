/**
 * Fault scenario 1: an agent killed with SIGKILL at random moments of one download, ten
 * times in a row (three inside `npm test`), restarted each time on the same data dir.
 *
 * One controller (the origin, upload capped so the download lasts) and one agent, so
 * every byte the agent receives comes from the origin and the origin's counter of bytes
 * sent is the agent's count of bytes fetched. For each kill:
 *  - just before it, the agent's /metrics give the pieces in flight (requested, not yet
 *    verified and on disk) and the pieces it verified since it started;
 *  - after the restart, `download-started` says how many verified bytes it found again;
 *  - refetched = what the origin sent to the killed incarnation − what it kept, and must
 *    be at most its pieces in flight; no verified byte may be lost; nothing may appear
 *    at the published path before the copy is whole.
 * The last restart completes; its copy is compared byte for byte with the artifact.
 */
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { parseTorrent } from '../../libs/metainfo/src/parse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseStatus } from '../../libs/contracts/src/rest.js';
import { startAgentProcess, parsePrometheus, type AgentUnderTest } from '../helpers/agent-process.js';
import { startCli } from '../helpers/cli.js';
import { AGENT_TOKEN, API_TOKEN, startControllerProcess, tempDataDir, type ControllerUnderTest } from '../helpers/controller-process.js';
import { MIB, writeArtifact } from '../helpers/swarm.js';
import { apiGet, compareCopy, faultSeed, seededRandom, sleep, until } from './checks.js';
import { faultRuns, recordFaultRun } from './record.js';

const FULL = process.env.SWARMSHIP_FAULTS_FULL === '1';
const KILLS = faultRuns(10, 3);
const SIZE = (FULL ? 64 : 32) * MIB;
/** The origin's cap: each incarnation lives at most KILL_MAX_MS, so KILLS × cap × that stays under SIZE. */
const ORIGIN_LIMIT = '4MB';
const KILL_MIN_MS = 200;
const KILL_MAX_MS = 1200;
const SCENARIO = '1-agent-sigkill';
const TITLE = 'Agent SIGKILLed at random moments of a download, restarted each time';

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('fault 1: an agent SIGKILLed at random moments of a download', () => {
  let dir: { dir: string; remove: () => Promise<void> };
  let controller: ControllerUnderTest | undefined;
  const agents: AgentUnderTest[] = [];
  let artifact: string;

  beforeAll(async () => {
    dir = await tempDataDir();
    artifact = join(dir.dir, 'payload.bin');
    await writeArtifact(artifact, SIZE, 'fault-agent-sigkill');
    controller = await startControllerProcess(join(dir.dir, 'controller'), ['--origin-upload-limit', ORIGIN_LIMIT]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cli.stop()));
    await controller?.stop();
    await dir?.remove();
  });

  it(`resumes after each of ${KILLS} kills, refetching at most the pieces in flight, and publishes a bit-identical copy`, { timeout: 600_000 }, async () => {
    const seed = faultSeed();
    const random = seededRandom(seed);
    const why = (m: string) => `${m} (replay with SWARMSHIP_FAULT_SEED=${seed})`;
    const ctl = controller!;
    const dataDir = join(dir.dir, 'node');
    const start = (ports?: { httpPort: number; peerPort: number }) =>
      startAgentProcess({ name: 'node-1', dataDir, controllerPort: ctl.channel.port, token: AGENT_TOKEN, trustKeys: [ctl.publicKeyFile], ...ports }).then((a) => {
        agents.push(a);
        return a;
      });
    let agent = await start();
    await agent.cli.waitFor((e) => e.event === 'controller-connected', 30_000);

    const publish = startCli(['publish', artifact, '--name', 'payload', '--version', '1', '--url', ctl.base, '--token', API_TOKEN, '--json']);
    expect(await publish.exited, publish.stderr()).toBe(0);
    const status = () => apiGet<ReleaseStatus>(ctl.api, '/releases/payload/1');
    const pieceLength = await pieceLengthOf(ctl);
    const published = agent.releaseDir('payload', '1');

    /** The origin's bytes sent once it has stopped moving (the killed agent's socket is closed). */
    const settledOriginSent = async (): Promise<number> => {
      let last = (await status()).rollout.originBytesSent;
      for (let i = 0; i < 40; i++) {
        await sleep(250);
        const now = (await status()).rollout.originBytesSent;
        if (now === last) return now;
        last = now;
      }
      throw new Error('the origin kept sending after the only agent was killed');
    };

    let started = await agent.cli.waitFor((e) => e.event === 'download-started', 30_000);
    let resumed = Number(started.resumedBytes);
    expect(resumed).toBe(0);
    let sentBefore = 0;
    let refetchedTotal = 0;
    let restartAt = 0;
    const kills: { kill: number; delay: number; inFlight: number; refetchedPieces: number; lost: number; early: { corrupted: number; lost: number } }[] = [];
    const killRun = (k: (typeof kills)[number], extra: { ok: boolean; lost: number; corrupted: number; recoveryMs: number | null }) =>
      recordFaultRun({
        scenario: SCENARIO,
        title: TITLE,
        run: k.kill,
        ok: extra.ok,
        bytesLost: k.lost + k.early.lost + extra.lost,
        bytesCorrupted: k.early.corrupted + extra.corrupted,
        recoveryMs: extra.recoveryMs,
        detail: `refetched ${k.refetchedPieces} piece${k.refetchedPieces === 1 ? '' : 's'} (in flight: ${k.inFlight})`,
      });
    for (let kill = 1; kill <= KILLS; kill++) {
      const delay = KILL_MIN_MS + Math.floor(random() * (KILL_MAX_MS - KILL_MIN_MS));
      await sleep(delay);
      if (agent.cli.events.some((e) => e.event === 'published')) throw new Error(why(`the download finished before kill ${kill}: the artifact is too small for ${KILLS} kills`));
      // Read the metrics, then kill at once. The agent runs on between its answer and the
      // signal (the answer's way back, this process's next tick, the signal's delivery), so
      // it may have started one more piece than the metrics said were in flight.
      const samples = parsePrometheus(await agent.metrics());
      agent.cli.child.kill('SIGKILL');
      await agent.cli.exited;
      const inFlight = samples.get('swarmship_agent_pieces_in_flight') ?? NaN;
      const verifiedSince = samples.get('swarmship_agent_pieces_verified_total') ?? NaN;
      expect(Number.isFinite(inFlight) && Number.isFinite(verifiedSince), 'the agent exposes pieces in flight and verified').toBe(true);
      const verifiedBeforeKill = Math.min(SIZE, resumed + verifiedSince * pieceLength);
      const sent = await settledOriginSent();
      // Nothing half-written may sit at the published path.
      const early = (await exists(published)) ? await compareCopy(artifact, join(published, 'payload.bin')) : { corrupted: 0, lost: 0 };

      restartAt = Date.now();
      agent = await start({ httpPort: agent.httpPort, peerPort: agent.peerPort });
      started = await agent.cli.waitFor((e) => e.event === 'download-started', 60_000);
      const resumedNow = Number(started.resumedBytes);
      const refetched = sent - sentBefore - (resumedNow - resumed);
      const k = { kill, delay, inFlight, refetchedPieces: Math.ceil(Math.max(0, refetched) / pieceLength), lost: Math.max(0, verifiedBeforeKill - resumedNow), early };
      kills.push(k);
      refetchedTotal += Math.max(0, refetched);
      const refetchBound = (inFlight + 1) * pieceLength;
      const ok = k.lost === 0 && refetched <= refetchBound && early.corrupted === 0 && early.lost === 0;
      // The copy is whole only after the last restart: the last kill's run is recorded with it.
      if (kill < KILLS || !ok) await killRun(k, { ok, lost: 0, corrupted: 0, recoveryMs: null });
      expect(early, why(`kill ${kill}: a partial copy appeared at the published path`)).toEqual({ corrupted: 0, lost: 0 });
      expect(resumedNow, why(`kill ${kill}: verified bytes before the kill must be found again`)).toBeGreaterThanOrEqual(verifiedBeforeKill);
      expect(refetched, why(`kill ${kill} after ${delay} ms: refetched ${refetched} bytes with ${inFlight} pieces of ${pieceLength} in flight (and one more allowed)`)).toBeLessThanOrEqual(refetchBound);
      sentBefore = sent;
      resumed = resumedNow;
    }

    // The last incarnation runs to the end: recovery counts from its start.
    const last = kills.at(-1)!;
    let copy = { corrupted: 0, lost: SIZE };
    let recoveryMs: number | null = null;
    try {
      const done = await agent.cli.waitFor((e) => e.event === 'published', 240_000);
      recoveryMs = Date.now() - restartAt;
      copy = await compareCopy(artifact, join(String(done.path), 'payload.bin'));
    } finally {
      await killRun(last, { ok: copy.corrupted === 0 && copy.lost === 0, lost: copy.lost, corrupted: copy.corrupted, recoveryMs });
    }
    const final = await until('the controller to see the copy complete', async () => {
      const s = await status();
      return s.rollout.complete === 1 ? s : undefined;
    }, 60_000);
    console.log(
      `fault 1 (seed ${seed}): ${kills.map((k) => `kill ${k.kill} at +${k.delay} ms refetched ${k.refetchedPieces}/${k.inFlight} in flight`).join('; ')}; ` +
        `${(refetchedTotal / MIB).toFixed(1)} MiB refetched in all; origin sent ${(final.rollout.originBytesSent / SIZE).toFixed(3)} × the artifact; last copy ${((recoveryMs ?? 0) / 1000).toFixed(1)} s after the last restart`,
    );
    expect(copy, why('the final copy')).toEqual({ corrupted: 0, lost: 0 });
    // The last incarnation fetched only what was missing.
    expect(final.rollout.originBytesSent - sentBefore).toBe(SIZE - resumed);
    expect(await agent.cli.stop()).toBe(0);
  });
});

/** The release's piece length, from its torrent as the controller serves it. */
async function pieceLengthOf(ctl: ControllerUnderTest): Promise<number> {
  const res = await fetch(`${ctl.api}/releases/payload/1/torrent`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
  if (!res.ok) throw new Error(`GET the release's torrent: ${res.status}`);
  return parseTorrent(Buffer.from(await res.arrayBuffer())).pieceLength;
}
