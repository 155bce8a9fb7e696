/**
 * The fleet benchmark: one origin and N nodes as network namespaces on one bridge, each
 * link shaped with tc, and the same artifact shipped to every node by HTTP fan-out,
 * libtorrent and swarmship in turn. Prints a table beside the anchors and writes JSON,
 * Markdown and an SVG of the completion curves to bench/results/. Needs root (ip netns).
 */
import { cpus, loadavg, release } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseByteSize } from '../apps/cli/src/byte-size.js';
import { probeLibtorrent } from './lib/libtorrent.js';
import { findRoot, fmtBytes, runFleet } from './fleet/harness.js';
import { formatRate, netnsUnavailableReason, parseRate } from './fleet/network.js';
import { comparisons, completionSvg, legend, markdownReport, textReport } from './fleet/report.js';
import type { Scenario } from './fleet/scenario.js';
import { httpFanout } from './fleet/scenarios/http.js';
import { libtorrentSwarm } from './fleet/scenarios/libtorrent.js';
import { swarmshipFleet } from './fleet/scenarios/swarmship.js';
import { swarmshipEngine } from './fleet/scenarios/swarmship-engine.js';

interface ScenarioOptions {
  /** Bytes of the release `swarmship-warm` ships before its timed one (--warm-up). */
  warmUpBytes: number;
}

const SCENARIOS: Record<string, (o: ScenarioOptions) => Scenario> = {
  http: httpFanout,
  libtorrent: () => libtorrentSwarm(),
  'libtorrent-superseed': () => libtorrentSwarm({ superSeed: true }),
  swarmship: () => swarmshipFleet(),
  'swarmship-warm': (o) => swarmshipFleet({ warmUpBytes: o.warmUpBytes }),
  'swarmship-engine': () => swarmshipEngine(),
  'swarmship-engine-plain': () => swarmshipEngine({ superSeed: false }),
};

