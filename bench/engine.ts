/**
 * One seeder to one leecher on loopback, ours and libtorrent in every pairing, plus
 * torrent creation against the machine's all-core SHA-1 rate. Prints figures and writes
 * them as JSON; asserts nothing, because shared machines make any threshold flaky.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseByteSize } from '../apps/cli/src/byte-size.js';
import { createTorrent } from '../libs/metainfo/src/index.js';
import { probeLibtorrent, SYSTEM_PYTHON, writePeerScript } from './lib/libtorrent.js';
import { Child, cpuSeconds, killAllChildren, Sampler, type Line } from './lib/proc.js';
import { median, medianOf, table } from './lib/stats.js';
import { findRoot, firstLine, fmtBytes, generateRandomFile as generate, sha1Of } from './lib/files.js';

const HELP = `Usage: npm run bench:engine -- [--size 1GiB] [--piece-length 1MiB] [--runs 1] [--only ours-ours,lt-lt,lt-ours,ours-lt] [--lt-seed-mode] [--keep]

One seeder to one leecher on 127.0.0.1, the same random file for every pairing of our
engine and libtorrent (seeder-leecher), then torrent creation against
'openssl speed -evp sha1 -multi <cores>'. Prints a table and writes it as JSON to
bench/results/engine-<timestamp>.json. Needs a build (the npm script does it) and, for
the libtorrent scenarios, python3-libtorrent for ${SYSTEM_PYTHON}.

Options:
  --size SIZE           File size, e.g. 256MiB, 1GiB (default 1GiB).
  --piece-length SIZE   Piece length (default 1MiB).
  --runs N              Repeat every scenario N times, interleaved; report medians.
  --only LIST           Comma-separated scenarios: ours-ours, lt-lt, lt-ours, ours-lt.
  --lt-seed-mode        Start the libtorrent seeder in seed_mode: no check when added,
                        but every piece hashed on its first request, during the transfer.
                        By default it checks the data before the transfer starts, which
                        matches our seeder's --trust (neither hashes while serving).
  --keep                Keep the temp dir (data, torrent, scripts).
  -h, --help            Show this help.
`;

const MB = 1e6;
const MIB = 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 120_000;
const SEEDER_START_TIMEOUT_MS = 60_000;

type Engine = 'ours' | 'lt';

interface Scenario {
  id: string;
  label: string;
  seeder: Engine;
  leecher: Engine;
  anchor: string;
}

/** Anchors: libtorrent 2.0.8 on this kind of machine, 1 GiB in 1 MiB pieces, loopback. */
const SCENARIOS: Scenario[] = [
  { id: 'ours-ours', label: 'ours→ours', seeder: 'ours', leecher: 'ours', anchor: 'target ≥ lt→lt same run (~320)' },
  { id: 'lt-lt', label: 'lt→lt', seeder: 'lt', leecher: 'lt', anchor: 'lt→lt ~320, 81–88 % CPU, 25–40 MiB' },
  { id: 'lt-ours', label: 'lt→ours', seeder: 'lt', leecher: 'ours', anchor: 'lt→aria2 ~240, lt→lt ~320' },
  { id: 'ours-lt', label: 'ours→lt', seeder: 'ours', leecher: 'lt', anchor: 'lt→lt ~320' },
];

const LEECHER_RSS_TARGET_MB = 150;
const CREATION_TARGET = 0.8;

interface TransferResult {
  /** Leecher's first line (it has dialled) to its completion line, seconds. */
  seconds: number;
  mbps: number;
  /** Completion including making the copy durable: ours fdatasyncs before it reports; libtorrent is timed flushing after. */
  mbpsInclFlush: number;
  flushSeconds: number;
  /** Spawn to completion, process start-up included. */
  wallSeconds: number;
  leecherCpuSeconds: number;
  leecherCpuPercent: number;
  peakRssAnonMiB: number;
  vmHwmMiB: number;
  seederCpuPercent: number;
  /** libtorrent's own clock from connect_peer to torrent_finished. */
  helperElapsedSeconds: number;
  wastedBytes: number;
  verified: boolean;
}

