/**
 * Fault scenario 5: a node cut off from the network in the middle of a rollout, on the
 * fleet harness (bench/fleet: every host a network namespace on one bridge, shaped
 * links). swarmship runs as in production: a controller on the origin host, an agent on
 * each of four nodes, `publish --wait` from the origin. Once the last node has started
 * its download, its link goes down (`ip link set … down`: connections stay open and hear
 * nothing) for 20 s (10 s inside `npm test`), then comes back. The rollout must complete
 * (`publish --wait` exits 0), every copy must be the artifact byte for byte.
 *
 * The same again on links with 5 % loss and 100 ms of delay in each direction, which
 * needs tc's netem qdisc: where the kernel has none the run is recorded as skipped, with
 * the reason. Everything needs root for `ip netns`; without it the file skips and says why.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFleet } from '../../bench/fleet/harness.js';
import { netemUnavailableReason, netnsUnavailableReason } from '../../bench/fleet/network.js';
import type { NodeCopy, Scenario, ScenarioContext } from '../../bench/fleet/scenario.js';
import { swarmshipFleet, type SwarmshipFleetScenario } from '../../bench/fleet/scenarios/swarmship.js';
import { MIB } from '../helpers/swarm.js';
import { compareCopy, sleep } from './checks.js';
import { faultRuns, recordFaultRun } from './record.js';

const FULL = process.env.SWARMSHIP_FAULTS_FULL === '1';
const NODES = 4;
const CUT_MS = FULL ? 20_000 : 10_000;
/** After the cut node's download starts: early enough that it is far from done. */
const CUT_AFTER_MS = 500;

const netns = netnsUnavailableReason();
const netem = netns ?? netemUnavailableReason();

interface Fault {
  /** performance.now() when the link went down and came back up. */
  downAt?: number;
  upAt?: number;
  node?: string;
  /** Other nodes that completed while it was cut off. */
  othersDoneWhileDown?: number;
  copies: { node: string; corrupted: number; lost: number }[];
}

const published = (l: { json?: Record<string, unknown> }) => l.json?.event === 'published';

/** swarmship's fleet scenario with the last node's link down for `cutMs` once its download is under way. */
function withNodeCutOff(inner: SwarmshipFleetScenario, cutMs: number, fault: Fault): Scenario {
  return {
    id: 'swarmship-node-cut-off',
    label: `swarmship, one node's link down ${cutMs / 1000} s mid-rollout`,
    kind: 'swarm',
    notes: inner.notes,
    setup: (ctx) => inner.setup(ctx),
    start: (ctx) => inner.start(ctx),
    async waitForNodes(ctx: ScenarioContext): Promise<Map<string, NodeCopy>> {
      const all = inner.waitForNodes(ctx);
      // Observed below, after the fault; a rejection meanwhile must not go unhandled.
      all.catch(() => undefined);
      const target = ctx.net.nodes.at(-1)!;
      fault.node = target.name;
      const agent = inner.agent(target.name)!;
      await agent.waitLine((l) => l.json?.event === 'download-started', Math.max(1000, ctx.deadline - performance.now()), 'download-started');
      await sleep(CUT_AFTER_MS);
      if (agent.lines.some(published)) throw new Error(`${target.name} finished before its link went down: the artifact is too small for this link rate`);
      const others = ctx.net.nodes.filter((n) => n !== target).map((n) => inner.agent(n.name)!);
      const doneBefore = others.filter((a) => a.lines.some(published)).length;
      ctx.log(`${target.name}: link down for ${cutMs / 1000} s`);
      fault.downAt = performance.now();
      ctx.net.setLink(target, false);
      try {
        await sleep(cutMs);
      } finally {
        ctx.net.setLink(target, true);
        fault.upAt = performance.now();
      }
      fault.othersDoneWhileDown = others.filter((a) => a.lines.some(published)).length - doneBefore;
      ctx.log(`${target.name}: link up again`);
      return all;
    },
    finishedAt: (ctx) => inner.finishedAt!(ctx),
    milestones: () => ({ ...inner.milestones?.(), ...(fault.downAt ? { 'link down': fault.downAt } : {}), ...(fault.upAt ? { 'link up': fault.upAt } : {}) }),
    async teardown(ctx: ScenarioContext) {
      // Byte for byte, before the harness removes the hosts' dirs; a node that never
      // published has lost every byte.
      for (const node of ctx.net.nodes) {
        const line = inner.agent(node.name)?.lines.find(published);
        const copy = line ? await compareCopy(ctx.artifact.path, join(String(line.json!.path), ctx.artifact.name)) : { corrupted: 0, lost: ctx.artifact.size };
        fault.copies.push({ node: node.name, ...copy });
      }
      await inner.teardown(ctx);
    },
  };
}

