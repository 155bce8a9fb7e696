/**
 * A fleet of hosts made of network namespaces: one "switch" namespace holding a bridge,
 * and one namespace per host (the origin and N nodes), each joined to the bridge by a
 * veth pair. Every host's link is shaped in both directions with `tc`: egress of the
 * host's end is its upload, egress of the switch's end its download. Optional netem
 * delay and loss sit above the rate limit on both ends, so one link adds its delay in
 * each direction and a host-to-host round trip crosses two links (4 × the delay).
 * Where the kernel has no netem, loss alone can still be had from nftables: a rule on
 * each end's egress drops packets at random (see dropAtRandom).
 *
 * Addresses are in 10.77.0.0/16 and exist only inside these namespaces. Names carry a
 * random run id, so runs side by side never meet. Everything made here is recorded and
 * removed by destroy(), and, failing that, by an 'exit' handler.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface HostSpec {
  role: 'origin' | 'node';
  /** 0 for the origin, 1…N for nodes. */
  index: number;
  /** Upload and download rate of this host's link, bits per second. */
  rateBitsPerSecond: number;
}

export interface Host extends HostSpec {
  /** Short name used in reports: origin, n01, n02, … */
  name: string;
  /** The network namespace. */
  ns: string;
  address: string;
  /** The host's end of its veth pair (inside `ns`). */
  dev: string;
  /** The switch's end (inside the switch namespace). */
  switchDev: string;
}

export interface LinkOptions {
  nodes: number;
  rateBitsPerSecond: number;
  /** One-way delay each link adds in each direction, ms. */
  latencyMs?: number;
  /** Loss each link adds in each direction, percent. */
  lossPercent?: number;
  /** Node 1 runs at this fraction of the others' rate (e.g. 0.1). */
  slowNodeFactor?: number;
  /** What makes the loss: netem where the kernel has it, else nftables (the default); or nftables always. */
  lossBy?: 'netem-if-available' | 'nftables';
}

export interface LinkCounters {
  /** Bytes the host sent on its link (its upload), frames included. */
  tx: number;
  /** Bytes the host received on its link. */
  rx: number;
  /** Packets the host sent and received on its link. */
  txPackets: number;
  rxPackets: number;
}

export const SUBNET = '10.77';

const live = new Set<string>();
let exitGuard = false;

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000, input });
  return { ok: r.status === 0, out: r.stdout ?? '', err: r.error?.message ?? (r.stderr ?? '').trim() };
}

function must(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.err}`);
  return r.out;
}

function deleteNamespace(ns: string): void {
  run('ip', ['netns', 'delete', ns]);
  live.delete(ns);
}

/** Deletes every namespace this process made and has not deleted yet (synchronous). */
export function deleteAllNamespaces(): void {
  for (const ns of [...live]) deleteNamespace(ns);
}

function installExitGuard(): void {
  if (exitGuard) return;
  exitGuard = true;
  process.on('exit', deleteAllNamespaces);
}

/** Why namespaces cannot be made here, or undefined when they can (tried for real). */
export function netnsUnavailableReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
  for (const tool of ['ip', 'tc']) {
    const r = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (r.error) return `'${tool}' (iproute2) is not installed`;
  }
  const probe = `ssfleet-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const added = run('ip', ['netns', 'add', probe]);
  if (!added.ok) return `'ip netns add' was refused: ${added.err}`;
  run('ip', ['netns', 'delete', probe]);
  return undefined;
}

