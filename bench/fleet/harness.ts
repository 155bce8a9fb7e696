/**
 * The fleet harness: makes the hosts and links once, makes the artifact once, then runs
 * each scenario on them in turn, timing it, counting the bytes on every link, sampling
 * every process it started, checking every copy bit for bit, and stopping everything it
 * started. Namespaces, links and processes go away on return, on an exception, on
 * SIGINT/SIGTERM and (as a last resort) on process exit.
 */

import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child, killAllChildren, Sampler } from '../lib/proc.js';
import { findRoot, fmtBytes, generateRandomFile as generate, sha1Of } from '../lib/files.js';
import { deleteAllNamespaces, FleetNetwork, type Host, type LinkCounters } from './network.js';
import { busyShare, diskStalledSeconds, LinkTimelineRecorder, linkUse, machineCpu, type LinkTimeline } from './link-timeline.js';
import type { Artifact, NodeCopy, Scenario, ScenarioContext } from './scenario.js';

/** Shared with the fleet's command line and report. */
export { findRoot, fmtBytes, sha1Of };

const MIB = 1024 * 1024;

export interface FleetOptions {
  nodes: number;
  rateBitsPerSecond: number;
  size: number;
  pieceLength: number;
  latencyMs?: number;
  lossPercent?: number;
  /** Node n01 runs at this fraction of the others' rate. */
  slowNodeFactor?: number;
  scenarios: Scenario[];
  /** Per scenario, from its start. */
  timeoutMs: number;
  log?: (message: string) => void;
  /** Parent of the scratch dir (default the OS temp dir). */
  tmpRoot?: string;
}

export interface ProcessStats {
  label: string;
  cpuSeconds: number;
  /** The kernel's part of cpuSeconds. */
  sysSeconds: number;
  peakRssAnonMiB: number;
  vmHwmMiB: number;
}

export interface HostStats {
  host: string;
  role: 'origin' | 'node';
  slow: boolean;
  /** Seconds from the scenario's start to this node's copy (nodes only). */
  completedSeconds: number | null;
  verified: boolean | null;
  /** Every process of this host together: CPU from the start to the end of the scenario. */
  cpuSeconds: number;
  sysSeconds: number;
  /** The largest of this host's processes. */
  peakRssAnonMiB: number;
  vmHwmMiB: number;
  txBytes: number;
  rxBytes: number;
  processes: ProcessStats[];
}

export interface CompletionSummary {
  count: number;
  firstSeconds: number;
  p50Seconds: number;
  p90Seconds: number;
  lastSeconds: number;
}

export interface ScenarioResult {
  id: string;
  label: string;
  kind: 'fanout' | 'swarm';
  notes: string;
  ok: boolean;
  error?: string;
  /** Start to the last verified copy. */
  lastCopySeconds: number;
  /** Start to the scenario's own end (publish --wait returning), when it has one. */
  finishedSeconds: number | null;
  completion: CompletionSummary | null;
  /** Without the slow node, when there is one. */
  fastNodes: CompletionSummary | null;
  boundSeconds: number;
  boundFormula: string;
  ratioToBound: number;
  fastNodesBoundSeconds: number | null;
  allVerified: boolean;
  originSentBytes: number;
  originSentPerArtifact: number;
  linkBytes: number;
  linkBytesPerNTimesSize: number;
  /**
   * Packets all hosts sent on their links, as the veth counts them (a segmentation-offload
   * burst is one): the kernel's network cost goes by packets, so fewer bytes a packet
   * means more CPU for the same bytes.
   */
  linkPackets: number;
  hostCpuBusyPercent: number;
  /**
   * Seconds, up to the last copy (or the end where copies are missing), when the disks
   * the hosts share completed nothing while tasks waited for them (see diskStalled).
   */
  diskStalledSeconds: number;
  hosts: HostStats[];
  /** Node completion times, seconds, ascending: the curve. */
  curve: number[];
  /** The scenario's own milestones, seconds since start. */
  milestones: Record<string, number>;
  /**
   * With loss made by nftables: packets its rules dropped during the scenario, and the
   * packets that got through a drop point (each link end's egress: what hosts sent and
   * received), so dropped / (dropped + packets) is the loss really applied.
   */
  loss?: { by: 'nftables'; dropped: number; packets: number };
  /** Every host's link rate, sampled every 250 ms from the start. */
  timeline: LinkTimeline;
  /**
   * The origin's link use over its first 5 s of sending, and the nodes' mean download use
   * from their first bytes to their copy, as shares of their links' rate (see linkUse).
   */
  linkUse: { originStart: number; nodesDownload: number };
}