async function cutOffRun(opts: { scenario: string; title: string; run: number; size: number; latencyMs?: number; lossPercent?: number; timeoutMs: number }): Promise<void> {
  const fault: Fault = { copies: [] };
  const log: string[] = [];
  const result = await runFleet({
    nodes: NODES,
    rateBitsPerSecond: 100e6,
    size: opts.size,
    pieceLength: 256 * 1024,
    latencyMs: opts.latencyMs,
    lossPercent: opts.lossPercent,
    scenarios: [withNodeCutOff(swarmshipFleet(), CUT_MS, fault)],
    timeoutMs: opts.timeoutMs,
    log: (m) => log.push(m),
  });
  console.log(log.join('\n'));
  const r = result.scenarios[0]!;
  const bytesLost = fault.copies.reduce((s, c) => s + c.lost, 0);
  const bytesCorrupted = fault.copies.reduce((s, c) => s + c.corrupted, 0);
  const cutNode = r.hosts.find((h) => h.host === fault.node);
  // Seconds from the scenario's start, as the harness reports them.
  const upSeconds = fault.upAt !== undefined ? (r.milestones['link up'] ?? NaN) : NaN;
  const lastCopy = r.curve.length === NODES ? r.curve.at(-1)! : NaN;
  const recoveryMs = Number.isFinite(upSeconds) && Number.isFinite(lastCopy) ? Math.round((lastCopy - upSeconds) * 1000) : null;
  await recordFaultRun({
    scenario: opts.scenario,
    title: opts.title,
    run: opts.run,
    ok: r.ok && bytesLost === 0 && bytesCorrupted === 0 && fault.copies.length === NODES,
    bytesLost,
    bytesCorrupted,
    recoveryMs,
    detail: `${fault.othersDoneWhileDown ?? 0} of ${NODES - 1} other nodes completed while it was cut off${r.ok ? '' : `; ${r.error}`}`,
  });
  console.log(`fault 5 ${opts.scenario} run ${opts.run}: ${fault.othersDoneWhileDown ?? 0} of ${NODES - 1} other nodes completed while ${fault.node} was cut off; last copy ${recoveryMs !== null ? (recoveryMs / 1000).toFixed(1) : '—'} s after its link came back`);
  expect(r.error, r.error).toBeUndefined();
  expect(r.allVerified).toBe(true);
  expect(fault.upAt, 'the link was taken down and brought back').toBeDefined();
  expect(fault.copies).toEqual(Array.from({ length: NODES }, (_, i) => ({ node: `n${String(i + 1).padStart(2, '0')}`, corrupted: 0, lost: 0 })));
  // The cut node finished after its link came back, and publish --wait saw the whole rollout.
  expect(cutNode?.completedSeconds).toBeGreaterThan(upSeconds);
  expect(r.finishedSeconds).not.toBeNull();
}

const title = `One node's link down ${CUT_MS / 1000} s in the middle of a rollout (fleet of ${NODES} namespace hosts)`;
const lossyTitle = `The same on links with 5 % loss and 100 ms delay each way`;
// What cannot run here is said in the reliability report, not left out of it.
if (netns !== undefined) await recordFaultRun({ scenario: '5-node-cut-off', title, skipped: netns });
if (netem !== undefined) await recordFaultRun({ scenario: '5-node-cut-off-lossy', title: lossyTitle, skipped: `tc's netem qdisc is unavailable: ${netem}` });

describe('fault 5: a node cut off mid-rollout on the fleet harness', () => {
  const runs = faultRuns(3, 1);
  for (let run = 1; run <= runs; run++) {
    it.skipIf(netns !== undefined)(`run ${run}: the rollout completes and every copy is bit-identical${netns ? ` (skipped: ${netns})` : ''}`, { timeout: 300_000 }, async () => {
      await cutOffRun({ scenario: '5-node-cut-off', title, run, size: 48 * MIB, timeoutMs: 240_000 });
    });
  }

  it.skipIf(netem !== undefined)(`on lossy, slow links too${netem ? ` (skipped: netem is unavailable: ${netem})` : ''}`, { timeout: 900_000 }, async () => {
    // TCP crawls at 10 % loss over 400 ms round trips: a small artifact, and time.
    await cutOffRun({ scenario: '5-node-cut-off-lossy', title: lossyTitle, run: 1, size: (FULL ? 4 : 1) * MIB, latencyMs: 100, lossPercent: 5, timeoutMs: FULL ? 600_000 : 240_000 });
  });
});
