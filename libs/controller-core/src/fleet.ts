import type { AgentIdentity, Holding } from '../../contracts/src/agent-channel.js';

export interface AgentRecord {
  name: string;
  /** Unknown until the agent's first sync (a progress report may come first after a controller restart). */
  identity: AgentIdentity | undefined;
  holdings: Holding[];
  /** Milliseconds since the epoch. */
  lastSeen: number;
}

/** Clock for the long-poll: injected so tests need not sleep. */
export interface FleetClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemFleetClock: FleetClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** The longest an agent's sync is held: under common proxy and load-balancer idle timeouts. */
export const MAX_SYNC_WAIT_MS = 25_000;

export interface FleetOptions {
  /** An agent silent this long (and not in a held sync) is lost: listed, not counted. */
  lostAfterMs: number;
  /** A lost agent silent this long is forgotten: gone from the list, its reports dropped. */
  forgetAfterMs: number;
}

/** How often at most the fleet looks for agents to forget. */
const PRUNE_EVERY_MS = 1000;

/**
 * What the controller knows of its agents (in memory: agents report everything on every
 * sync, so a restarted controller relearns it within one poll) and the revision of the
 * desired state that long-polling agents wait on.
 */
export class Fleet {
  private readonly agents = new Map<string, AgentRecord>();
  private readonly waiters = new Set<() => void>();
  /** Readers of rollout status waiting for the next agent report (see nextReport). */
  private readonly reportWaiters = new Set<() => void>();
  /** When the controller first saw each agent hold each release complete: a fallback for time-to-N %. */
  private readonly completedSeen = new Map<string, Map<string, number>>();
  /** Syncs being held right now, by agent: an agent waiting on one is alive, however long ago it wrote. */
  private readonly polling = new Map<string, number>();
  private prunedAt = -Infinity;
  private rev: number;

  constructor(
    private readonly clock: FleetClock = systemFleetClock,
    private readonly options: FleetOptions = { lostAfterMs: 120_000, forgetAfterMs: 3_600_000 },
  ) {
    // Starts from the clock, not 0, so an agent's revision from before a restart never
    // matches by chance and every agent re-syncs at once.
    this.rev = clock.now();
  }

  get revision(): number {
    return this.rev;
  }

  /** The desired state changed (a release published or retired): wake every waiting agent. */
  bump(): void {
    this.rev++;
    wakeEvery(this.waiters);
  }

  /** Resolves at once if `known` is stale, else when the revision changes or `waitMs` passes. */
  waitForChange(known: number, waitMs: number): Promise<void> {
    if (known !== this.rev || waitMs <= 0) return Promise.resolve();
    return this.waitIn(this.waiters, Math.min(waitMs, MAX_SYNC_WAIT_MS));
  }

  /** Releases every held sync and every wait for a report (shutdown). */
  wakeAll(): void {
    wakeEvery(this.waiters);
    wakeEvery(this.reportWaiters);
  }

  /** Resolves when any agent next syncs or reports progress, or after `waitMs`. */
  nextReport(waitMs: number): Promise<void> {
    return waitMs <= 0 ? Promise.resolve() : this.waitIn(this.reportWaiters, waitMs);
  }

  /** Resolves when `waiters` are woken, or after `ms`. */
  private waitIn(waiters: Set<() => void>, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.clock.clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      };
      const timer = this.clock.setTimeout(wake, ms);
      waiters.add(wake);
    });
  }

  recordSync(identity: AgentIdentity, holdings: Holding[]): void {
    const now = this.clock.now();
    this.prune(now);
    this.agents.set(identity.name, { name: identity.name, identity, holdings, lastSeen: now });
    this.noteCompletions(identity.name, holdings, now);
    wakeEvery(this.reportWaiters);
  }

  recordProgress(agentName: string, holdings: Holding[]): void {
    const now = this.clock.now();
    this.prune(now);
    const known = this.agents.get(agentName);
    this.agents.set(agentName, { name: agentName, identity: known?.identity, holdings, lastSeen: now });
    this.noteCompletions(agentName, holdings, now);
    wakeEvery(this.reportWaiters);
  }

  private noteCompletions(agent: string, holdings: Holding[], now: number): void {
    // Rebuilt from each report, so a release the agent no longer holds is forgotten too.
    const before = this.completedSeen.get(agent);
    const seen = new Map<string, number>();
    for (const h of holdings) if (h.state === 'complete') seen.set(h.infoHash, before?.get(h.infoHash) ?? now);
    this.completedSeen.set(agent, seen);
  }

  /** When `agent` completed `infoHash`: its own word if it gave it, else when we first saw it. */
  completedAt(agent: string, holding: Holding): number | undefined {
    return holding.completedAt ?? this.completedSeen.get(agent)?.get(holding.infoHash);
  }

  /**
   * A sync of `agent` is being held: the agent counts as seen until it is answered, and
   * is seen again then. Returns the function to call once it is answered.
   */
  holdSync(agent: string): () => void {
    this.polling.set(agent, (this.polling.get(agent) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.polling.get(agent) ?? 1) - 1;
      if (left > 0) this.polling.set(agent, left);
      else this.polling.delete(agent);
      const record = this.agents.get(agent);
      if (record) record.lastSeen = Math.max(record.lastSeen, this.clock.now());
    };
  }

  /** Every agent not yet forgotten, each with whether it is lost, by name. */
  list(): (AgentRecord & { lost: boolean })[] {
    const now = this.clock.now();
    this.prune(now);
    return [...this.agents.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((a) => ({ ...a, lost: !this.polling.has(a.name) && now - a.lastSeen > this.options.lostAfterMs }));
  }

  /** Agents heard from within the lost timeout, or waiting on a sync: the ones a rollout waits for. */
  active(): AgentRecord[] {
    return this.list().filter((a) => !a.lost);
  }

  /** Forgets agents silent for longer than `forgetAfterMs`, at most once a second. */
  private prune(now: number): void {
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    for (const [name, a] of this.agents) {
      if (this.polling.has(name) || now - a.lastSeen <= this.options.forgetAfterMs) continue;
      this.agents.delete(name);
      this.completedSeen.delete(name);
    }
  }
}

/** Wakes everyone waiting in `waiters` (each wake removes itself; the set is emptied first). */
function wakeEvery(waiters: Set<() => void>): void {
  const waiting = [...waiters];
  waiters.clear();
  for (const wake of waiting) wake();
}