const HELP = `Usage: npm run bench:fleet -- [--nodes 16] [--rate 200mbit] [--size 256MiB] [--piece-length 1MiB]
         [--latency MS] [--loss PERCENT] [--slow-node FACTOR] [--scenarios http,libtorrent,swarmship]
         [--warm-up SIZE]

One origin and N nodes as network namespaces on one bridge (addresses in 10.77.0.0/16
that exist only there), each host's link shaped with tc tbf at both ends. The same
random artifact goes to every node with each scenario in turn, on the same hosts and
links. Prints a table beside the anchors and writes bench/results/fleet-<time>.json,
.md and .svg (completion curves). Needs root; removes every namespace, link and
process it made, also on Ctrl-C.

Options:
  --nodes N             Nodes besides the origin (default 16).
  --rate RATE           Each host's rate, up and down: 200mbit, 1gbit, 25mbps (bytes/s) (default 200mbit).
  --size SIZE           Artifact size (default 256MiB).
  --piece-length SIZE   Piece length for the torrents made here (default 1MiB); the
                        swarmship scenario's controller picks its own, as it would in use.
  --latency MS          One-way delay each link adds in each direction (tc netem; a
                        host-to-host round trip crosses two links, so it is 4 × MS).
  --loss PERCENT        Loss each link adds in each direction (tc netem). --latency needs
                        the netem qdisc; a kernel without it is refused with that reason.
                        Without netem, --loss alone is made with nftables (Debian package
                        nftables): a random drop on each link end's egress, segmentation
                        offload off so packets are dropped one by one as on a wire.
  --slow-node FACTOR    Node n01 gets FACTOR × the rate (e.g. 0.1); the others are reported apart too.
  --scenarios LIST      Any of: ${Object.keys(SCENARIOS).join(', ')} (default http,libtorrent,swarmship).
                        swarmship starts its controller and agents just before the timed
                        publish; swarmship-warm first ships a smaller release to the whole
                        fleet, untimed, so the timed one meets processes that have shipped
                        before, as agents in service have. Run both to see the difference.
  --warm-up SIZE        The release swarmship-warm ships first (default 32MiB).
  --timeout SECONDS     Per scenario (default: 3 × its bound + 120).
  -h, --help            Show this help.

Environment:
  FLEET_AGENT_NODE_ARGS, FLEET_CONTROLLER_NODE_ARGS
                        Extra node options for the swarmship scenario's agents or its
                        controller, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof/{host}'
                        ({host} becomes the host's name) or '--perf-basic-prof'.
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '16' },
      rate: { type: 'string', default: '200mbit' },
      size: { type: 'string', default: '256MiB' },
      'piece-length': { type: 'string', default: '1MiB' },
      latency: { type: 'string' },
      loss: { type: 'string' },
      'slow-node': { type: 'string' },
      scenarios: { type: 'string', default: 'http,libtorrent,swarmship' },
      timeout: { type: 'string' },
      'warm-up': { type: 'string', default: '32MiB' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 200) throw new Error(`--nodes ${values.nodes}: expected a whole number 1…200`);
  const rateBitsPerSecond = parseRate(values.rate);
  const size = parseByteSize(values.size, '--size');
  const pieceLength = parseByteSize(values['piece-length'], '--piece-length');
  const latencyMs = number(values.latency, '--latency', 0, 10_000);
  const lossPercent = number(values.loss, '--loss', 0, 100);
  const slowNodeFactor = number(values['slow-node'], '--slow-node', 0.001, 1);
  const warmUpBytes = parseByteSize(values['warm-up'], '--warm-up');
  if (warmUpBytes === 0) throw new Error('--warm-up 0: swarmship-warm needs a release to ship first; run the swarmship scenario for none');
  const ids = values.scenarios.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) if (!SCENARIOS[id]) throw new Error(`--scenarios: unknown ${id}; expected ${Object.keys(SCENARIOS).join(', ')}`);
  const why = netnsUnavailableReason();
  if (why) throw new Error(`the fleet needs network namespaces: ${why}`);

  const root = findRoot();
  const lt = probeLibtorrent();
  if ('missing' in lt && ids.some((id) => id.startsWith('libtorrent'))) throw new Error(`libtorrent scenarios need python3-libtorrent: ${lt.missing}`);
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Linux ${release()}, Node ${process.version}, libtorrent ${'version' in lt ? lt.version : 'missing'}`;
  const loadStart = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`machine: ${machine}`);
  console.log(`load average at start: ${loadStart} (1/5/15 min)`);
  console.log(`fleet: ${nodes} nodes + origin, ${formatRate(rateBitsPerSecond)} per host up and down, ${fmtBytes(size)} in ${fmtBytes(pieceLength)} pieces; scenarios ${ids.join(', ')}`);

  const rateBytes = rateBitsPerSecond / 8;
  const fanoutBound = (nodes * size) / rateBytes / Math.min(1, slowNodeFactor ?? 1);
  const timeoutMs = values.timeout !== undefined ? number(values.timeout, '--timeout', 1, 86_400)! * 1000 : (3 * fanoutBound + 120) * 1000;
  const result = await runFleet({
    nodes,
    rateBitsPerSecond,
    size,
    pieceLength,
    latencyMs,
    lossPercent,
    slowNodeFactor,
    scenarios: ids.map((id) => SCENARIOS[id]!({ warmUpBytes })),
    timeoutMs,
    log: (m) => console.log(m),
  });

  const when = new Date().toISOString();
  const loadEnd = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log('');
  console.log(textReport(result));
  for (const l of comparisons(result)) console.log(l);
  console.log(legend(result));
  console.log(`load average at end: ${loadEnd}`);

  const dir = join(root, 'bench/results');
  await mkdir(dir, { recursive: true });
  const base = join(dir, `fleet-${when.replace(/[:.]/g, '-')}`);
  await writeFile(`${base}.json`, JSON.stringify({ when, machine, loadAverage: { start: loadStart, end: loadEnd }, ...result }, null, 2) + '\n');
  await writeFile(`${base}.md`, markdownReport(result, { when, machine, load: `${loadStart} at start, ${loadEnd} at end` }));
  await writeFile(`${base}.svg`, completionSvg(result, `${nodes} nodes, ${formatRate(rateBitsPerSecond)} per host, ${fmtBytes(size)}`));
  console.log(`results: ${base}.json, .md, .svg`);
  return result.scenarios.every((s) => s.ok) ? 0 : 1;
}

function number(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.replace(/(ms|%)$/, ''));
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${flag} ${text}: expected a number from ${min} to ${max}`);
  return n;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