interface Context {
  root: string;
  cli: string;
  tmp: string;
  file: string;
  name: string;
  size: number;
  torrent: string;
  sha1: string;
  ltScript: string | undefined;
  ltSeedMode: boolean;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1GiB' },
      'piece-length': { type: 'string', default: '1MiB' },
      runs: { type: 'string', default: '1' },
      only: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'lt-seed-mode': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const size = parseByteSize(values.size, '--size');
  const pieceLength = parseByteSize(values['piece-length'], '--piece-length');
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs}: expected a whole number ≥ 1`);
  const wanted = values.only === undefined ? SCENARIOS.map((s) => s.id) : values.only.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of wanted) if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`--only: unknown scenario ${id}; expected ${SCENARIOS.map((s) => s.id).join(', ')}`);

  const root = findRoot();
  const cli = join(root, 'dist/apps/cli/src/main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing; run 'npm run build' first (npm run bench:engine does)`);

  const lt = probeLibtorrent();
  const machine = {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? '?',
    kernel: release(),
    node: process.version,
    libtorrent: 'version' in lt ? lt.version : `missing (${lt.missing})`,
    openssl: firstLine(spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout) ?? 'missing',
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
  console.log(`machine: ${machine.cores} cores (${machine.cpu}), Linux ${machine.kernel}, Node ${machine.node}, libtorrent ${machine.libtorrent}, ${machine.openssl}`);
  console.log(`load average at start: ${machine.loadAverageAtStart.join(' ')} (1/5/15 min)`);
  console.log(`file ${fmtBytes(size)} in ${fmtBytes(pieceLength)} pieces, ${runs} run${runs === 1 ? '' : 's'}${runs > 1 ? ' (medians)' : ''}`);

  const tmp = await mkdtemp(join(tmpdir(), 'swarmship-bench-'));
  const cleanup = () => {
    killAllChildren();
    if (!values.keep) rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping children${values.keep ? '' : ' and removing ' + tmp}`);
      cleanup();
      process.exit(130);
    });
  }

  try {
    const name = 'payload.bin';
    const seedDir = join(tmp, 'seed');
    await mkdir(seedDir);
    const file = join(seedDir, name);
    let t = performance.now();
    const sha1 = await generate(file, size);
    console.log(`generated ${fmtBytes(size)} of random data and flushed it to disk in ${secs(performance.now() - t)} s`);

    const torrent = join(tmp, 'payload.torrent');
    const creation = await benchCreation({ cli, file, torrent, size, pieceLength, runs });

    const ltScript = 'version' in lt ? await writePeerScript(tmp) : undefined;
    if (!ltScript) console.log(`libtorrent scenarios skipped: python3-libtorrent is not importable from ${SYSTEM_PYTHON} (${'missing' in lt ? lt.missing : ''})`);
    const ctx: Context = { root, cli, tmp, file, name, size, torrent, sha1, ltScript, ltSeedMode: values['lt-seed-mode'] };

    const scenarios = SCENARIOS.filter((s) => wanted.includes(s.id));
    const results = new Map<string, TransferResult[]>();
    const errors = new Map<string, string[]>();
    for (let run = 1; run <= runs; run++) {
      for (const s of scenarios) {
        if ((s.seeder === 'lt' || s.leecher === 'lt') && !ltScript) continue;
        t = performance.now();
        process.stdout.write(`run ${run}/${runs} ${s.label} … `);
        try {
          const r = await transfer(s, ctx);
          (results.get(s.id) ?? results.set(s.id, []).get(s.id)!).push(r);
          console.log(`${r.mbps.toFixed(0)} MB/s over ${r.seconds.toFixed(3)} s${r.verified ? ', copy verified' : ', COPY DIFFERS'}`);
        } catch (err) {
          const message = (err as Error).message;
          (errors.get(s.id) ?? errors.set(s.id, []).get(s.id)!).push(message);
          console.log(`failed after ${secs(performance.now() - t)} s\n${message}`);
        }
      }
    }

    const summary = scenarios.map((s) => {
      const list = results.get(s.id) ?? [];
      return { scenario: s, result: list.length ? medianOf(list) : undefined, runs: list, errors: errors.get(s.id) ?? [] };
    });
    const ltlt = summary.find((x) => x.scenario.id === 'lt-lt')?.result;
    console.log('');
    console.log(
      table(
        ['scenario', 'MB/s', 'vs lt→lt', 'MB/s incl. flush', 'leecher CPU s', 'CPU % of a core', 'peak RssAnon MiB', 'VmHWM MiB', 'seeder CPU %', 'anchor'],
        summary.map(({ scenario, result, errors }) => {
          if (!result) {
            const why = !ltScript && (scenario.seeder === 'lt' || scenario.leecher === 'lt') ? 'skipped: no python3-libtorrent' : `failed: ${firstLine(errors[0]) ?? '?'}`;
            return [scenario.label, '—', '—', '—', '—', '—', '—', '—', '—', why];
          }
          return [
            scenario.label + (result.verified ? '' : ' (COPY DIFFERS)'),
            result.mbps.toFixed(0),
            ltlt ? `${((result.mbps / ltlt.mbps) * 100).toFixed(0)} %` : '—',
            result.mbpsInclFlush.toFixed(0),
            result.leecherCpuSeconds.toFixed(2),
            result.leecherCpuPercent.toFixed(0),
            result.peakRssAnonMiB.toFixed(0),
            result.vmHwmMiB.toFixed(0),
            result.seederCpuPercent.toFixed(0),
            scenario.anchor,
          ];
        }),
        [0, 9],
      ),
    );
    console.log(
      `MB = 10^6 bytes; time from the leecher's first output (it has dialled the seeder) to its completion line. ` +
        `Ours reports completion after fdatasync; libtorrent with the copy still in the page cache, so 'incl. flush' adds its fdatasync time. ` +
        `Leecher RSS target < ${LEECHER_RSS_TARGET_MB} MB. libtorrent: default settings except no DHT/LSD/UPnP/NAT-PMP, 127.0.0.1 only, ` +
        `multiple connections per IP, encryption and uTP off (TCP, as ours); its seeder ` +
        (values['lt-seed-mode'] ? 'in seed_mode (hashes each piece on first request, during the transfer)' : 'checked the data before the transfer (like our --trust seeder, it hashes nothing while serving)') +
        `. CPU = utime+stime of all threads.`,
    );
    console.log('');
    console.log(
      `creation (median of ${creation.repeats}): ${creation.inProcessGBps.toFixed(2)} GB/s in-process (createTorrent), ${creation.cliGBps.toFixed(2)} GB/s as 'swarmship create' incl. start-up; ` +
        `openssl all-core SHA-1 ${creation.opensslGBps !== undefined ? creation.opensslGBps.toFixed(2) + ' GB/s' : 'unavailable'}; ` +
        `ratio ${creation.ratio !== undefined ? (creation.ratio * 100).toFixed(0) + ' %' : '—'} (target ≥ ${CREATION_TARGET * 100} %)`,
    );
    console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    const out = {
      when: new Date().toISOString(),
      machine: { ...machine, loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
      options: { size, pieceLength, runs, only: wanted },
      units: { mbps: 'MB/s, MB = 10^6 bytes', memory: 'MiB' },
      libtorrentSettings: 'defaults except enable_dht/lsd/upnp/natpmp off, listen 127.0.0.1, allow_multiple_connections_per_ip, in/out_enc_policy pe_disabled, enable_incoming/outgoing_utp off; dialled with connect_peer flags 0 (TCP)',
      libtorrentSeeder: values['lt-seed-mode'] ? 'seed_mode' : 'checked before the transfer',
      transfers: summary.map(({ scenario, result, runs: all, errors }) => ({
        scenario: scenario.id,
        label: scenario.label,
        anchor: scenario.anchor,
        median: result,
        vsLtLt: result && ltlt ? result.mbps / ltlt.mbps : null,
        runs: all,
        errors,
      })),
      creation,
    };
    const resultsDir = join(root, 'bench/results');
    await mkdir(resultsDir, { recursive: true });
    const outPath = join(resultsDir, `engine-${out.when.replace(/[:.]/g, '-')}.json`);
    await writeFile(outPath, JSON.stringify(out, null, 2) + '\n');
    console.log(`results: ${outPath}`);
    if (values.keep) console.log(`kept ${tmp}`);
    return 0;
  } finally {
    cleanup();
  }
}