export interface FleetResult {
  /** In every namespace's name (ssfleet-<runId>-…), to check that none is left. */
  runId: string;
  options: Omit<FleetOptions, 'scenarios' | 'log' | 'tmpRoot'>;
  scenarios: ScenarioResult[];
  /** Seconds to make the hosts and links. */
  setupSeconds: number;
}


export async function runFleet(opts: FleetOptions): Promise<FleetResult> {
  const log = opts.log ?? (() => undefined);
  const root = findRoot();
  const cli = join(root, 'dist/apps/cli/src/main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing; build first (npm run build)`);
  const tmp = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), 'swarmship-fleet-'));
  const net = new FleetNetwork({ nodes: opts.nodes, rateBitsPerSecond: opts.rateBitsPerSecond, latencyMs: opts.latencyMs, lossPercent: opts.lossPercent, slowNodeFactor: opts.slowNodeFactor });

  let cleaned = false;
  const cleanupNow = () => {
    if (cleaned) return;
    cleaned = true;
    killAllChildren();
    net.destroy();
    deleteAllNamespaces();
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: stopping the fleet's processes and removing its namespaces\n`);
    cleanupNow();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const t = performance.now();
    net.create();
    const setupSeconds = (performance.now() - t) / 1000;
    log(`fleet ${net.runId}: origin ${net.origin.address} and ${opts.nodes} nodes on one bridge, ${opts.rateBitsPerSecond / 1e6} Mbit/s up and down per host${opts.slowNodeFactor !== undefined ? `, n01 at ${opts.slowNodeFactor} × that` : ''} (made in ${setupSeconds.toFixed(1)} s)`);

    const artifactDir = join(tmp, 'origin-artifact');
    await mkdir(artifactDir);
    const name = 'artifact.bin';
    const path = join(artifactDir, name);
    const sha1 = await generate(path, opts.size);
    const artifact: Artifact = { path, name, size: opts.size, sha1, pieceLength: opts.pieceLength };
    log(`artifact: ${fmtBytes(opts.size)} of random data, SHA-1 ${sha1.slice(0, 12)}…`);

    const results: ScenarioResult[] = [];
    for (const scenario of opts.scenarios) {
      log(`scenario ${scenario.id}: ${scenario.label}`);
      const r = await runScenario(scenario, { net, artifact, root, cli, tmp, opts, log });
      results.push(r);
      for (const [k, v] of Object.entries(r.milestones)) log(`  ${v.toFixed(1)} s: ${k}`);
      log(r.ok ? `  last copy after ${r.lastCopySeconds.toFixed(1)} s (${r.ratioToBound.toFixed(2)} × bound), ${r.allVerified ? 'every copy bit-identical' : 'A COPY DIFFERS'}` : `  failed: ${r.error}`);
    }
    const { scenarios: _s, log: _l, tmpRoot: _t, ...options } = opts;
    return { runId: net.runId, options, scenarios: results, setupSeconds };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanupNow();
  }
}

interface Running {
  host: Host;
  child: Child;
  sampler: Sampler;
  cpuAtStart: number;
  sysAtStart: number;
}

