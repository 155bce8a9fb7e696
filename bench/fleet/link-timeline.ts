/**
 * Every host's link rate over a scenario, sampled from the switch's side of each link.
 *
 * The totals say how many bytes crossed the links; they cannot say when. Where a
 * scenario loses time against its bound (a slow start, an idle origin, a tail) shows
 * only in how busy the links were second by second, and it is read here the same way
 * for every scenario, without touching the products.
 *
 * All switch ports live in one namespace, so one file holds all their counters:
 * /proc/<pid>/net/dev of any process in that namespace. A `sleep` started there gives
 * such a pid; reading the file costs microseconds, where running `ip -s link` for each
 * host every 250 ms would have taken a good part of a core from the scenarios.
 */
import { readFileSync } from 'node:fs';
import { Child } from '../lib/proc.js';
import type { FleetNetwork } from './network.js';

export interface LinkTimeline {
  /**
   * When each step ended, seconds from the first sample. Steps are asked for every 250 ms,
   * but a busy machine stretches some: a step's bytes are its rate times its own length.
   */
  stepEndsSeconds: number[];
  /** Per host (origin first, as FleetNetwork.hosts), per step: bits per second sent and received. */
  hosts: { host: string; txBitsPerSecond: number[]; rxBitsPerSecond: number[] }[];
  /** Per step: the share of the machine's CPU time that was busy (all hosts share it). */
  cpuBusy: number[];
  /**
   * Per step: whether the machine's disks stalled (see diskStalled): every host writes
   * to the same disk here, so a stall holds up every host at once.
   */
  diskStalled: boolean[];
}

/** Samples every host's link until stop(); the first sample is taken at start(). */
export class LinkTimelineRecorder {
  private readonly holder: Child;
  private timer: NodeJS.Timeout | undefined;
  private readonly samples: { at: number; counters: Map<string, { rx: number; tx: number }>; cpu: MachineCpu; diskIos: number }[] = [];

  constructor(
    private readonly net: FleetNetwork,
    private readonly stepMs = 250,
  ) {
    // Long enough for any scenario; stopped by PID with the scenario's other processes.
    this.holder = new Child('link counters (switch)', 'ip', net.execArgs({ ns: net.switchNs }, 'sleep', ['86400']));
  }

  /** The child to stop with the scenario's processes. */
  get child(): Child {
    return this.holder;
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.stepMs);
    this.timer.unref();
  }

  stop(): LinkTimeline {
    clearInterval(this.timer);
    this.sample();
    const hosts = this.net.hosts.map((h) => {
      const tx: number[] = [];
      const rx: number[] = [];
      for (let i = 1; i < this.samples.length; i++) {
        const a = this.samples[i - 1]!;
        const b = this.samples[i]!;
        const seconds = (b.at - a.at) / 1000;
        const before = a.counters.get(h.switchDev);
        const after = b.counters.get(h.switchDev);
        // The switch port receives what the host sends, and sends what the host receives.
        // A step without counters (the holder not in the namespace yet) counts as idle, so
        // every series keeps one value per step.
        const ok = before && after && seconds > 0;
        tx.push(ok ? Math.round(((after.rx - before.rx) * 8) / seconds) : 0);
        rx.push(ok ? Math.round(((after.tx - before.tx) * 8) / seconds) : 0);
      }
      return { host: h.name, txBitsPerSecond: tx, rxBitsPerSecond: rx };
    });
    const cpuBusy: number[] = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1]!.cpu;
      const b = this.samples[i]!.cpu;
      cpuBusy.push(Math.round(busyShare(a, b) * 1000) / 1000);
    }
    const diskStalls: boolean[] = [];
    for (let i = 1; i < this.samples.length; i++) diskStalls.push(diskStalled(this.samples[i - 1]!, this.samples[i]!));
    const first = this.samples[0]?.at ?? 0;
    const stepEndsSeconds = this.samples.slice(1).map((x) => Math.round(x.at - first) / 1000);
    return { stepEndsSeconds, hosts, cpuBusy, diskStalled: diskStalls };
  }

  private sample(): void {
    let text: string;
    try {
      text = readFileSync(`/proc/${this.holder.pid}/net/dev`, 'utf8');
    } catch {
      return; // The holder is gone (the run is being torn down).
    }
    this.samples.push({ at: performance.now(), counters: parseNetDev(text), cpu: machineCpu(), diskIos: machineDiskIos() });
  }
}

export interface MachineCpu {
  busy: number;
  total: number;
  /** Idle while some task waited for the disk. */
  ioWait: number;
}

/** Jiffies of the whole machine, busy and total, from /proc/stat. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total, ioWait: f[4] ?? 0 };
}

/** Reads and writes completed by every block device so far, from /proc/diskstats (0 where it cannot be read). */
export function machineDiskIos(): number {
  let text: string;
  try {
    text = readFileSync('/proc/diskstats', 'utf8');
  } catch {
    return 0;
  }
  let ios = 0;
  for (const line of text.split('\n')) {
    // major minor name reads-completed reads-merged sectors-read ms-reading writes-completed …
    const f = line.trim().split(/\s+/);
    if (f.length >= 8) ios += Number(f[3]) + Number(f[7]);
  }
  return ios;
}