interface CreationResult {
  repeats: number;
  inProcessSeconds: number;
  inProcessGBps: number;
  cliSeconds: number;
  cliGBps: number;
  opensslGBps: number | undefined;
  ratio: number | undefined;
  infoHash: string;
}

/**
 * Times creation with the file already in the page cache, so it measures hashing rather
 * than the disk, in-process (the library, what the target is about) and as the command
 * (node start-up and worker start included, which is a large share for one small file).
 */
async function benchCreation(o: { cli: string; file: string; torrent: string; size: number; pieceLength: number; runs: number }): Promise<CreationResult> {
  await sha1Of(o.file);
  const inProcess: number[] = [];
  const viaCli: number[] = [];
  let libHash = '';
  let cliHash = '';
  // Creation takes about a second, so a few repeats are cheap and tame a shared machine's noise.
  for (let run = 0; run < Math.max(3, o.runs); run++) {
    let t = performance.now();
    const { metainfo } = await createTorrent(o.file, { pieceLength: o.pieceLength, creationDate: false });
    inProcess.push((performance.now() - t) / 1000);
    libHash = metainfo.infoHashHex;

    t = performance.now();
    const child = new Child('swarmship create', process.execPath, [o.cli, 'create', o.file, '-o', o.torrent, '--piece-length', String(o.pieceLength), '--json']);
    const code = await child.exited;
    viaCli.push((performance.now() - t) / 1000);
    if (code !== 0) throw new Error(`swarmship create exited ${code}\n${child.tail()}`);
    const done = child.lines.find((l) => l.json?.event === 'done');
    cliHash = String(done?.json?.infoHash ?? '');
  }
  if (libHash !== cliHash) throw new Error(`createTorrent and swarmship create disagree on the info hash: ${libHash} vs ${cliHash}`);

  const inProcessSeconds = median(inProcess);
  const cliSeconds = median(viaCli);
  const inProcessGBps = o.size / inProcessSeconds / 1e9;
  const openssl = opensslSha1(availableParallelism());
  if (openssl.error) console.log(`openssl speed: ${openssl.error}`);
  return {
    repeats: inProcess.length,
    inProcessSeconds,
    inProcessGBps,
    cliSeconds,
    cliGBps: o.size / cliSeconds / 1e9,
    opensslGBps: openssl.gbps,
    ratio: openssl.gbps !== undefined ? inProcessGBps / openssl.gbps : undefined,
    infoHash: libHash,
  };
}

