import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HoldingState } from '../../contracts/src/agent-channel.js';

const STATES: HoldingState[] = ['pending', 'downloading', 'verifying', 'publishing', 'complete', 'failed', 'removing'];

/** What the gauges read at scrape time. */
export interface AgentMetricSources {
  peers(): number;
  piecesInFlight(): number;
  states(): Partial<Record<HoldingState, number>>;
}

/** The agent's Prometheus metrics: the process defaults plus swarmship_agent_*; labels stay low in cardinality. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly receivedBytes: Counter<'source'>;
  readonly sentBytes: Counter;
  readonly piecesVerified: Counter;
  readonly hashFailures: Counter;
  readonly peersBanned: Counter;
  readonly releaseFailures: Counter<'reason'>;
  readonly downloadDuration: Histogram;

  constructor(sources: AgentMetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.receivedBytes = new Counter({
      name: 'swarmship_agent_received_bytes_total',
      help: 'Payload bytes received and kept (verified pieces; duplicates and failed pieces excluded), by source: the origin or other agents.',
      labelNames: ['source'],
      registers,
    });
    this.receivedBytes.inc({ source: 'origin' }, 0);
    this.receivedBytes.inc({ source: 'peer' }, 0);
    this.sentBytes = new Counter({ name: 'swarmship_agent_sent_bytes_total', help: 'Payload bytes sent to other agents.', registers });
    this.piecesVerified = new Counter({ name: 'swarmship_agent_pieces_verified_total', help: 'Pieces downloaded whose SHA-1 matched.', registers });
    this.hashFailures = new Counter({ name: 'swarmship_agent_hash_failures_total', help: 'Downloaded pieces whose SHA-1 did not match (discarded, fetched again).', registers });
    this.releaseFailures = new Counter({
      name: 'swarmship_agent_release_failures_total',
      help: 'Downloads or publications that failed, by reason: no-space (the data dir is full; retried later), refused (signature or manifest), other.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['no-space', 'refused', 'other']) this.releaseFailures.inc({ reason }, 0);
    this.peersBanned = new Counter({
      name: 'swarmship_agent_peers_banned_total',
      help: 'Peers banned from a download: data that failed its hash twice, or frames no honest client sends (wrong block lengths, pieces it never had, floods of requests).',
      registers,
    });
    new Gauge({
      name: 'swarmship_agent_peers',
      help: 'Peers connected, all releases together.',
      registers,
      collect() {
        this.set(sources.peers());
      },
    });
    new Gauge({
      name: 'swarmship_agent_pieces_in_flight',
      help: 'Pieces requested and not yet verified and on disk, all releases together: what a crash now would fetch again.',
      registers,
      collect() {
        this.set(sources.piecesInFlight());
      },
    });
    this.downloadDuration = new Histogram({
      name: 'swarmship_agent_download_duration_seconds',
      help: 'Time from the start of a download to its publication, per release.',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    new Gauge({
      name: 'swarmship_agent_release_state',
      help: 'Releases this agent holds, by state.',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = sources.states();
        for (const s of STATES) this.set({ state: s }, counts[s] ?? 0);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
