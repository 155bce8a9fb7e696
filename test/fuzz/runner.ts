/**
 * Runs one fuzz target with fast-check and measures it: cases, how many were accepted,
 * rejections by error type, the slowest case, the heap before and after (each after a
 * full GC). A property violation comes back with the seed, the replay path and the
 * shrunk counterexample. Used by test/fuzz.test.ts (a few thousand cases per target)
 * and by scripts/fuzz.ts (100,000 and more).
 */
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What one case ended in: accepted, or refused with the module's own error type. */
export type Outcome = 'accepted' | { rejected: string; code?: string };

export interface TargetInstance<T> {
  /** Runs one case. Throws `FuzzViolation` (or anything else) when the property fails. */
  check(input: T): Outcome | Promise<Outcome>;
  /** Releases what `setup` created. */
  close?(): void;
}

export interface FuzzTarget<T = unknown> {
  name: string;
  /** The entry points it drives, for the report. */
  about: string;
  arbitrary: fc.Arbitrary<T>;
  /** Fresh state for one run (a tracker and its clock, …); kept for the whole run so its growth counts. */
  setup(): TargetInstance<T>;
}

/** A property of a target does not hold for an input. */
export class FuzzViolation extends Error {
  override name = 'FuzzViolation';
}

export function violation(message: string, cause?: unknown): never {
  throw new FuzzViolation(message, cause === undefined ? undefined : { cause });
}

export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) violation(typeof message === 'string' ? message : message());
}

/** A refusal with the module's own error: how it is counted, and what it said. */
export interface Rejected {
  rejected: Outcome & object;
  message: string;
}

/**
 * Runs `fn`; a throw of `errorClass` is a rejection (labelled with `code` when it has
 * one), anything else thrown is a violation that keeps the original error as its cause.
 */
export function expectTyped<R>(fn: () => R, errorClass: abstract new (...args: never[]) => Error): { value: R } | Rejected {
  try {
    return { value: fn() };
  } catch (err) {
    if (err instanceof FuzzViolation) throw err;
    if (err instanceof errorClass) return { rejected: rejection(err), message: err.message };
    return violation(`threw ${describeError(err)} instead of a ${errorClass.name}`, err);
  }
}

export async function expectTypedAsync<R>(fn: () => Promise<R>, errorClass: abstract new (...args: never[]) => Error): Promise<{ value: R } | Rejected> {
  try {
    return { value: await fn() };
  } catch (err) {
    if (err instanceof FuzzViolation) throw err;
    if (err instanceof errorClass) return { rejected: rejection(err), message: err.message };
    return violation(`threw ${describeError(err)} instead of a ${errorClass.name}`, err);
  }
}

/** The error's class, and its code and the field it names when it has them (list indexes folded). */
function rejection(err: Error): Outcome & object {
  const e = err as { code?: unknown; field?: unknown; parameter?: unknown; setting?: unknown };
  const where = [e.field, e.parameter, e.setting].find((x): x is string => typeof x === 'string' && x !== '');
  const parts = [typeof e.code === 'string' ? e.code : undefined, where?.replace(/\[\d+\]/g, '[n]').slice(0, 40)].filter((x) => x !== undefined);
  return parts.length > 0 ? { rejected: err.name, code: parts.join(' ') } : { rejected: err.name };
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const frame = err.stack?.split('\n').find((l) => l.trim().startsWith('at '))?.trim();
    return `${err.name}: ${err.message.split('\n')[0]}${frame ? ` (${frame})` : ''}`;
  }
  return `a non-error value ${String(err)}`;
}

export interface RunOptions {
  runs: number;
  seed?: number;
  /** Replays one case of a failing run (fast-check's path) instead of generating. */
  path?: string;
  /** A case taking more CPU time than this, three times in a row, fails the property. */
  caseTimeLimitMs?: number;
  /** Heap growth over the run (after GC, state of the target still alive) that fails it. */
  heapGrowthLimitBytes?: number;
  /** Called with the number of cases done, every so often. */
  onProgress?: (cases: number) => void;
}

export interface Failure {
  seed: number;
  path: string | undefined;
  /** The smallest failing input found: fast-check's shrunk one, its text or bytes cut further. */
  counterexample: string;
  /** The input as fast-check shrank it (replayable with seed and path). */
  shrunk: string;
  error: string;
  /** Every rerun needs this many cases to reach the failing one (seed-only replay). */
  atCase: number;
}

