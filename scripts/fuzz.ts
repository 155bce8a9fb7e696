/**
 * `npm run fuzz`: every fuzz target of test/fuzz/targets.ts for 100,000 cases (default),
 * each in its own worker thread, then a table: cases, accepted, rejections by error
 * type, the slowest case, time, heap before and after (each after a full GC).
 *
 *   npm run fuzz -- --runs 1000000 --target wire --target bencode --seed 42
 *   npm run fuzz -- --target metainfo --seed 42 --path 1234:0:1   (replay one failure)
 *
 * A watchdog ends a target whose case runs for more than --hang-ms (a loop that never
 * returns cannot fail a property); its input is generated again from the seed and
 * printed. A worker that runs out of its heap is reported the same way. Exits 1 with
 * the seed and the smallest counterexample when any target fails, 2 on a bad option.
 */
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { formatValue, runTarget, type FuzzTarget, type TargetReport } from '../test/fuzz/runner.js';
import { TARGETS, targetNamed } from '../test/fuzz/targets.js';

interface Options {
  runs: number;
  targets: string[];
  seed: number;
  path: string | undefined;
  caseMs: number;
  hangMs: number;
  heapLimitMb: number;
}

interface Job {
  target: string;
  runs: number;
  seed: number;
  path: string | undefined;
  caseMs: number;
  heapLimitMb: number;
  /** [distinct inputs started, cases done]; the watchdog reads it. */
  progress: SharedArrayBuffer;
}

type WorkerMessage = { kind: 'report'; report: TargetReport } | { kind: 'error'; error: string };

const USAGE = `usage: npm run fuzz -- [--runs N] [--target NAME]... [--seed S] [--path P] [--case-ms MS] [--hang-ms MS] [--heap-limit-mb MB]
targets: ${TARGETS.map((t) => t.name).join(', ')}`;

if (isMainThread) {
  process.exitCode = await main(process.argv.slice(2));
} else {
  await worker(workerData as Job);
}

async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (err) {
    if ((err as Error).message === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  process.stdout.write(`fuzzing ${options.targets.length} target(s), ${options.runs} cases each, seed ${options.seed}; a case over ${options.caseMs} ms of CPU (three times) fails, one over ${options.hangMs} ms is a hang\n`);
  const reports: TargetReport[] = [];
  const started = performance.now();
  for (const name of options.targets) {
    const report = await runInWorker(name, options);
    reports.push(report);
    const f = report.failure;
    process.stdout.write(`  ${name.padEnd(18)} ${String(report.cases).padStart(8)} cases  ${seconds(report.totalMs).padStart(7)}  ${f ? `FAILED: ${f.error.split('\n')[0]}` : 'ok'}\n`);
  }
  process.stdout.write(`\n${table(reports)}\n`);
  process.stdout.write(`\n${codes(reports)}\n`);
  const slow = reports.filter((r) => r.slowest !== undefined && r.maxCaseCpuMs > options.caseMs / 2);
  if (slow.length > 0) {
    process.stdout.write('\nslowest cases over half the limit (each ran under it at least once in three):\n');
    for (const r of slow) process.stdout.write(`  ${r.target} (${r.maxCaseCpuMs.toFixed(1)} ms of CPU): ${r.slowest}\n`);
  }
  process.stdout.write(`\ntotal ${seconds(performance.now() - started)}, seed ${options.seed}\n`);
  const failed = reports.filter((r) => r.failure);
  for (const r of failed) {
    const f = r.failure!;
    process.stdout.write(
      [
        '',
        `FAILED ${r.target} (${r.about})`,
        `  seed ${f.seed}${f.path ? `, path ${f.path}` : ''}, at case ${f.atCase}`,
        `  ${f.error.replace(/\n/g, '\n  ')}`,
        `  counterexample: ${f.counterexample}`,
        ...(f.shrunk !== f.counterexample ? [`  as fast-check shrank it: ${f.shrunk}`] : []),
        `  replay: npm run fuzz -- --target ${r.target} --seed ${f.seed} ${f.path ? `--path ${f.path}` : `--runs ${f.atCase}`}`,
        '',
      ].join('\n'),
    );
  }
  return failed.length > 0 ? 1 : 0;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 100_000, targets: [], seed: Date.now() % 2 ** 31, path: undefined, caseMs: 50, hangMs: 30_000, heapLimitMb: 64 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const whole = (min: number): number => {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new Error(`${arg} takes a whole number ≥ ${min}, got '${v}'`);
      return n;
    };
    if (arg === '--runs') o.runs = whole(1);
    else if (arg === '--seed') o.seed = whole(0);
    else if (arg === '--path') o.path = value();
    else if (arg === '--case-ms') o.caseMs = whole(1);
    else if (arg === '--hang-ms') o.hangMs = whole(100);
    else if (arg === '--heap-limit-mb') o.heapLimitMb = whole(1);
    else if (arg === '--target') {
      for (const name of value().split(',')) {
        if (!targetNamed(name)) throw new Error(`no target '${name}'`);
        o.targets.push(name);
      }
    } else if (arg === '--help' || arg === '-h') throw new Error('help');
    else throw new Error(`unknown option ${arg}`);
  }
  if (o.targets.length === 0) o.targets = TARGETS.map((t) => t.name);
  if (o.path !== undefined && o.targets.length !== 1) throw new Error('--path replays one target: name it with --target');
  return o;
}

