/**
 * Two network namespaces joined by a veth pair, for clients that will not talk over
 * loopback (Transmission ignores 127.0.0.0/8 peers). The addresses exist only inside
 * the two namespaces, so nothing leaves this machine. Names are unique per run, and
 * the namespaces are deleted on close() and, failing that, when the process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const live = new Set<string>();
let exitGuardInstalled = false;

function ip(args: string[]): { ok: boolean; error: string } {
  const run = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: run.status === 0, error: run.error?.message ?? run.stderr.trim() };
}

function deleteNamespace(name: string): void {
  ip(['netns', 'delete', name]);
  live.delete(name);
}

function installExitGuard(): void {
  if (exitGuardInstalled) return;
  exitGuardInstalled = true;
  process.on('exit', () => {
    for (const name of [...live]) deleteNamespace(name);
  });
}

/** Why namespaces cannot be made here, or undefined when they can (tried for real). */
export function netnsUnavailableReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
  const probe = `swarmship-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const added = ip(['netns', 'add', probe]);
  if (!added.ok) return `'ip netns add' was refused: ${added.error}`;
  ip(['netns', 'delete', probe]);
  return undefined;
}

/** A process started inside a namespace, with its stdout lines and output kept. */
export interface NetnsProcess {
  child: ChildProcess;
  lines: string[];
  output: () => string;
  /** Resolves with the first stdout line for which `pred` is true. */
  line(pred: (l: string) => boolean, timeoutMs: number): Promise<string>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

export class NamespacePair {
  readonly a: string;
  readonly b: string;
  private readonly processes: NetnsProcess[] = [];

  /** `subnet` is the first three octets: a is subnet.1, b is subnet.2. */
  constructor(readonly subnet: string) {
    const id = `${process.pid}-${randomBytes(2).toString('hex')}`;
    this.a = `swarmship-a-${id}`;
    this.b = `swarmship-b-${id}`;
  }

  get addressA(): string {
    return `${this.subnet}.1`;
  }

  get addressB(): string {
    return `${this.subnet}.2`;
  }

  create(): void {
    installExitGuard();
    const suffix = randomBytes(3).toString('hex');
    const vethA = `sva${suffix}`;
    const vethB = `svb${suffix}`;
    const steps: string[][] = [
      ['netns', 'add', this.a],
      ['netns', 'add', this.b],
      ['link', 'add', vethA, 'netns', this.a, 'type', 'veth', 'peer', 'name', vethB, 'netns', this.b],
      ['-n', this.a, 'addr', 'add', `${this.addressA}/24`, 'dev', vethA],
      ['-n', this.b, 'addr', 'add', `${this.addressB}/24`, 'dev', vethB],
      ['-n', this.a, 'link', 'set', 'lo', 'up'],
      ['-n', this.b, 'link', 'set', 'lo', 'up'],
      ['-n', this.a, 'link', 'set', vethA, 'up'],
      ['-n', this.b, 'link', 'set', vethB, 'up'],
    ];
    for (const step of steps) {
      const r = ip(step);
      if (step[1] === 'add' && step[0] === 'netns' && r.ok) live.add(step[2]!);
      if (!r.ok) throw new Error(`ip ${step.join(' ')}: ${r.error}`);
    }
  }

  /** Runs `command args…` inside namespace `ns`; `ip netns exec` execs it, so its PID is the command's. */
  exec(ns: string, command: string, args: string[]): NetnsProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let out = '';
    const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(l);
      out += `${l}\n`;
      for (const w of [...waiters]) {
        if (!w.pred(l)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const proc: NetnsProcess = {
      child,
      lines,
      output: () => out,
      line(pred, timeoutMs) {
        const found = lines.find(pred);
        if (found !== undefined) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no such line from ${command} within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
          waiters.push({
            pred,
            resolve: (l) => {
              clearTimeout(t);
              resolve(l);
            },
          });
          void exited.then(() => reject(new Error(`${command} exited (${child.exitCode ?? child.signalCode}) first; output:\n${out}`)));
        });
      },
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        process.kill(child.pid, 'SIGTERM');
        const t = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      },
    };
    this.processes.push(proc);
    return proc;
  }

  /** Stops every process started here, then deletes both namespaces (and with them the veth pair). */
  async close(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
    this.processes.length = 0;
    deleteNamespace(this.a);
    deleteNamespace(this.b);
  }
}
