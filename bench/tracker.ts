/**
 * Announces per second: our tracker beside npm's bittorrent-tracker and Debian's
 * opentracker (and the controller's embedded tracker when there is one), each in its own
 * process, loaded by wrk with compact announces over varied binary info hashes and peer
 * ids. Prints the figures beside the anchors and targets, and writes them as JSON;
 * asserts nothing, because shared machines make any threshold flaky.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, killAllChildren, Sampler } from './lib/proc.js';
import { table } from './lib/stats.js';
import { findRoot, firstLine } from './lib/files.js';
import { announceQuery, makePools, runWrk, writeLuaScript, type Pools, type WrkResult } from './lib/tracker-load.js';
import {
  OPENTRACKER,
  sampleAnnounces,
  startBittorrentTracker,
  startController,
  startOpentracker,
  startOurs,
  waitUntilServing,
  type RunningTarget,
  type Sample,
  type TargetId,
} from './lib/tracker-targets.js';

const HELP = `Usage: npm run bench:tracker -- [--duration 30s] [--connections 64] [--hashes 1000] [--peers 100] [--threads 2] [--only LIST] [--profile DIR]

Announces per second against our tracker ('swarmship tracker', the core the controller
embeds), npm's bittorrent-tracker and Debian's opentracker, one after another, each in
its own process on 127.0.0.1 and a free port, with nothing pre-populated; then the
controller's embedded tracker when 'swarmship controller' exists. wrk drives each over
keep-alive connections with a Lua script (written to a temp dir) that sends compact
announces (numwant 50) for random swarms and pooled peers. Before and after the load a
few direct announces check every answer is a bencoded dict with 'interval' and 'peers'.
Prints a table beside the anchors and writes it as JSON to
bench/results/tracker-<timestamp>.json. Needs a build (the npm script does it), wrk, and
${OPENTRACKER} for the opentracker row.

Options:
  --duration D       Load per tracker: 30s, 2m, or seconds (default 30s).
  --connections N    Keep-alive connections wrk holds open (default 64).
  --hashes N         Distinct info hashes (swarms) announced to (default 1000); opentracker
                     gets them as its allow-list.
  --peers N          Peers per swarm: a pool of N peer ids, each with its own port,
                     announcing into any swarm (default 100).
  --threads N        wrk threads (default 2).
  --only LIST        Comma-separated: ours, bittorrent-tracker, opentracker, controller.
  --profile DIR      Run our tracker under 'node --cpu-prof' and leave the profile in DIR.
  -h, --help         Show this help.
`;

const MIB = 1024 * 1024;
const NUMWANT = 50;

interface TargetSpec {
  id: TargetId;
  label: string;
  anchor: string;
}

/** Anchors: wrk, 64 keep-alive connections, 30 s, on this kind of machine (2 vCPU). */
const TARGETS: TargetSpec[] = [
  { id: 'ours', label: 'ours (swarmship tracker)', anchor: 'target ≥ 2 × bittorrent-tracker, ≥ ½ opentracker, p99 < 20 ms' },
  { id: 'bittorrent-tracker', label: 'bittorrent-tracker 11.2', anchor: '3.6–4.0 k/s, p99 37–99 ms, 130 MiB' },
  { id: 'opentracker', label: 'opentracker (Debian)', anchor: '11.5–13.4 k/s, p99 5–10 ms, 7 MiB' },
  { id: 'controller', label: 'controller /announce', anchor: '—' },
];

const TARGET_VS_BT = 2;
const TARGET_VS_OT = 0.5;
const TARGET_P99_MS = 20;