export interface TargetReport {
  target: string;
  about: string;
  seed: number;
  cases: number;
  accepted: number;
  /** Rejections by error class. */
  rejections: Record<string, number>;
  /** Rejections by error class and code. */
  codes: Record<string, number>;
  /** The slowest case, wall clock (includes waiting for I/O and for a shared core). */
  maxCaseMs: number;
  /** The slowest case in CPU time, which the limit applies to. */
  maxCaseCpuMs: number;
  /** That case's input, printed (cut at 600 characters). */
  slowest?: string;
  totalMs: number;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  failure?: Failure;
}

export const DEFAULT_CASE_TIME_LIMIT_MS = 50;
export const DEFAULT_HEAP_GROWTH_LIMIT_BYTES = 64 * 1024 * 1024;

export async function runTarget<T>(target: FuzzTarget<T>, options: RunOptions): Promise<TargetReport> {
  const limitMs = options.caseTimeLimitMs ?? DEFAULT_CASE_TIME_LIMIT_MS;
  const seed = options.seed ?? (Math.random() * 2 ** 31) | 0;
  const report: TargetReport = {
    target: target.name,
    about: target.about,
    seed,
    cases: 0,
    accepted: 0,
    rejections: {},
    codes: {},
    maxCaseMs: 0,
    maxCaseCpuMs: 0,
    totalMs: 0,
    heapBeforeBytes: 0,
    heapAfterBytes: 0,
  };
  // Libraries warn on odd input (YAML's "keys with collection values"); a hundred thousand
  // warnings would bury the report, and a warning is not a fault.
  const emitWarning = process.emitWarning;
  process.emitWarning = (() => undefined) as typeof process.emitWarning;
  const started = performance.now();
  report.heapBeforeBytes = heapAfterGc();
  const instance = target.setup();
  let failed = false;
  let slowest: unknown;
  try {
    const property = fc.asyncProperty(target.arbitrary, async (input) => {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      let outcome: Outcome;
      try {
        outcome = await instance.check(input);
      } catch (err) {
        failed = true;
        throw err;
      }
      let cpu = cpuMs(c0);
      if (!failed) {
        report.maxCaseMs = Math.max(report.maxCaseMs, performance.now() - t0);
        if (cpu > report.maxCaseCpuMs) {
          report.maxCaseCpuMs = cpu;
          slowest = input;
        }
      }
      // CPU time, not wall time: the cores may be shared with other work. One slow case
      // may still be a major GC: it must be slow three times over to count.
      if (cpu > limitMs) {
        for (let i = 0; i < 2 && cpu > limitMs; i++) {
          const c1 = process.cpuUsage();
          await instance.check(input);
          cpu = Math.min(cpu, cpuMs(c1));
        }
        if (cpu > limitMs) {
          failed = true;
          violation(`took ${cpu.toFixed(1)} ms of CPU (limit ${limitMs} ms)`);
        }
      }
      if (failed) return;
      report.cases++;
      if (outcome === 'accepted') report.accepted++;
      else {
        report.rejections[outcome.rejected] = (report.rejections[outcome.rejected] ?? 0) + 1;
        const key = outcome.code ? `${outcome.rejected}:${outcome.code}` : outcome.rejected;
        report.codes[key] = (report.codes[key] ?? 0) + 1;
      }
      if (options.onProgress && report.cases % 1000 === 0) options.onProgress(report.cases);
    });
    const details = await fc.check(property, {
      numRuns: options.runs,
      seed,
      ...(options.path !== undefined ? { path: options.path } : {}),
    });
    if (details.failed) {
      const shrunk = details.counterexample?.[0];
      const minimal = details.counterexample && details.errorInstance ? await minimize(shrunk as T, instance, signature(details.errorInstance)) : { input: shrunk, error: undefined };
      report.failure = {
        seed: details.seed,
        path: details.counterexamplePath ?? undefined,
        counterexample: details.counterexample ? formatValue(minimal.input) : '(none)',
        shrunk: details.counterexample ? formatValue(shrunk) : '(none)',
        error: errorChain(minimal.error ?? details.errorInstance ?? new Error('property failed')),
        atCase: report.cases + 1,
      };
    }
    report.slowest = formatValue(slowest, 600);
    report.heapAfterBytes = heapAfterGc();
    const limit = options.heapGrowthLimitBytes ?? DEFAULT_HEAP_GROWTH_LIMIT_BYTES;
    const growth = report.heapAfterBytes - report.heapBeforeBytes;
    if (!report.failure && growth > limit) {
      report.failure = {
        seed,
        path: undefined,
        counterexample: '(the whole run)',
        shrunk: '(the whole run)',
        error: `heap grew by ${mib(growth)} over ${report.cases} cases (limit ${mib(limit)})`,
        atCase: report.cases,
      };
    }
  } finally {
    instance.close?.();
    process.emitWarning = emitWarning;
    report.totalMs = performance.now() - started;
  }
  return report;
}

