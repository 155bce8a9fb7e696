/**
 * What a fleet scenario is to the harness. The harness owns the hosts, the links, the
 * artifact, the clock, the byte counters and every process; a scenario only says what
 * to start where and when each node holds its copy.
 *
 * Order: setup() (untimed: servers, trackers, agents waiting for work), then the harness
 * reads the counters and starts the clock, start() (the timed part begins: downloads,
 * a publish), then waitForNodes() resolves once every node holds a copy, with the time
 * each did, then teardown(). Processes started through ctx.spawn are stopped by the
 * harness after teardown() whatever happened, by PID.
 */
import type { Child, Line } from '../lib/proc.js';
import type { FleetNetwork, Host } from './network.js';

export interface Artifact {
  /** The file on the origin's disk. */
  path: string;
  /** Its base name. */
  name: string;
  size: number;
  sha1: string;
  pieceLength: number;
}

export interface ScenarioContext {
  net: FleetNetwork;
  artifact: Artifact;
  /** The checkout (for dist/ paths). */
  root: string;
  /** dist/apps/cli/src/main.js */
  cli: string;
  /** A scratch dir for this scenario, removed afterwards. */
  dir: string;
  /** Each host's own dir under `dir` (its "disk"); created before setup(). */
  hostDir(host: Host): string;
  /** Starts `command args…` on `host` (inside its namespace); the harness samples its CPU and memory and stops it. */
  spawn(host: Host, label: string, command: string, args: string[], env?: Record<string, string>): Child;
  log(message: string): void;
  /** performance.now() after which waiting is pointless. */
  deadline: number;
}

export interface NodeCopy {
  /** performance.now() when the node held a verified copy, as the scenario's tool reported it. */
  at: number;
  /** Where the copy is, to be checked bit for bit by the harness. */
  path: string;
}

export interface Scenario {
  id: string;
  /** What the report calls it. */
  label: string;
  /** Which physical bound applies: one origin serving everyone, or a swarm. */
  kind: 'fanout' | 'swarm';
  /** Free text for the report: tracker, settings, what is interim. */
  notes: string;
  setup(ctx: ScenarioContext): Promise<void>;
  start(ctx: ScenarioContext): Promise<void>;
  /** Resolves when every node holds its copy (keyed by host name); rejects on failure or at ctx.deadline. */
  waitForNodes(ctx: ScenarioContext): Promise<Map<string, NodeCopy>>;
  /**
   * Optional: when the scenario's own notion of "done" comes later than the last node's
   * copy (e.g. `publish --wait` returning), resolves with that time.
   */
  finishedAt?(ctx: ScenarioContext): Promise<number>;
  /** Optional: times of the scenario's own milestones (performance.now()), for the report. */
  milestones?(): Record<string, number>;
  teardown(ctx: ScenarioContext): Promise<void>;
}

/** Rejects at `deadline` unless `p` settles first. */
export function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not done before the deadline`)), Math.max(0, deadline - performance.now()));
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Every node's copy, from the line its process prints when the copy is done: waits for
 * `match` on each node's process in `procs` (keyed by host name) until ctx.deadline.
 * `copy` turns the line into the node's copy and may throw for a failed outcome;
 * `failure`, when it rejects first, ends the wait (a publish that exited, say).
 */
export async function copiesFromLines(
  ctx: ScenarioContext,
  procs: Map<string, Child>,
  what: string,
  match: (line: Line) => boolean,
  copy: (node: Host, line: Line) => NodeCopy,
  failure?: Promise<never>,
): Promise<Map<string, NodeCopy>> {
  const done = new Map<string, NodeCopy>();
  const timeout = Math.max(1000, ctx.deadline - performance.now());
  const copies = Promise.all(
    ctx.net.nodes.map(async (node) => {
      const line = await procs.get(node.name)!.waitLine(match, timeout, what);
      done.set(node.name, copy(node, line));
    }),
  );
  await withDeadline(failure ? Promise.race([copies, failure]) : copies, ctx.deadline, what);
  return done;
}