async function runScenario(
  scenario: Scenario,
  env: { net: FleetNetwork; artifact: Artifact; root: string; cli: string; tmp: string; opts: FleetOptions; log: (m: string) => void },
): Promise<ScenarioResult> {
  const { net, artifact, opts } = env;
  const dir = join(env.tmp, scenario.id);
  await mkdir(dir);
  for (const h of net.hosts) await mkdir(join(dir, h.name));
  const running: Running[] = [];
  let started = false;
  const ctx: ScenarioContext = {
    net,
    artifact,
    root: env.root,
    cli: env.cli,
    dir,
    hostDir: (h) => join(dir, h.name),
    spawn(host, label, command, args, extraEnv) {
      // `ip netns exec` and `env` both exec, so the PID is the command's own.
      const argv = extraEnv ? ['env', ...Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`), command, ...args] : [command, ...args];
      const child = new Child(`${label} (${host.name})`, 'ip', net.execArgs(host, argv[0]!, argv.slice(1)));
      const sampler = new Sampler(child.pid, 100);
      running.push({ host, child, sampler, cpuAtStart: started ? 0 : NaN, sysAtStart: started ? 0 : NaN });
      return child;
    },
    log: (m) => env.log(`  ${m}`),
    deadline: Infinity,
  };

  let t0 = NaN;
  let copies = new Map<string, NodeCopy>();
  let finishedAt: number | null = null;
  let error: string | undefined;
  let before = new Map<string, LinkCounters>();
  let after = new Map<string, LinkCounters>();
  let droppedBefore = 0;
  let droppedAfter = 0;
  let cpuBefore = machineCpu();
  let cpuAfter = cpuBefore;
  let end = NaN;
  let milestones: Record<string, number> = {};
  const links = new LinkTimelineRecorder(net);
  let timeline: LinkTimeline = { stepEndsSeconds: [], hosts: [], cpuBusy: [], diskStalled: [] };
  try {
    await scenario.setup(ctx);
    for (const r of running) {
      r.sampler.sample();
      r.cpuAtStart = r.sampler.lastCpu;
      r.sysAtStart = r.sampler.lastSys;
    }
    before = net.counters();
    droppedBefore = net.droppedPackets();
    cpuBefore = machineCpu();
    started = true;
    t0 = performance.now();
    links.start();
    ctx.deadline = t0 + opts.timeoutMs;
    await scenario.start(ctx);
    copies = await scenario.waitForNodes(ctx);
    end = Math.max(...[...copies.values()].map((c) => c.at));
    if (scenario.finishedAt) {
      finishedAt = await scenario.finishedAt(ctx);
      end = Math.max(end, finishedAt);
    }
  } catch (err) {
    error = (err as Error).message;
    if (Number.isNaN(end)) end = performance.now();
  } finally {
    for (const r of running) r.sampler.sample();
    if (started) timeline = links.stop();
    after = started ? net.counters() : before;
    droppedAfter = started ? net.droppedPackets() : droppedBefore;
    cpuAfter = machineCpu();
    for (const r of running) r.sampler.stop();
    milestones = Object.fromEntries(Object.entries(scenario.milestones?.() ?? {}).map(([k, at]) => [k, (at - t0) / 1000]));
    try {
      await scenario.teardown(ctx);
    } catch (err) {
      error ??= `teardown: ${(err as Error).message}`;
    }
    await Promise.all([...running.map((r) => r.child.stop(3000)), links.child.stop(3000)]);
  }

  // Every copy, bit for bit, before the scenario's dir goes.
  const verified = new Map<string, boolean>();
  for (const [name, copy] of copies) verified.set(name, existsSync(copy.path) && (await sha1Of(copy.path)) === artifact.sha1);
  await rm(dir, { recursive: true, force: true });

  const size = artifact.size;
  const rateBytes = opts.rateBitsPerSecond / 8;
  const n = net.nodes.length;
  const slowFactor = opts.slowNodeFactor;
  const seconds = (at: number) => (at - t0) / 1000;
  const nodeTimes = net.nodes.map((h) => copies.get(h.name)).filter((c): c is NodeCopy => c !== undefined).map((c) => seconds(c.at));
  const fastTimes = net.nodes.filter((h) => !(slowFactor !== undefined && h.index === 1)).map((h) => copies.get(h.name)).filter((c): c is NodeCopy => c !== undefined).map((c) => seconds(c.at));
  const slowBound = slowFactor !== undefined ? size / (rateBytes * slowFactor) : 0;
  const swarmBound = size / rateBytes + artifact.pieceLength / rateBytes;
  const bound = scenario.kind === 'fanout' ? Math.max((n * size) / rateBytes, slowBound) : Math.max(swarmBound, slowBound);
  const boundFormula = scenario.kind === 'fanout' ? 'N·S/U' : 'S/U + P/U (one piece relayed once more)';
  const lastCopySeconds = nodeTimes.length === n ? Math.max(...nodeTimes) : NaN;
  const delta = (host: string, k: keyof LinkCounters) => (after.get(host)?.[k] ?? 0) - (before.get(host)?.[k] ?? 0);
  const linkBytes = net.hosts.reduce((s, h) => s + delta(h.name, 'tx'), 0);
  const linkPackets = net.hosts.reduce((s, h) => s + delta(h.name, 'txPackets'), 0);
  const originSent = delta('origin', 'tx');
  const hosts: HostStats[] = net.hosts.map((h) => {
    const procs = running
      .filter((r) => r.host === h)
      .map((r) => ({
        label: r.child.label,
        cpuSeconds: r.sampler.lastCpu - (Number.isNaN(r.cpuAtStart) ? 0 : r.cpuAtStart),
        sysSeconds: r.sampler.lastSys - (Number.isNaN(r.sysAtStart) ? 0 : r.sysAtStart),
        peakRssAnonMiB: r.sampler.peakRssAnon / MIB,
        vmHwmMiB: r.sampler.peakVmHwm / MIB,
      }));
    const copy = copies.get(h.name);
    return {
      host: h.name,
      role: h.role,
      slow: slowFactor !== undefined && h.index === 1,
      completedSeconds: copy ? seconds(copy.at) : null,
      verified: h.role === 'node' ? (verified.get(h.name) ?? false) : null,
      cpuSeconds: procs.reduce((s, p) => s + p.cpuSeconds, 0),
      sysSeconds: procs.reduce((s, p) => s + p.sysSeconds, 0),
      peakRssAnonMiB: Math.max(0, ...procs.map((p) => p.peakRssAnonMiB)),
      vmHwmMiB: Math.max(0, ...procs.map((p) => p.vmHwmMiB)),
      txBytes: delta(h.name, 'tx'),
      rxBytes: delta(h.name, 'rx'),
      processes: procs,
    };
  });
  const allVerified = net.nodes.every((h) => verified.get(h.name) === true);
  if (!error && !allVerified) error = `copies that differ from the artifact: ${net.nodes.filter((h) => verified.get(h.name) !== true).map((h) => h.name).join(', ')}`;
  return {
    id: scenario.id,
    label: scenario.label,
    kind: scenario.kind,
    notes: scenario.notes,
    ok: error === undefined,
    ...(error !== undefined ? { error } : {}),
    lastCopySeconds,
    finishedSeconds: finishedAt !== null ? seconds(finishedAt) : null,
    completion: summarize(nodeTimes),
    fastNodes: slowFactor !== undefined ? summarize(fastTimes) : null,
    boundSeconds: bound,
    boundFormula,
    ratioToBound: lastCopySeconds / bound,
    fastNodesBoundSeconds: slowFactor !== undefined ? (scenario.kind === 'fanout' ? (n * size) / rateBytes : swarmBound) : null,
    allVerified,
    originSentBytes: originSent,
    originSentPerArtifact: originSent / size,
    linkBytes,
    linkBytesPerNTimesSize: linkBytes / (n * size),
    linkPackets,
    hostCpuBusyPercent: busyShare(cpuBefore, cpuAfter) * 100,
    diskStalledSeconds: diskStalledSeconds(timeline, Number.isFinite(lastCopySeconds) ? lastCopySeconds : Infinity),
    hosts,
    curve: [...nodeTimes].sort((a, b) => a - b),
    milestones,
    timeline,
    linkUse: timeline.hosts.length
      ? linkUse(
          timeline,
          new Map(net.hosts.map((h) => [h.name, h.rateBitsPerSecond])),
          new Map(net.nodes.filter((h) => copies.has(h.name)).map((h) => [h.name, seconds(copies.get(h.name)!.at)])),
        )
      : { originStart: NaN, nodesDownload: NaN },
    ...(net.lossBy === 'nftables' ? { loss: { by: 'nftables' as const, dropped: droppedAfter - droppedBefore, packets: linkPackets + net.hosts.reduce((s, h) => s + delta(h.name, 'rxPackets'), 0) } } : {}),
  };
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

function summarize(times: number[]): CompletionSummary | null {
  if (times.length === 0) return null;
  const s = [...times].sort((a, b) => a - b);
  return { count: s.length, firstSeconds: s[0]!, p50Seconds: percentile(s, 50), p90Seconds: percentile(s, 90), lastSeconds: s[s.length - 1]! };
}