/** What makes two failures the same one: the innermost error's type and the start of its message, numbers aside. */
function signature(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  if (!(e instanceof Error)) return String(e).slice(0, 40);
  return `${e.name}: ${e.message.split('\n')[0]!.replace(/\d+/g, '#').slice(0, 40)}`;
}

async function failureOf<T>(instance: TargetInstance<T>, input: T): Promise<unknown> {
  try {
    await instance.check(input);
    return undefined;
  } catch (err) {
    return err;
  }
}

/**
 * Cuts the counterexample's text and byte fields (or the input itself when it is one)
 * chunk by chunk, halving the chunk size, keeping each cut after which the case still
 * fails the same way. fast-check shrinks the generator's choices; a mutated document is
 * one choice, so this is what brings a broken YAML file down to its one bad line.
 */
/** Fields of target inputs that say what a valid input must come back as. */
const EXPECTATION_KEYS = ['valid', 'spec', 'expect', 'expected', 'fields', 'hashes', 'parts'];

async function minimize<T>(input: T, instance: TargetInstance<T>, wanted: string): Promise<{ input: T; error: unknown }> {
  let best = input;
  let error = await failureOf(instance, best);
  if (error === undefined || signature(error) !== wanted) return { input, error: undefined };
  let budget = 3000;
  const fields: (string | undefined)[] = typeof input === 'string' || Buffer.isBuffer(input) ? [undefined] : typeof input === 'object' && input !== null ? Object.keys(input) : [];
  const get = (v: T, f: string | undefined): unknown => (f === undefined ? v : (v as Record<string, unknown>)[f]);
  // A cut input is no longer the valid one the expectation fields describe: they are dropped,
  // so a failure of the kind "a valid input was refused" is not cut down to garbage.
  const set = (v: T, f: string | undefined, x: unknown): T => {
    if (f === undefined) return x as T;
    const out: Record<string, unknown> = { ...(v as object), [f]: x };
    for (const k of EXPECTATION_KEYS) if (k in out) out[k] = undefined;
    return out as T;
  };
  for (const field of fields) {
    const value = get(best, field);
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) continue;
    let current: string | Buffer = value;
    for (let size = Math.max(1, current.length >> 1); size >= 1 && budget > 0; size >>= 1) {
      for (let at = 0; at < current.length && budget > 0; ) {
        const cut: string | Buffer = typeof current === 'string' ? current.slice(0, at) + current.slice(at + size) : Buffer.concat([current.subarray(0, at), current.subarray(at + size)]);
        const candidate = set(best, field, cut);
        budget--;
        const e = await failureOf(instance, candidate);
        if (e !== undefined && signature(e) === wanted) {
          best = candidate;
          current = cut;
          error = e;
        } else {
          at += size;
        }
      }
    }
  }
  return { input: best, error };
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function errorChain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 4; depth++) {
    parts.push(describeError(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join('\n  caused by ');
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

let gc: (() => void) | undefined | null = null;

/** Used heap after a full collection (exposing `gc` for the process if it is not yet). */
export function heapAfterGc(): number {
  if (gc === null) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gc = g;
    else {
      try {
        setFlagsFromString('--expose-gc');
        gc = runInNewContext('gc') as () => void;
      } catch {
        gc = undefined;
      }
    }
  }
  gc?.();
  gc?.();
  return getHeapStatistics().used_heap_size;
}

/**
 * A value as source-like text, byte strings shown as escaped latin1 so bencode and
 * wire bytes stay readable; long values are cut.
 */
export function formatValue(v: unknown, max = 4000): string {
  const out = format(v, 0);
  return out.length > max ? `${out.slice(0, max)}… (${out.length} chars)` : out;
}

function format(v: unknown, depth: number): string {
  if (depth > 30) return '…';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return `Buffer.from(${escapeLatin1(b)}, 'latin1')`;
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'undefined';
  if (v === null || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => format(x, depth + 1)).join(', ')}]`;
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== null && proto !== Object.prototype) return fc.stringify(v);
    const body = Object.keys(v)
      .map((k) => `${JSON.stringify(k)}: ${format((v as Record<string, unknown>)[k], depth + 1)}`)
      .join(', ');
    return proto === null ? `Object.assign(Object.create(null), {${body}})` : `{${body}}`;
  }
  return fc.stringify(v);
}

function escapeLatin1(b: Buffer): string {
  let s = '"';
  for (const c of b) {
    if (c === 0x22 || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `${s}"`;
}
