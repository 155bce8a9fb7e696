/**
 * Child processes for the benchmark, and what the kernel says about their CPU time and
 * memory. Every child is kept in one registry so an error, a timeout or Ctrl-C still
 * ends it by its PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const KIB = 1024;

let ticksPerSecond: number | undefined;

/** USER_HZ; /proc/PID/stat counts CPU time in these ticks. */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/**
 * utime + stime of the whole thread group: the leader's /proc/PID/stat sums every
 * thread's time, which matters for worker threads and libtorrent's disk threads.
 */
export function cpuSeconds(pid: number): number | undefined {
  const t = cpuTimes(pid);
  return t && t.user + t.sys;
}

/** User and kernel time of the whole thread group, seconds; the kernel's share is where socket and page-cache copies go. */
export function cpuTimes(pid: number): { user: number; sys: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses; the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { user: utime / clockTicks(), sys: stime / clockTicks() };
}

export interface Memory {
  /** Anonymous resident memory now, bytes: what a process allocated itself, without mapped files. */
  rssAnon: number;
  /** The kernel's high-water mark of all resident memory, bytes; includes mmapped files. */
  vmHwm: number;
}

export function memory(pid: number): Memory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * KIB : undefined;
  };
  const rssAnon = field('RssAnon');
  const vmHwm = field('VmHWM');
  // A zombie has no memory lines left; it is not a reading of zero.
  if (rssAnon === undefined || vmHwm === undefined) return undefined;
  return { rssAnon, vmHwm };
}

/**
 * Samples one process every `everyMs`: RssAnon has no high-water mark of its own, so its
 * peak is only as good as the sampling; VmHWM is exact.
 */
export class Sampler {
  peakRssAnon = 0;
  peakVmHwm = 0;
  lastCpu = 0;
  lastSys = 0;
  private timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    everyMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  /** Reads now; call it the moment a process reports completion, before it can exit. */
  sample(): void {
    const m = memory(this.pid);
    if (m) {
      this.peakRssAnon = Math.max(this.peakRssAnon, m.rssAnon);
      this.peakVmHwm = Math.max(this.peakVmHwm, m.vmHwm);
    }
    const cpu = cpuTimes(this.pid);
    if (cpu !== undefined) {
      this.lastCpu = cpu.user + cpu.sys;
      this.lastSys = cpu.sys;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export interface Line {
  text: string;
  /** Parsed when the line is a JSON object. */
  json: Record<string, unknown> | undefined;
  /** performance.now() when the chunk holding the line arrived. */
  at: number;
}

const live = new Set<Child>();
/** How many of a child's stderr lines are kept: enough for a controller's or agent's log over a run. */
const STDERR_LINES = 20_000;

/** A child whose stdout is read as lines, each stamped with its arrival time. */
export class Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly lines: Line[] = [];
  /** Its stderr as lines (where programs log), the last STDERR_LINES of them. */
  readonly errLines: Line[] = [];
  private stderrTail = '';
  private partial = '';
  private errPartial = '';
  private watchers: ((line: Line) => void)[] = [];
  readonly exited: Promise<number | string | null>;

  constructor(
    readonly label: string,
    command: string,
    args: string[],
    opts: { cwd?: string } = {},
  ) {
    this.process = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    if (this.process.pid === undefined) throw new Error(`${label}: could not start ${command}`);
    this.pid = this.process.pid;
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => {
        live.delete(this);
        resolve(code ?? signal);
      });
      this.process.on('error', () => {
        live.delete(this);
        resolve('spawn-error');
      });
    });
    this.process.stdout?.on('data', (chunk: Buffer) => {
      const at = performance.now();
      const parts = (this.partial + chunk.toString('utf8')).split('\n');
      this.partial = parts.pop() ?? '';
      for (const text of parts) {
        const line: Line = { text, json: parseJson(text), at };
        this.lines.push(line);
        // Synchronously, so a completion line is acted on before the next event-loop turn.
        for (const w of this.watchers) w(line);
      }
    });
    this.process.stderr?.on('data', (chunk: Buffer) => {
      const at = performance.now();
      const text = chunk.toString('utf8');
      this.stderrTail = (this.stderrTail + text).slice(-4000);
      const parts = (this.errPartial + text).split('\n');
      this.errPartial = parts.pop() ?? '';
      for (const line of parts) this.errLines.push({ text: line, json: parseJson(line), at });
      if (this.errLines.length > STDERR_LINES) this.errLines.splice(0, this.errLines.length - STDERR_LINES);
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The first line (already seen or to come) that `match` accepts. */
  waitLine(match: (line: Line) => boolean, timeoutMs: number, what: string): Promise<Line> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.watchers = this.watchers.filter((w) => w !== watcher);
      };
      const watcher = (line: Line) => {
        if (!match(line)) return;
        done();
        resolve(line);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs / 1000} s\n${this.tail()}`));
      }, timeoutMs);
      this.watchers.push(watcher);
      void this.exited.then((code) => {
        if (this.watchers.includes(watcher)) {
          done();
          reject(new Error(`${this.label} exited (${code}) before ${what}\n${this.tail()}`));
        }
      });
    });
  }

  /** Calls `fn` synchronously on every later line. */
  onLine(fn: (line: Line) => void): void {
    this.watchers.push(fn);
  }

  tail(): string {
    const out = this.lines.slice(-5).map((l) => l.text).join('\n');
    return `  last stdout:\n${indent(out)}\n  last stderr:\n${indent(this.stderrTail.trim().split('\n').slice(-15).join('\n'))}`;
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    signal(this.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([this.exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!gone) {
      signal(this.pid, 'SIGKILL');
      await this.exited;
    }
  }
}

/** Ends every child still running, by PID; safe in an 'exit' handler (synchronous). */
export function killAllChildren(): void {
  for (const child of live) signal(child.pid, 'SIGKILL');
  live.clear();
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