/** A task waiting for the disk keeps at least this share of an idle machine's time in iowait. */
const STALL_IOWAIT_SHARE = 0.2;

/**
 * Whether the disks stalled between two samples: tasks waited for them (iowait) and not
 * one read or write completed. On this kind of virtual machine the disk now and then
 * completes nothing for 0.3-1.6 s; a product writing or reading past the page cache
 * waits all that time, one writing into the cache does not, so a run it hit says more
 * about the disk than about the product.
 */
export function diskStalled(a: { cpu: MachineCpu; diskIos: number }, b: { cpu: MachineCpu; diskIos: number }): boolean {
  const total = b.cpu.total - a.cpu.total;
  return total > 0 && b.diskIos === a.diskIos && (b.cpu.ioWait - a.cpu.ioWait) / total >= STALL_IOWAIT_SHARE;
}

/** Seconds of a timeline's steps, up to `until` seconds from its start, for which `counts(i)` holds; each step at its own length. */
export function secondsOfSteps(timeline: LinkTimeline, counts: (step: number) => boolean, until = Infinity): number {
  const ends = timeline.stepEndsSeconds;
  let seconds = 0;
  for (let i = 0; i < ends.length; i++) {
    const begin = ends[i - 1] ?? 0;
    if (begin < until && counts(i)) seconds += Math.min(ends[i]!, until) - begin;
  }
  return seconds;
}

/** Seconds of a timeline's steps, up to `until` seconds from its start, in which the disks stalled. */
export function diskStalledSeconds(timeline: LinkTimeline, until = Infinity): number {
  return secondsOfSteps(timeline, (i) => timeline.diskStalled[i] === true, until);
}

/** The share of the machine's CPU time that was busy between two machineCpu() readings. */
export function busyShare(a: Pick<MachineCpu, 'busy' | 'total'>, b: Pick<MachineCpu, 'busy' | 'total'>): number {
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : NaN;
}

/** Bits a series of per-step rates adds up to over steps [from, to), each step taken at its own length. */
export function bitsOf(timeline: LinkTimeline, rates: number[], from = 0, to = rates.length): number {
  const ends = timeline.stepEndsSeconds;
  let bits = 0;
  for (let i = from; i < to; i++) bits += rates[i]! * ((ends[i] ?? 0) - (ends[i - 1] ?? 0));
  return bits;
}

/** /proc/net/dev: per interface, bytes received and sent. */
export function parseNetDev(text: string): Map<string, { rx: number; tx: number }> {
  const out = new Map<string, { rx: number; tx: number }>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    out.set(line.slice(0, colon).trim(), { rx: fields[0] ?? 0, tx: fields[8] ?? 0 });
  }
  return out;
}

/**
 * How busy the links were while there was work, as shares of their rate: the origin's
 * over the first `seconds` after it starts sending (a slow start shows here), and the
 * nodes' downloads, each from its first bytes to its copy (a swarm that cannot keep its
 * links busy shows here). A step counts as started once a link carries 5 % of its rate,
 * so the time before (a publish, a tracker round) is left out of both: it is in the times.
 */
export function linkUse(timeline: LinkTimeline, nodeRates: Map<string, number>, completed: Map<string, number>, seconds = 5): { originStart: number; nodesDownload: number } {
  const ends = timeline.stepEndsSeconds;
  const begins = (i: number) => ends[i - 1] ?? 0;
  /** The step holding time `t` (seconds from the start). */
  const stepAt = (t: number) => {
    const i = ends.findIndex((end) => end >= t);
    return i < 0 ? ends.length : i;
  };
  /** Mean rate over steps [from, to), each weighted by its length. */
  const meanRate = (rates: number[], from: number, to: number) => {
    const length = (ends[to - 1] ?? 0) - begins(from);
    return length > 0 ? bitsOf(timeline, rates, from, to) / length : NaN;
  };
  const firstBusy = (rates: number[], rate: number) => Math.max(0, rates.findIndex((x) => x > 0.05 * rate));
  const [origin, ...nodes] = timeline.hosts;
  const originRate = nodeRates.get(origin!.host)!;
  const start = firstBusy(origin!.txBitsPerSecond, originRate);
  const originStart = meanRate(origin!.txBitsPerSecond, start, Math.min(origin!.txBitsPerSecond.length, stepAt(begins(start) + seconds))) / originRate;
  const shares: number[] = [];
  for (const h of nodes) {
    const done = completed.get(h.host);
    if (done === undefined) continue;
    const rate = nodeRates.get(h.host)!;
    const first = firstBusy(h.rxBitsPerSecond, rate);
    shares.push(meanRate(h.rxBitsPerSecond, first, Math.max(first + 1, stepAt(done))) / rate);
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN);
  return { originStart, nodesDownload: mean(shares) };
}