/** The namespaces of every fleet run on this machine, finished or not (names start with the prefix). */
export function listFleetNamespaces(prefix = 'ssfleet-'): string[] {
  return run('ip', ['netns', 'list'])
    .out.split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** Why tc's netem qdisc (delay, loss) cannot be used here, or undefined when it can (tried in a scratch namespace). */
export function netemUnavailableReason(): string | undefined {
  const probe = `ssfleet-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const added = run('ip', ['netns', 'add', probe]);
  if (!added.ok) return `'ip netns add' was refused: ${added.err}`;
  try {
    const r = run('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    return r.ok ? undefined : `this kernel refuses it (${r.err.split('\n')[0]})`;
  } finally {
    run('ip', ['netns', 'delete', probe]);
  }
}

/**
 * Why nftables cannot drop packets on a link's egress here (the `nft` command from
 * Debian's nftables, and the kernel's netdev egress hook), or undefined when it can
 * (tried on a veth pair in a scratch namespace).
 */
export function nftablesLossUnavailableReason(): string | undefined {
  if (spawnSync('nft', ['--version'], { encoding: 'utf8' }).error) return "'nft' is not installed (Debian package nftables)";
  const probe = `ssfleet-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const added = run('ip', ['netns', 'add', probe]);
  if (!added.ok) return `'ip netns add' was refused: ${added.err}`;
  try {
    must('ip', ['-n', probe, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']);
    const r = run('ip', ['netns', 'exec', probe, 'nft', '-f', '-'], dropRules('pa', 1));
    return r.ok ? undefined : `this kernel refuses an nftables egress rule (${r.err.split('\n')[0]})`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    run('ip', ['netns', 'delete', probe]);
  }
}

/** Resolution of the random drop: loss is given in steps of 0.001 %. */
const DROP_SCALE = 100_000;

/** An nftables table dropping `lossPercent` % of the packets leaving `dev`, at random. */
function dropRules(dev: string, lossPercent: number): string {
  const below = Math.round((lossPercent / 100) * DROP_SCALE);
  return [
    'table netdev fleet_loss {',
    `  chain egress_${dev} {`,
    `    type filter hook egress device "${dev}" priority 0; policy accept;`,
    `    numgen random mod ${DROP_SCALE} < ${below} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Parses a tc-style rate: 200mbit, 1gbit, 500kbit, 25MBps (bytes), or plain bits per second. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?$/i.exec(text.trim());
  if (!m) throw new Error(`rate ${JSON.stringify(text)}: expected e.g. 200mbit, 1gbit, 25mbps (bytes/s)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'bit').toLowerCase();
  const factor: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };
  const bits = n * factor[unit]!;
  if (!(bits >= 8000)) throw new Error(`rate ${text}: too low (at least 8kbit)`);
  return Math.round(bits);
}

export function formatRate(bits: number): string {
  if (bits >= 1e9 && bits % 1e9 === 0) return `${bits / 1e9}gbit`;
  if (bits >= 1e6) return `${Math.round(bits / 1e5) / 10}mbit`;
  return `${Math.round(bits / 1e3)}kbit`;
}

export class FleetNetwork {
  readonly runId: string;
  readonly switchNs: string;
  readonly hosts: Host[] = [];
  private readonly bridge = 'br0';
  /** What makes the asked-for delay and loss, set by create(). */
  lossBy: 'netem' | 'nftables' | undefined;

  constructor(readonly options: LinkOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 200) throw new Error(`nodes ${options.nodes}: expected 1…200`);
    this.runId = randomBytes(3).toString('hex');
    this.switchNs = `ssfleet-${this.runId}-sw`;
  }

  get origin(): Host {
    return this.hosts[0]!;
  }

  get nodes(): Host[] {
    return this.hosts.slice(1);
  }

  /** Makes the switch, the hosts, their links and shaping. On failure, removes what it made and throws. */
  create(): void {
    installExitGuard();
    this.lossBy = this.chooseImpairment();
    try {
      this.addNamespace(this.switchNs);
      must('ip', ['-n', this.switchNs, 'link', 'add', this.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      must('ip', ['-n', this.switchNs, 'link', 'set', this.bridge, 'up']);
      must('ip', ['-n', this.switchNs, 'link', 'set', 'lo', 'up']);
      const { nodes, rateBitsPerSecond, slowNodeFactor } = this.options;
      for (let i = 0; i <= nodes; i++) {
        const role = i === 0 ? 'origin' : 'node';
        const rate = i === 1 && slowNodeFactor !== undefined ? Math.round(rateBitsPerSecond * slowNodeFactor) : rateBitsPerSecond;
        this.addHost({ role, index: i, rateBitsPerSecond: rate });
      }
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** What will make the asked-for delay and loss (netem where the kernel has it), or why nothing can. */
  private chooseImpairment(): 'netem' | 'nftables' | undefined {
    const { latencyMs = 0, lossPercent = 0, lossBy } = this.options;
    if (latencyMs === 0 && lossPercent === 0) return undefined;
    const noNetem = latencyMs === 0 && lossBy === 'nftables' ? undefined : netemUnavailableReason();
    if (latencyMs > 0) {
      if (noNetem) throw new Error(`--latency needs tc's netem qdisc: ${noNetem}`);
      return 'netem';
    }
    if (lossBy !== 'nftables' && !noNetem) return 'netem';
    const noNft = nftablesLossUnavailableReason();
    if (noNft) throw new Error(`--loss needs tc's netem qdisc (${noNetem ?? 'not asked for'}) or nftables (${noNft})`);
    return 'nftables';
  }

  private addNamespace(ns: string): void {
    must('ip', ['netns', 'add', ns]);
    live.add(ns);
    // No IPv6: its router and neighbour solicitations would only add noise to the byte counts.
    run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  private addHost(spec: HostSpec): void {
    const name = spec.role === 'origin' ? 'origin' : `n${String(spec.index).padStart(2, '0')}`;
    const ns = `ssfleet-${this.runId}-${name}`;
    // Interface names are at most 15 characters and must not clash while the pair is made.
    const dev = `f${this.runId}h${spec.index}`;
    const switchDev = `f${this.runId}s${spec.index}`;
    // .1 the origin, .10 + i the nodes: 10.77.0.1, 10.77.0.11, …
    const address = `${SUBNET}.0.${spec.index === 0 ? 1 : 10 + spec.index}`;
    this.addNamespace(ns);
    const host: Host = { ...spec, name, ns, address, dev, switchDev };
    this.hosts.push(host);
    must('ip', ['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', switchDev, 'netns', this.switchNs]);
    must('ip', ['-n', this.switchNs, 'link', 'set', switchDev, 'master', this.bridge]);
    must('ip', ['-n', this.switchNs, 'link', 'set', switchDev, 'up']);
    must('ip', ['-n', ns, 'addr', 'add', `${address}/16`, 'dev', dev]);
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    this.shape(ns, dev, spec.rateBitsPerSecond);
    this.shape(this.switchNs, switchDev, spec.rateBitsPerSecond);
  }

  /**
   * tbf at `rate` on the egress of `dev`; with latency or loss, netem at the root and the
   * tbf as its child. The bucket holds 2 ms at the rate and at least 128 KiB, so a
   * segmentation-offloaded packet passes whole, as it leaves a real host's NIC: tbf
   * counts a 64 KiB offload burst with every segment's headers (about 68 KB) and splits
   * any packet bigger than its bucket into wire-sized ones, which multiplied the kernel's
   * per-packet work on every hop of the emulated network (a bucket of 64 KiB made
   * libtorrent take 1.5 times the anchor's time at 16 nodes, all of it CPU).
   */
  private shape(ns: string, dev: string, rate: number): void {
    const burst = Math.max(128 * 1024, Math.round((rate / 8) * 0.002));
    const tbf = ['tbf', 'rate', `${rate}bit`, 'burst', String(burst), 'latency', '50ms'];
    const { latencyMs = 0, lossPercent = 0 } = this.options;
    if (this.lossBy === 'nftables') {
      must('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', ...tbf]);
      this.dropAtRandom(ns, dev, lossPercent);
    } else if (latencyMs > 0 || lossPercent > 0) {
      const netem = ['netem', 'limit', '100000'];
      if (latencyMs > 0) netem.push('delay', `${latencyMs}ms`);
      if (lossPercent > 0) netem.push('loss', `${lossPercent}%`);
      must('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', ...netem]);
      must('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', ...tbf]);
    } else {
      must('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', ...tbf]);
    }
  }

  /**
   * Drops `lossPercent` % of the packets leaving `dev`, each on its own, as a lossy wire
   * would. The rule sees packets before they are cut to the MTU (TCP hands the link
   * up to 64 KiB at once), so segmentation offload is turned off on the device: one drop
   * would otherwise take out a burst of 40-odd segments, far harsher than the loss asked.
   * That costs CPU per packet, so lossy runs compare scenarios with each other, not with
   * loss-free ones.
   */
  private dropAtRandom(ns: string, dev: string, lossPercent: number): void {
    must('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'gso_max_segs', '1']);
    must('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], dropRules(dev, lossPercent));
  }

  /** Packets the nftables loss rules have dropped so far, all links and directions together. */
  droppedPackets(): number {
    if (this.lossBy !== 'nftables') return 0;
    let dropped = 0;
    for (const ns of [this.switchNs, ...this.hosts.map((h) => h.ns)]) {
      const out = must('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'netdev', 'fleet_loss']);
      for (const m of out.matchAll(/counter packets (\d+)/g)) dropped += Number(m[1]);
    }
    return dropped;
  }

  /**
   * Takes a host's link down, or brings it back up: its end of the veth pair, as if its
   * cable were pulled. Connections stay open and hear nothing until the link is back.
   */
  setLink(host: Host, up: boolean): void {
    must('ip', ['-n', host.ns, 'link', 'set', 'dev', host.dev, up ? 'up' : 'down']);
  }

  /** Bytes each host has sent and received on its link so far, from the kernel's counters. */
  counters(): Map<string, LinkCounters> {
    const out = new Map<string, LinkCounters>();
    for (const h of this.hosts) {
      const json = must('ip', ['-n', h.ns, '-s', '-j', 'link', 'show', 'dev', h.dev]);
      const [link] = JSON.parse(json) as { stats64: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } } }[];
      if (!link) throw new Error(`no counters for ${h.dev} in ${h.ns}`);
      out.set(h.name, { tx: link.stats64.tx.bytes, rx: link.stats64.rx.bytes, txPackets: link.stats64.tx.packets, rxPackets: link.stats64.rx.packets });
    }
    return out;
  }

  /** `ip netns exec` arguments that run `command args…` on `host`; it execs, so the PID is the command's. */
  execArgs(host: Pick<Host, 'ns'>, command: string, args: string[]): string[] {
    return ['netns', 'exec', host.ns, command, ...args];
  }

  /** Removes every namespace (and with them the veth pairs, the bridge and the qdiscs). Processes must be stopped first. */
  destroy(): void {
    for (const h of this.hosts) deleteNamespace(h.ns);
    deleteNamespace(this.switchNs);
    this.hosts.length = 0;
  }
}