/** `openssl speed -multi N` ends with one summary row per algorithm, in 1000s of bytes per second summed over its N processes. */
function opensslSha1(processes: number): { gbps?: number; error?: string } {
  const run = spawnSync('openssl', ['speed', '-evp', 'sha1', '-bytes', String(MIB), '-seconds', '3', '-multi', String(processes)], { encoding: 'utf8', timeout: 60_000 });
  if (run.error) return { error: run.error.message };
  const m = /^sha1\s+([\d.]+)k\s*$/m.exec(run.stdout ?? '');
  if (run.status !== 0 || !m) return { error: `exit ${run.status}; no 'sha1 …k' summary line in:\n${(run.stdout ?? '').slice(-800)}${(run.stderr ?? '').slice(-400)}` };
  return { gbps: (Number(m[1]) * 1000) / 1e9 };
}

function startPeer(engine: Engine, role: 'seed' | 'leech', ctx: Context, dir: string, peerPort?: number): Child {
  const label = `${engine === 'ours' ? 'our' : 'libtorrent'} ${role === 'seed' ? 'seeder' : 'leecher'}`;
  if (engine === 'ours') {
    const args =
      role === 'seed'
        ? ['seed', ctx.torrent, ctx.file, '--host', '127.0.0.1', '--port', '0', '--trust', '--json']
        : ['download', ctx.torrent, '--dir', dir, '--host', '127.0.0.1', '--peer', `127.0.0.1:${peerPort}`, '--json'];
    return new Child(label, process.execPath, [ctx.cli, ...args]);
  }
  // The script's own deadline is a backstop in case this process dies without reaping it.
  const limit = String((TRANSFER_TIMEOUT_MS + SEEDER_START_TIMEOUT_MS) / 1000 + 30);
  const args = role === 'seed' ? [ctx.ltScript!, ctx.ltSeedMode ? 'seed-mode' : 'seed', ctx.torrent, dirname(ctx.file), limit] : [ctx.ltScript!, 'leech', ctx.torrent, dir, limit, `127.0.0.1:${peerPort}`];
  return new Child(label, SYSTEM_PYTHON, args);
}

