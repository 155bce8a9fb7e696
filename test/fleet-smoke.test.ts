/**
 * The fleet harness on real hosts: an origin and four nodes as network namespaces on one
 * bridge, shaped links, 32 MiB shipped by swarmship (controller, agents, publish --wait,
 * after a small warm-up release) and by HTTP fan-out as a sanity check of the harness
 * itself. Every copy must be bit-identical and no namespace may be left behind. Times
 * are printed, never asserted (npm run bench:fleet is where they are judged). Needs root
 * for `ip netns`; skips and says why otherwise.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runFleet } from '../bench/fleet/harness.js';
import { bitsOf } from '../bench/fleet/link-timeline.js';
import { netnsUnavailableReason } from '../bench/fleet/network.js';
import { httpFanout } from '../bench/fleet/scenarios/http.js';
import { swarmshipFleet } from '../bench/fleet/scenarios/swarmship.js';

const MIB = 1024 * 1024;
const unavailable = netnsUnavailableReason();

describe('fleet smoke: 4 nodes on namespace hosts, 32 MiB', () => {
  it.skipIf(unavailable !== undefined)(`ships a release to every node, bit-identical, and leaves nothing behind${unavailable ? ` (skipped: ${unavailable})` : ''}`, { timeout: 120_000 }, async () => {
    const log: string[] = [];
    const result = await runFleet({
      nodes: 4,
      rateBitsPerSecond: 200e6,
      size: 32 * MIB,
      pieceLength: MIB,
      // A warm-up release first: the harness must then time, find and check the second
      // release's copies, not the first's that sit beside them on every node.
      scenarios: [swarmshipFleet({ warmUpBytes: 3 * MIB }), httpFanout()],
      timeoutMs: 60_000,
      log: (m) => log.push(m),
    });
    console.log(log.join('\n'));

    for (const s of result.scenarios) {
      expect(s.error, `${s.label}: ${s.error}`).toBeUndefined();
      expect(s.ok).toBe(true);
      expect(s.allVerified).toBe(true);
      const nodes = s.hosts.filter((h) => h.role === 'node');
      expect(nodes).toHaveLength(4);
      for (const n of nodes) {
        expect(n.verified, `${s.id} ${n.host}`).toBe(true);
        expect(n.completedSeconds).toBeGreaterThan(0);
        // Every node received at least the artifact over its own link.
        expect(n.rxBytes).toBeGreaterThanOrEqual(32 * MIB);
      }
      expect(s.curve).toHaveLength(4);
    }
    expect(result.scenarios.map((s) => s.id)).toEqual(['swarmship-warm', 'http']);
    // The warm-up went to every node before the clock started, so it is not in the time.
    const warmedUp = result.scenarios[0]!.milestones['warm-up release on every node (before the clock)'];
    expect(warmedUp).toBeLessThan(0);
    const http = result.scenarios.find((s) => s.id === 'http')!;
    // Fan-out: the origin sends every copy itself.
    expect(http.originSentPerArtifact).toBeGreaterThanOrEqual(4);
    // The links hold their rate: fan-out cannot beat N·S/U through the origin's link.
    expect(http.lastCopySeconds).toBeGreaterThanOrEqual(0.95 * http.boundSeconds);
    // Segmentation-offload bursts pass the shapers whole, as off a real NIC: a shaper that
    // split them into wire-sized packets made the kernel the benchmark's largest cost.
    const bytesPerPacket = http.linkBytes / http.linkPackets;
    console.log(`fan-out: ${(bytesPerPacket / 1024).toFixed(1)} KiB a packet on the links, ${http.lastCopySeconds.toFixed(2)} s against a bound of ${http.boundSeconds.toFixed(2)} s`);
    expect(bytesPerPacket).toBeGreaterThan(12 * 1024);

    // The link timeline reads the switch's side of every link: what it saw leave the origin
    // adds up to the origin's own counter, and fan-out keeps the origin's link full.
    const timeline = http.timeline;
    expect(timeline.hosts.map((h) => h.host)).toEqual(http.hosts.map((h) => h.host));
    const originSeen = bitsOf(timeline, timeline.hosts[0]!.txBitsPerSecond) / 8;
    console.log(`fan-out: origin sent ${(http.originSentBytes / MIB).toFixed(1)} MiB by its counter, ${(originSeen / MIB).toFixed(1)} MiB by the timeline; its link ${(http.linkUse.originStart * 100).toFixed(0)} % busy`);
    expect(Math.abs(originSeen - http.originSentBytes) / http.originSentBytes).toBeLessThan(0.05);
    expect(http.linkUse.originStart).toBeGreaterThan(0.85);
    expect(timeline.cpuBusy.length).toBeGreaterThan(0);
    for (const b of timeline.cpuBusy) expect(b >= 0 && b <= 1).toBe(true);
    expect(timeline.diskStalled.length).toBe(timeline.cpuBusy.length);
    expect(http.diskStalledSeconds).toBeGreaterThanOrEqual(0);
    expect(http.diskStalledSeconds).toBeLessThanOrEqual(http.lastCopySeconds);

    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(left).not.toContain(result.runId);
  });
});