/** Runs one target in a worker, watching that its cases keep finishing. */
function runInWorker(name: string, options: Options): Promise<TargetReport> {
  const progress = new SharedArrayBuffer(8);
  const counters = new Int32Array(progress);
  const job: Job = { target: name, runs: options.runs, seed: options.seed, path: options.path, caseMs: options.caseMs, heapLimitMb: options.heapLimitMb, progress };
  // A heap cap of its own, so a target that leaks fails alone instead of taking the machine.
  const w = new Worker(new URL(import.meta.url), { workerData: job, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let lastStarted = -1;
    let lastChange = performance.now();
    const finish = (report: TargetReport) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      void w.terminate();
      resolve(report);
    };
    const lost = (why: string) => {
      const atCase = Atomics.load(counters, 0);
      finish(lostReport(name, options, atCase, why, performance.now() - started));
    };
    const watchdog = setInterval(() => {
      const now = performance.now();
      const begun = Atomics.load(counters, 0);
      if (begun !== lastStarted) {
        lastStarted = begun;
        lastChange = now;
      } else if (begun > 0 && now - lastChange > options.hangMs) {
        lost(`case ${begun} has not returned after ${seconds(now - lastChange)} (a hang)`);
      }
    }, 250);
    w.on('message', (m: WorkerMessage) => {
      if (m.kind === 'report') finish(m.report);
      else lost(m.error);
    });
    w.on('error', (err) => lost(`the worker died: ${err.message}`));
    w.on('exit', (code) => {
      if (!settled) lost(`the worker exited with code ${code} before reporting`);
    });
  });
}

/** A failure the property never saw: the input is generated again from the seed. */
function lostReport(name: string, options: Options, atCase: number, why: string, totalMs: number): TargetReport {
  const target = targetNamed(name)!;
  let input = '(not regenerated: a replayed path)';
  if (options.path === undefined && atCase > 0) {
    const values = fc.sample(target.arbitrary, { seed: options.seed, numRuns: atCase });
    input = formatValue(values[atCase - 1]);
  }
  return {
    target: name,
    about: target.about,
    seed: options.seed,
    cases: Math.max(0, atCase - 1),
    accepted: 0,
    rejections: {},
    codes: {},
    maxCaseMs: NaN,
    maxCaseCpuMs: NaN,
    totalMs,
    heapBeforeBytes: NaN,
    heapAfterBytes: NaN,
    failure: { seed: options.seed, path: undefined, counterexample: input, shrunk: input, error: why, atCase },
  };
}

async function worker(job: Job): Promise<void> {
  const counters = new Int32Array(job.progress);
  try {
    const target = targetNamed(job.target)! as FuzzTarget<unknown>;
    // Counts each distinct input as it starts, so the watchdog can name the one that hangs
    // (a slow case is run three times; shrinking runs after the generated cases).
    let last: unknown = Symbol('none');
    const watched: FuzzTarget<unknown> = {
      ...target,
      setup: () => {
        const instance = target.setup();
        return {
          check: (input: unknown) => {
            if (input !== last) {
              last = input;
              Atomics.add(counters, 0, 1);
            }
            return instance.check(input);
          },
          close: () => instance.close?.(),
        };
      },
    };
    const report = await runTarget(watched, {
      runs: job.runs,
      seed: job.seed,
      ...(job.path !== undefined ? { path: job.path } : {}),
      caseTimeLimitMs: job.caseMs,
      heapGrowthLimitBytes: job.heapLimitMb * 1024 * 1024,
      onProgress: (n) => Atomics.store(counters, 1, n),
    });
    parentPort!.postMessage({ kind: 'report', report } satisfies WorkerMessage);
  } catch (err) {
    parentPort!.postMessage({ kind: 'error', error: `the run stopped: ${(err as Error).stack ?? String(err)}` } satisfies WorkerMessage);
  }
}

function table(reports: TargetReport[]): string {
  const rows = reports.map((r) => [
    r.target,
    String(r.cases),
    String(r.accepted),
    Object.entries(r.rejections)
      .sort((a, b) => b[1] - a[1])
      .map(([type, n]) => `${type} ${n}`)
      .join(', ') || '—',
    Number.isNaN(r.maxCaseMs) ? '—' : `${r.maxCaseCpuMs.toFixed(1)} / ${r.maxCaseMs.toFixed(1)} ms`,
    seconds(r.totalMs),
    Number.isNaN(r.heapBeforeBytes) ? '—' : `${mib(r.heapBeforeBytes)} → ${mib(r.heapAfterBytes)}`,
    r.failure ? 'FAILED' : 'ok',
  ]);
  const header = ['target', 'cases', 'accepted', 'rejected, by error type', 'max case (CPU / wall)', 'time', 'heap after GC (MiB)', ''];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === 1 || i === 2 || i === 4 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The most frequent rejection codes of each target: how deep the inputs got. */
function codes(reports: TargetReport[]): string {
  const lines = ['most frequent rejections:'];
  for (const r of reports) {
    const top = Object.entries(r.codes)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([code, n]) => `${code} ${n}`);
    if (top.length > 0) lines.push(`  ${r.target}: ${top.join(', ')}`);
  }
  return lines.join('\n');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