interface TargetResult {
  id: TargetId;
  label: string;
  anchor: string;
  note: string | undefined;
  announce: string;
  load: WrkResult | undefined;
  cpuSeconds: number;
  cpuPercent: number;
  vmHwmMiB: number;
  peakRssAnonMiB: number;
  before: Sample | undefined;
  after: Sample | undefined;
  /** Every sampled answer was a proper announce answer. */
  valid: boolean;
  /** The tracker closed the connection after each answer, so wrk reconnected for each request. */
  closesAfterReply: boolean;
  error: string | undefined;
  skipped: string | undefined;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '30s' },
      connections: { type: 'string', default: '64' },
      hashes: { type: 'string', default: '1000' },
      peers: { type: 'string', default: '100' },
      threads: { type: 'string', default: '2' },
      only: { type: 'string' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const seconds = parseDuration(values.duration);
  const connections = wholeNumber(values.connections, '--connections', 1, 10_000);
  const hashes = wholeNumber(values.hashes, '--hashes', 1, 100_000);
  const peers = wholeNumber(values.peers, '--peers', 2, 10_000);
  const threads = wholeNumber(values.threads, '--threads', 1, 64);
  if (threads > connections) throw new Error(`--threads ${threads} is more than --connections ${connections}`);
  const wanted = values.only === undefined ? TARGETS.map((t) => t.id) : values.only.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of wanted) if (!TARGETS.some((t) => t.id === id)) throw new Error(`--only: unknown tracker ${id}; expected ${TARGETS.map((t) => t.id).join(', ')}`);
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile);

  const root = findRoot();
  const cli = join(root, 'dist/apps/cli/src/main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing; run 'npm run build' first (npm run bench:tracker does)`);
  const btScript = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'tracker-bittorrent.js');
  const wrkVersion = firstLine(spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout);
  if (!wrkVersion) throw new Error("wrk is missing: install it ('apt-get install wrk')");
  const hasController = existsSync(join(root, 'dist/apps/cli/src/commands/controller.js'));
  const machine = {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? '?',
    kernel: release(),
    node: process.version,
    wrk: wrkVersion.replace(/ Copyright.*$/, ''),
    opentracker: existsSync(OPENTRACKER) ? OPENTRACKER : 'missing',
    loadAverageAtStart: round2(loadavg()),
  };
  console.log(`machine: ${machine.cores} cores (${machine.cpu}), Linux ${machine.kernel}, Node ${machine.node}, ${machine.wrk}`);
  console.log(`load average at start: ${machine.loadAverageAtStart.join(' ')} (1/5/15 min)`);
  if (machine.loadAverageAtStart[0]! > machine.cores) {
    console.log(`note: the machine is busy (1-min load ${machine.loadAverageAtStart[0]} on ${machine.cores} cores): expect fewer announces/s and a longer p99 than on an idle machine`);
  }
  console.log(`load: wrk -t${threads} -c${connections} -d${seconds}s per tracker; ${hashes} swarms × up to ${peers} peers; compact=1, numwant=${NUMWANT}`);

  const tmp = await mkdtemp(join(tmpdir(), 'swarmship-bench-tracker-'));
  const cleanup = () => {
    killAllChildren();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping children and removing ${tmp}`);
      cleanup();
      process.exit(130);
    });
  }

  try {
    const pools = makePools(hashes, peers);
    if (profileDir) await mkdir(profileDir, { recursive: true });
    const results: TargetResult[] = [];
    for (const spec of TARGETS.filter((t) => wanted.includes(t.id))) {
      const base = blank(spec);
      if (spec.id === 'opentracker' && !existsSync(OPENTRACKER)) {
        results.push({ ...base, skipped: `${OPENTRACKER} is missing` });
        continue;
      }
      if (spec.id === 'controller' && !hasController) {
        results.push({ ...base, skipped: "no 'swarmship controller' in this build" });
        continue;
      }
      process.stdout.write(`${spec.label} … `);
      const start = () => {
        switch (spec.id) {
          case 'ours':
            return startOurs(cli, profileDir);
          case 'bittorrent-tracker':
            return startBittorrentTracker(btScript);
          case 'opentracker':
            return startOpentracker(join(tmp, 'opentracker'), pools.hashes);
          case 'controller':
            return startController(cli, join(tmp, 'controller'));
        }
      };
      const r = await measure(spec, start, pools, tmp, { seconds, connections, threads });
      results.push(r);
      console.log(r.error ? `failed\n${r.error}` : `${(r.load!.requestsPerSecond / 1000).toFixed(1)} k announces/s, p99 ${r.load!.p99Ms.toFixed(1)} ms`);
    }

    const by = (id: TargetId) => results.find((r) => r.id === id && r.load);
    const ours = by('ours');
    const bt = by('bittorrent-tracker');
    const ot = by('opentracker');
    const vsBt = ours && bt ? ours.load!.requestsPerSecond / bt.load!.requestsPerSecond : undefined;
    const vsOt = ours && ot ? ours.load!.requestsPerSecond / ot.load!.requestsPerSecond : undefined;

    console.log('');
    console.log(
      table(
        ['tracker', 'announces/s', 'vs ours', 'p50 ms', 'p99 ms', 'socket errors', 'status ≥ 400', 'answers valid', 'CPU s', 'CPU %', 'CPU µs/req', 'VmHWM MiB', 'anchor'],
        results.map((r) => {
          if (!r.load) return [r.label, '—', '—', '—', '—', '—', '—', '—', '—', '—', '—', '—', r.skipped ? `skipped: ${r.skipped}` : `failed: ${firstLine(r.error) ?? '?'}`];
          const l = r.load;
          const sockErrors = l.connectErrors + l.readErrors + l.writeErrors + l.timeouts;
          return [
            r.label + (r.closesAfterReply ? ' ¹' : '') + (r.note ? ' ²' : ''),
            l.requestsPerSecond.toFixed(0),
            ours && r.id !== 'ours' ? `${(ours.load!.requestsPerSecond / l.requestsPerSecond).toFixed(2)} ×` : '',
            l.p50Ms.toFixed(2),
            l.p99Ms.toFixed(2),
            String(sockErrors),
            String(l.badStatus),
            validity(r),
            r.cpuSeconds.toFixed(1),
            r.cpuPercent.toFixed(0),
            ((r.cpuSeconds / l.requests) * 1e6).toFixed(0),
            r.vmHwmMiB.toFixed(0),
            r.anchor,
          ];
        }),
        [0, 7, 12],
      ),
    );
    for (const r of results.filter((x) => x.load && x.closesAfterReply)) {
      const l = r.load!;
      console.log(
        `¹ ${r.label} closes the connection after every answer (no 'Connection: close' header), so wrk reconnects for each request: ` +
          `${l.readErrors} of its socket errors are reads on sockets the tracker closed; ~${l.tcpAccepts ?? '?'} TCP connections accepted for ${l.requests} requests. ` +
          `Latency is from request write to answer and leaves out the reconnect.`,
      );
    }
    for (const r of results.filter((x) => x.load && x.note)) {
      console.log(
        `² ${r.label}: ${r.note} (${r.after?.verdicts[0]?.detail ?? '?'}). A refusal skips the peer store, so these figures bound what the ` +
          `controller's HTTP stack (Express in front of the same handler) can answer; they are not announces.`,
      );
    }
    if (results.some((r) => r.id === 'controller' && r.load && r.note)) {
      console.log("  'ours' is the standalone 'swarmship tracker': the same TrackerCore and handleTrackerRequest the controller mounts at /announce.");
    }
    console.log(
      `wrk counts a request once its answer is complete; socket errors = connect + read + write + timeout (2 s); 'answers valid' = direct announces before and after the load ` +
        `that came back as a bencoded dict with integer 'interval' and compact 'peers' (strictly canonical bencode: ✓). CPU = utime+stime of the tracker process (all its threads) during the load; VmHWM = its peak resident memory.`,
    );
    console.log('');
    const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED');
    const targets = {
      vsBittorrentTracker: { ratio: vsBt, target: TARGET_VS_BT, met: vsBt === undefined ? undefined : vsBt >= TARGET_VS_BT },
      vsOpentracker: { ratio: vsOt, target: TARGET_VS_OT, met: vsOt === undefined ? undefined : vsOt >= TARGET_VS_OT },
      p99Ms: { value: ours?.load?.p99Ms, target: TARGET_P99_MS, met: ours ? ours.load!.p99Ms < TARGET_P99_MS : undefined },
      validAnswers: { met: ours ? ours.valid : undefined },
    };
    console.log(`ours vs bittorrent-tracker: ${vsBt?.toFixed(2) ?? '—'} × (target ≥ ${TARGET_VS_BT} ×) ${verdict(targets.vsBittorrentTracker.met)}`);
    console.log(`ours vs opentracker:        ${vsOt?.toFixed(2) ?? '—'} × (target ≥ ${TARGET_VS_OT} ×) ${verdict(targets.vsOpentracker.met)}`);
    console.log(`ours p99:                   ${ours?.load?.p99Ms.toFixed(2) ?? '—'} ms (target < ${TARGET_P99_MS} ms) ${verdict(targets.p99Ms.met)}`);
    console.log(`ours answers valid:         ${ours ? validity(ours) : '—'} ${verdict(targets.validAnswers.met)}`);
    console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    if (profileDir) console.log(`CPU profile of our tracker: ${profileDir}`);

    const out = {
      when: new Date().toISOString(),
      machine: { ...machine, loadAverageAtEnd: round2(loadavg()) },
      options: { seconds, connections, threads, hashes, peers, numwant: NUMWANT, only: wanted },
      requestMix: 'random swarm and pooled peer per request; 20 % seeders (left=0), 10 % event=started; uploaded/downloaded/left random; compact=1',
      units: { latency: 'ms', memory: 'MiB', cpu: 'seconds of utime+stime' },
      anchors: Object.fromEntries(TARGETS.map((t) => [t.id, t.anchor])),
      targets,
      trackers: results,
    };
    const resultsDir = join(root, 'bench/results');
    await mkdir(resultsDir, { recursive: true });
    const outPath = join(resultsDir, `tracker-${out.when.replace(/[:.]/g, '-')}.json`);
    await writeFile(outPath, JSON.stringify(out, null, 2) + '\n');
    console.log(`results: ${outPath}`);
    return 0;
  } finally {
    cleanup();
  }
}