function isCompletion(engine: Engine, line: Line): boolean {
  const j = line.json;
  if (!j) return false;
  if (engine === 'lt') return j.event === 'complete' || j.event === 'timeout';
  return j.event === 'done' && j.outcome !== undefined;
}

async function transfer(s: Scenario, ctx: Context): Promise<TransferResult> {
  const leechDir = await mkdtemp(join(ctx.tmp, `leech-${s.id}-`));
  let seeder: Child | undefined;
  let leecher: Child | undefined;
  let sampler: Sampler | undefined;
  try {
    seeder = startPeer(s.seeder, 'seed', ctx, '');
    const seeding = await seeder.waitLine((l) => l.json?.event === 'seeding', SEEDER_START_TIMEOUT_MS, 'seeding line');
    const port = Number(seeding.json!.port);
    if (!Number.isInteger(port) || port <= 0) throw new Error(`${seeder.label} reported port ${String(seeding.json!.port)}`);

    const spawnedAt = performance.now();
    leecher = startPeer(s.leecher, 'leech', ctx, leechDir, port);
    sampler = new Sampler(leecher.pid, 100);
    const seederPid = seeder.pid;
    const leecherSampler = sampler;
    let seederCpuAtStart = NaN;
    let seederCpuAtEnd = NaN;
    let leecherCpu = NaN;
    let first = true;
    // Read the counters in the same turn the line arrives: our leecher exits right after
    // its completion line, and the seeder keeps spending CPU on nothing once it is done.
    leecher.onLine((line) => {
      if (first) {
        first = false;
        seederCpuAtStart = cpuSeconds(seederPid) ?? NaN;
      }
      if (isCompletion(s.leecher, line)) {
        leecherSampler.sample();
        leecherCpu = leecherSampler.lastCpu;
        seederCpuAtEnd = cpuSeconds(seederPid) ?? NaN;
      }
    });
    const started = await leecher.waitLine(() => true, 30_000, 'first output');
    const done = await leecher.waitLine((l) => isCompletion(s.leecher, l), TRANSFER_TIMEOUT_MS, 'completion');
    const j = done.json!;
    if (s.leecher === 'lt' && j.event !== 'complete') throw new Error(`libtorrent leecher timed out: ${done.text}`);
    if (s.leecher === 'ours' && j.outcome !== 'complete') throw new Error(`our leecher ended ${String(j.outcome)}: ${done.text}\n${leecher.tail()}`);

    let flushSeconds = 0;
    let helperElapsed = NaN;
    let wasted = 0;
    if (s.leecher === 'lt') {
      helperElapsed = Number(j.elapsed);
      wasted = Number(j.redundant ?? 0) + Number(j.failed ?? 0);
      if (Number(j.connections) > 1) console.log(`note: the libtorrent leecher had up to ${String(j.connections)} connections to the one seeder`);
      const flushed = await leecher.waitLine((l) => l.json?.event === 'flushed', 60_000, 'flush');
      flushSeconds = Number(flushed.json!.seconds);
    } else {
      wasted = Number(j.wastedBytes ?? 0);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([leecher.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
    sampler.stop();

    const seconds = (done.at - started.at) / 1000;
    const copy = join(leechDir, ctx.name);
    const verified = (await sha1Of(copy)) === ctx.sha1;
    return {
      seconds,
      mbps: ctx.size / seconds / MB,
      mbpsInclFlush: ctx.size / (seconds + flushSeconds) / MB,
      flushSeconds,
      wallSeconds: (done.at - spawnedAt) / 1000,
      leecherCpuSeconds: leecherCpu,
      leecherCpuPercent: (leecherCpu / seconds) * 100,
      peakRssAnonMiB: sampler.peakRssAnon / MIB,
      vmHwmMiB: sampler.peakVmHwm / MIB,
      seederCpuPercent: ((seederCpuAtEnd - seederCpuAtStart) / seconds) * 100,
      helperElapsedSeconds: helperElapsed,
      wastedBytes: wasted,
      verified,
    };
  } finally {
    sampler?.stop();
    await leecher?.stop();
    await seeder?.stop();
    await rm(leechDir, { recursive: true, force: true });
  }
}



function secs(ms: number): string {
  return (ms / 1000).toFixed(2);
}


main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
