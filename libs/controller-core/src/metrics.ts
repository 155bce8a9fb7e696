import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ControllerCore } from './controller-core.js';
import { completeRatio } from './rollout.js';

/** The controller's Prometheus metrics; gauges are read from the core at scrape time. */
export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly trackerAnnounces: Counter;

  constructor(core: ControllerCore) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'swarmship_controller_releases',
      help: 'Releases the controller holds, by state (live or retired).',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const all = core.store.list();
        const live = all.filter((r) => r.record.retiredAt === undefined).length;
        this.set({ state: 'live' }, live);
        this.set({ state: 'retired' }, all.length - live);
      },
    });
    new Gauge({
      name: 'swarmship_controller_agents',
      help: 'Agents heard from within the agent timeout (--agent-timeout), or waiting on a sync.',
      registers: [this.registry],
      collect() {
        this.set(core.fleet.active().length);
      },
    });
    new Gauge({
      name: 'swarmship_controller_agents_lost',
      help: 'Agents silent for longer than the agent timeout and not yet forgotten (--agent-forget).',
      registers: [this.registry],
      collect() {
        this.set(core.fleet.list().filter((a) => a.lost).length);
      },
    });
    new Gauge({
      name: 'swarmship_controller_rollout_complete_ratio',
      help: 'Share of the targeted agents holding a verified copy of each live release (0 to 1).',
      labelNames: ['release'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of core.store.live()) this.set({ release: `${r.record.name}@${r.record.version}` }, completeRatio(core.status(r.record.name, r.record.version)));
      },
    });
    const reported = { bytes: 0 };
    new Counter({
      name: 'swarmship_controller_origin_sent_bytes_total',
      help: 'Payload bytes the origin seeder sent to peers.',
      registers: [this.registry],
      collect() {
        const total = core.origin.totalSentBytes();
        // A counter only goes up: add what was sent since the last scrape.
        if (total > reported.bytes) this.inc(total - reported.bytes);
        reported.bytes = Math.max(total, reported.bytes);
      },
    });
    this.trackerAnnounces = new Counter({
      name: 'swarmship_tracker_announces_total',
      help: 'Announce requests the embedded tracker answered.',
      registers: [this.registry],
    });
  }

  announced(): void {
    this.trackerAnnounces.inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