function blank(spec: TargetSpec): TargetResult {
  return {
    id: spec.id,
    label: spec.label,
    anchor: spec.anchor,
    note: undefined,
    announce: '',
    load: undefined,
    cpuSeconds: NaN,
    cpuPercent: NaN,
    vmHwmMiB: NaN,
    peakRssAnonMiB: NaN,
    before: undefined,
    after: undefined,
    valid: false,
    closesAfterReply: false,
    error: undefined,
    skipped: undefined,
  };
}

/** Starts one tracker, checks a few answers, loads it, checks again, stops it. */
async function measure(
  spec: TargetSpec,
  start: () => Promise<RunningTarget>,
  pools: Pools,
  tmp: string,
  o: { seconds: number; connections: number; threads: number },
): Promise<TargetResult> {
  const r = blank(spec);
  let target: RunningTarget | undefined;
  let sampler: Sampler | undefined;
  try {
    target = await start();
    r.announce = target.announce;
    r.note = target.note;
    const pick = (k: number) => announceQuery(pools, (k * 7919) % pools.hashes.length, k % pools.peerIds.length, k === 0 ? '&event=started' : '');
    if (spec.id === 'opentracker') {
      const ready = await waitUntilServing(target.announce, pick(0));
      if (!ready.ok) throw new Error(`opentracker is not serving its allow-list: ${ready.detail}\n${target.child.tail()}`);
    }
    r.before = await sampleAnnounces(target.announce, [pick(1), pick(2), pick(3)]);
    const script = await writeLuaScript(tmp, pools, new URL(target.announce).pathname);
    sampler = new Sampler(target.child.pid, 100);
    const cpuBefore = cpuSeconds(target.child.pid) ?? NaN;
    r.load = await runWrk({ url: target.announce, script, seconds: o.seconds, connections: o.connections, threads: o.threads });
    sampler.sample();
    r.cpuSeconds = sampler.lastCpu - cpuBefore;
    r.cpuPercent = (r.cpuSeconds / r.load.seconds) * 100;
    r.vmHwmMiB = sampler.peakVmHwm / MIB;
    r.peakRssAnonMiB = sampler.peakRssAnon / MIB;
    r.after = await sampleAnnounces(target.announce, [pick(4), pick(5), pick(6)]);
    const all = [...r.before.verdicts, ...r.after.verdicts];
    r.valid = all.every((v) => v.ok);
    r.closesAfterReply = r.before.closedAfterReply + r.after.closedAfterReply > 0;
    if (!target.child.running) throw new Error(`${target.child.label} exited during the load\n${target.child.tail()}`);
  } catch (err) {
    r.error = (err as Error).message;
    r.load = undefined;
  } finally {
    sampler?.stop();
    await target?.child.stop();
  }
  return r;
}

function validity(r: TargetResult): string {
  const all = [...(r.before?.verdicts ?? []), ...(r.after?.verdicts ?? [])];
  const ok = all.filter((v) => v.ok).length;
  const canonical = all.length > 0 && all.every((v) => v.canonical);
  if (ok === all.length) return `${ok}/${all.length}${canonical ? ' ✓' : ''}`;
  const bad = all.find((v) => !v.ok);
  return `${ok}/${all.length}: ${bad?.detail.slice(0, 40) ?? ''}`;
}

function parseDuration(text: string): number {
  const m = /^(\d+)(s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`--duration ${text}: expected e.g. 30s, 2m or 30`);
  const n = Number(m[1]) * (m[2] === 'm' ? 60 : 1);
  if (n < 1 || n > 3600) throw new Error(`--duration ${text}: expected 1 s to 60 min`);
  return n;
}

function wholeNumber(text: string, flag: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${flag} ${text}: expected a whole number from ${min} to ${max}`);
  return n;
}

function round2(values: number[]): number[] {
  return values.map((v) => Math.round(v * 100) / 100);
}



main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
