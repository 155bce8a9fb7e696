/**
 * Fault scenario 2: the origin dies once the swarm holds one complete copy, spread over
 * the nodes. A controller (origin seeder, tracker, agent channel in one process, its
 * upload capped so the rollout is still under way) and four agents, all real processes.
 * Agents' uploads are capped too, so they are far from done when the last piece
 * leaves the origin. The moment the origin's super-seeding ends (it has seen every piece announced by some
 * agent: the agents' verified pieces together cover the torrent), the controller is
 * SIGKILLed and never comes back. Every agent must still complete from its peers alone,
 * and every copy must be the artifact byte for byte.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReleaseStatus } from '../../libs/contracts/src/rest.js';
import { parsePrometheus, startAgentProcess, type AgentUnderTest } from '../helpers/agent-process.js';
import { startCli } from '../helpers/cli.js';
import { AGENT_TOKEN, API_TOKEN, startControllerProcess, tempDataDir, type ControllerUnderTest } from '../helpers/controller-process.js';
import { MIB, writeArtifact } from '../helpers/swarm.js';
import { apiGet, compareCopy, sleep } from './checks.js';
import { faultRuns, recordFaultRun } from './record.js';

const RUNS = faultRuns(5, 1);
const AGENTS = 4;
const SIZE = 32 * MIB;
/**
 * About one copy in 4 s from the origin, and agents that upload a quarter of that each:
 * when the last piece has left the origin, each node holds about half the artifact and
 * must fetch the rest from the others.
 */
const ORIGIN_LIMIT = '8MB';
const AGENT_UPLOAD_LIMIT = '2MB';
const SCENARIO = '2-origin-killed';
const TITLE = 'Origin (controller) SIGKILLed once the swarm holds one copy spread across the nodes';
const COMPLETE_WITHIN_MS = 120_000;

describe('fault 2: the origin killed once the swarm holds one complete copy', () => {
  let cleanup: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    cleanup = [];
  });

  for (let run = 1; run <= RUNS; run++) {
    it(`run ${run}: every agent completes from its peers and every copy is bit-identical`, { timeout: 300_000 }, async () => {
      const dir = await tempDataDir();
      cleanup.push(dir.remove);
      const artifact = join(dir.dir, 'payload.bin');
      await writeArtifact(artifact, SIZE, `fault-origin-killed-${run}`);
      const controller: ControllerUnderTest = await startControllerProcess(join(dir.dir, 'controller'), ['--origin-upload-limit', ORIGIN_LIMIT, '--log-format', 'json']);
      cleanup.push(async () => void (await controller.stop()));
      const agents: AgentUnderTest[] = await Promise.all(
        Array.from({ length: AGENTS }, (_, i) => startAgentProcess({ name: `node-${i + 1}`, dataDir: join(dir.dir, `node-${i + 1}`), controllerPort: controller.channel.port, token: AGENT_TOKEN, trustKeys: [controller.publicKeyFile], extra: ['--upload-limit', AGENT_UPLOAD_LIMIT] })),
      );
      cleanup.push(async () => void (await Promise.all(agents.map((a) => a.cli.stop()))));
      await Promise.all(agents.map((a) => a.cli.waitFor((e) => e.event === 'controller-connected', 30_000)));

      const publish = startCli(['publish', artifact, '--name', 'payload', '--version', String(run), '--url', controller.base, '--token', API_TOKEN, '--json']);
      expect(await publish.exited, publish.stderr()).toBe(0);

      // The origin logs when every piece has been seen at some agent: one copy is out there.
      const deadline = Date.now() + 90_000;
      while (!controller.cli.stderr().includes('"msg":"super-seed-ended"')) {
        if (Date.now() > deadline) throw new Error(`the origin never saw a full copy outside it; stderr:\n${controller.cli.stderr().slice(-4000)}`);
        if (agents.every((a) => a.cli.events.some((e) => e.event === 'published'))) throw new Error('every agent completed before the origin saw a full copy outside it');
        await sleep(10);
      }
      const before = await apiGet<ReleaseStatus>(controller.api, `/releases/payload/${run}`).catch(() => undefined);
      controller.cli.child.kill('SIGKILL');
      const killedAt = Date.now();
      await controller.cli.exited;
      const completeAtKill = agents.filter((a) => a.cli.events.some((e) => e.event === 'published')).length;

      // No origin, no tracker, no controller from here on: only the agents.
      const copies = await Promise.all(
        agents.map(async (a) => {
          const done = await a.cli.waitFor((e) => e.event === 'published', COMPLETE_WITHIN_MS).then(
            () => Date.now(),
            () => undefined,
          );
          return { agent: a, done, copy: await compareCopy(artifact, join(a.releaseDir('payload', String(run)), 'payload.bin')) };
        }),
      );
      const finished = copies.map((c) => c.done).filter((t): t is number => t !== undefined);
      // Honest peers never send a piece that fails its hash: one would get them banned.
      const hashFailures = (await Promise.all(agents.map(async (a) => parsePrometheus(await a.metrics()).get('swarmship_agent_hash_failures_total') ?? NaN))).reduce((s, n) => s + n, 0);
      const held = (before?.rollout.nodes ?? []).map((n) => n.verifiedBytes / SIZE).sort((a, b) => a - b);
      const heldText = held.length ? `${Math.round(held[0]! * 100)}–${Math.round(held.at(-1)! * 100)} %` : 'unknown';
      const bytesLost = copies.reduce((s, c) => s + c.copy.lost, 0);
      const bytesCorrupted = copies.reduce((s, c) => s + c.copy.corrupted, 0);
      const ok = finished.length === AGENTS && bytesLost === 0 && bytesCorrupted === 0 && hashFailures === 0;
      await recordFaultRun({
        scenario: SCENARIO,
        title: TITLE,
        run,
        ok,
        bytesLost,
        bytesCorrupted,
        recoveryMs: finished.length === AGENTS ? Math.max(...finished) - killedAt : null,
        detail: `${completeAtKill} of ${AGENTS} nodes complete at the kill; they held ${heldText} each${hashFailures > 0 ? `; ${hashFailures} pieces failed their hash` : ''}`,
      });
      console.log(`fault 2 run ${run}: killed with nodes at ${heldText} (${completeAtKill} complete); last copy ${finished.length === AGENTS ? ((Math.max(...finished) - killedAt) / 1000).toFixed(1) : '—'} s later`);
      for (const c of copies) {
        const state = c.done === undefined ? await agentState(c.agent) : '';
        expect(c.done, `${c.agent.name} completes without the origin (${state}); its log:\n${c.agent.cli.stdout().slice(-3000)}`).toBeDefined();
        expect(c.copy, `${c.agent.name}'s copy`).toEqual({ corrupted: 0, lost: 0 });
      }
      expect(hashFailures, 'pieces that failed their hash at the agents').toBe(0);
      // The kill came while the agents still needed each other.
      expect(completeAtKill).toBeLessThan(AGENTS);
    });
  }
});

/** An agent's own account of a download that did not finish, for the failure message. */
async function agentState(agent: AgentUnderTest): Promise<string> {
  const m = parsePrometheus(await agent.metrics().catch(() => ''));
  const names = ['pieces_verified_total', 'pieces_in_flight', 'peers', 'hash_failures_total', 'sent_bytes_total'];
  return names.map((n) => `${n} ${m.get(`swarmship_agent_${n}`)}`).join(', ');
}
