/**
 * The fleet benchmark's report: a plain-text table for the terminal, the same as
 * Markdown, and an SVG of the completion curves (nodes holding a copy over time, one
 * line per scenario), drawn here without a plotting library.
 */
import { median, table } from '../lib/stats.js';
import type { FleetResult, ScenarioResult } from './harness.js';
import { secondsOfSteps } from './link-timeline.js';

const MIB = 1024 * 1024;

const SWARMSHIP_TARGET = { other: 'target ≤ 1.15 × bound, < libtorrent' };

/** Anchors measured on this kind of machine at 200 Mbit/s, 256 MiB, 1 MiB pieces. */
const ANCHORS: Record<string, Partial<Record<number, string>> & { other?: string }> = {
  http: { 8: 'nginx→curl 89.8 s (1.05 ×)', 16: 'nginx→curl 179.7 s (1.05 ×)' },
  libtorrent: { 8: '19.8–22.4 s (1.85–2.08 ×)', 16: '25.3–27.0 s (2.36–2.51 ×)' },
  'libtorrent-superseed': { 8: '23.2–23.7 s (2.16–2.20 ×)', 16: '30.9–31.3 s (2.9 ×)' },
  swarmship: SWARMSHIP_TARGET,
  'swarmship-warm': SWARMSHIP_TARGET,
  'swarmship-engine': SWARMSHIP_TARGET,
};

export function anchorFor(id: string, result: FleetResult): string {
  const a = ANCHORS[id];
  if (!a) return '';
  if (a.other) return a.other;
  const o = result.options;
  const comparable = o.rateBitsPerSecond === 200e6 && o.size === 256 * MIB && o.pieceLength === MIB && !o.slowNodeFactor && !o.latencyMs && !o.lossPercent;
  const at = a[o.nodes];
  if (comparable && at) return at;
  return `at 200 Mbit/s, 256 MiB: N=8 ${a[8] ?? '?'}`;
}

/** A figure, or a dash where there is none (a failed scenario, nothing to divide by). */
const shown = (x: number | null | undefined, format: (x: number) => string) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : format(x));
const f1 = (x: number | null | undefined) => shown(x, (v) => v.toFixed(1));
const f2 = (x: number | null | undefined) => shown(x, (v) => v.toFixed(2));
const pct = (x: number | null | undefined) => shown(x, (v) => `${(v * 100).toFixed(0)} %`);

function nodeCpu(r: ScenarioResult): string {
  const nodes = r.hosts.filter((h) => h.role === 'node');
  const cpus = nodes.map((h) => h.cpuSeconds);
  const sys = nodes.reduce((s, h) => s + h.sysSeconds, 0) / Math.max(1e-9, cpus.reduce((s, c) => s + c, 0));
  return cpus.length ? `${f1(median(cpus))} / ${f1(Math.max(...cpus))} (${(sys * 100).toFixed(0)} % sys)` : '—';
}

function nodeRss(r: ScenarioResult): string {
  const nodes = r.hosts.filter((h) => h.role === 'node');
  return nodes.length ? `${Math.max(...nodes.map((h) => h.peakRssAnonMiB)).toFixed(0)} / ${Math.max(...nodes.map((h) => h.vmHwmMiB)).toFixed(0)}` : '—';
}

/** Seconds of the scenario when the whole machine was at least 95 % busy. */
function saturatedSeconds(r: ScenarioResult): number {
  if (!r.timeline?.stepEndsSeconds) return NaN;
  return secondsOfSteps(r.timeline, (i) => r.timeline.cpuBusy[i]! >= 0.95);
}

function origin(r: ScenarioResult) {
  return r.hosts.find((h) => h.role === 'origin');
}

const HEADER = [
  'scenario',
  'last copy s',
  '× bound',
  'bound s',
  'p50 s',
  'p90 s',
  'done s',
  'origin sent / S',
  'links / N·S',
  'KiB a packet',
  'origin link, first 5 s',
  'node downlink',
  'node CPU s med/max (sys share)',
  'node peak MiB anon/HWM',
  'origin CPU s',
  'origin MiB anon',
  'host CPU %',
  'CPU ≥ 95 % s',
  'disk stalled s',
  'copies',
  'anchor',
];

function rows(result: FleetResult): string[][] {
  const out: string[][] = [];
  for (const r of result.scenarios) {
    const o = origin(r);
    out.push([
      r.label + (r.ok ? '' : ' (FAILED)'),
      f1(r.lastCopySeconds),
      f2(r.ratioToBound),
      f1(r.boundSeconds),
      f1(r.completion?.p50Seconds),
      f1(r.completion?.p90Seconds),
      f1(r.finishedSeconds ?? r.lastCopySeconds),
      f2(r.originSentPerArtifact),
      f2(r.linkBytesPerNTimesSize),
      f1(r.linkBytes / r.linkPackets / 1024),
      pct(r.linkUse?.originStart),
      pct(r.linkUse?.nodesDownload),
      nodeCpu(r),
      nodeRss(r),
      f1(o?.cpuSeconds),
      o ? o.peakRssAnonMiB.toFixed(0) : '—',
      r.hostCpuBusyPercent.toFixed(0),
      f1(saturatedSeconds(r)),
      f1(r.diskStalledSeconds),
      r.allVerified ? 'identical' : 'DIFFER',
      anchorFor(r.id, result),
    ]);
    if (r.fastNodes) {
      const slow = r.hosts.find((h) => h.slow);
      out.push([
        `  ↳ without slow n01 (n01: ${f1(slow?.completedSeconds)} s)`,
        f1(r.fastNodes.lastSeconds),
        f2(r.fastNodes.lastSeconds / (r.fastNodesBoundSeconds ?? NaN)),
        f1(r.fastNodesBoundSeconds),
        f1(r.fastNodes.p50Seconds),
        f1(r.fastNodes.p90Seconds),
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
    }
  }
  return out;
}

/** Who beat whom in this run: the swarm scenarios' time to the last copy against each other and against fan-out. */
export function comparisons(result: FleetResult): string[] {
  const by = new Map(result.scenarios.filter((s) => s.ok).map((s) => [s.id, s]));
  const ours = by.get('swarmship') ?? by.get('swarmship-engine');
  const warm = by.get('swarmship-warm');
  const lt = by.get('libtorrent');
  const pairs = [
    [ours, lt],
    [ours, by.get('libtorrent-superseed')],
    [ours, by.get('http')],
    [warm, lt],
    [warm, by.get('http')],
    [lt, by.get('http')],
  ];
  return pairs
    .filter((p): p is [ScenarioResult, ScenarioResult] => p[0] !== undefined && p[1] !== undefined)
    .map(([a, b]) => `last copy, ${a.label} against ${b.label}: ${f1(a.lastCopySeconds)} s vs ${f1(b.lastCopySeconds)} s, speed-up ${(b.lastCopySeconds / a.lastCopySeconds).toFixed(2)} ×`);
}

export function textReport(result: FleetResult): string {
  return table(HEADER, rows(result), [0, 9, 10, 14, 15]);
}

/** How the loss was made when nftables made it, and what it came to in each scenario. */
function lossNote(result: FleetResult): string {
  const measured = result.scenarios.filter((r) => r.loss);
  if (measured.length === 0) return '';
  const applied = measured.map((r) => `${r.id} ${((100 * r.loss!.dropped) / Math.max(1, r.loss!.dropped + r.loss!.packets)).toFixed(2)} %`).join(', ');
  return ` (no netem here: nftables drops packets at random on each link end's egress, segmentation offload off; no added delay; applied: ${applied})`;
}

export function legend(result: FleetResult): string {
  const o = result.options;
  return [
    `N = ${o.nodes} nodes + 1 origin, S = ${o.size / MIB} MiB in ${o.pieceLength / MIB} MiB pieces, U = ${o.rateBitsPerSecond / 1e6} Mbit/s up and down per host` +
      (o.latencyMs ? `, +${o.latencyMs} ms per link each way` : '') +
      (o.lossPercent ? `, ${o.lossPercent} % loss per link each way${lossNote(result)}` : '') +
      (o.slowNodeFactor !== undefined ? `, n01 at ${o.slowNodeFactor} × U` : '') +
      '.',
    'Times from the scenario\'s start (first download / the publish command) to each node\'s verified copy; "done" is publish --wait returning where there is one.',
    'Bounds: fan-out N·S/U; swarm S/U + P/U (a piece must still be relayed once after the origin sends its last). Bytes are the kernel\'s counts on each host\'s link (frames, headers, retransmissions).',
    'CPU: utime+stime of every process on the host, sampled every 100 ms, from the start to the end of the scenario; RSS: peak anonymous (sampled) / VmHWM (includes mapped files).',
    '"host CPU %": the whole machine busy during the scenario, shared with whatever else runs on it; "CPU ≥ 95 % s": the seconds of it (in 250 ms steps) when the machine was that busy, i.e. when CPU, not the links, set the pace; "disk stalled s": the seconds up to the last copy when the disk every host writes to completed nothing while tasks waited for it (a run with stalls is slower for reasons outside the products, more so for those that write past the page cache).',
    'Links, sampled every 250 ms: "origin link, first 5 s" is the origin\'s sending rate over its first 5 s of sending; "node downlink" each node\'s receiving rate from its first bytes to its copy, averaged over the nodes; both as shares of the link rate (frames as the veth counts them, where a segmentation-offload burst\'s per-segment headers are not counted, so about 96 % is full).',
  ].join('\n');
}

export function markdownReport(result: FleetResult, meta: { when: string; machine: string; load: string }): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const header = `| ${HEADER.map(esc).join(' | ')} |`;
  const sep = `|${HEADER.map((_, i) => (i === 0 || i >= HEADER.length - 2 ? ' --- ' : ' ---: ')).join('|')}|`;
  const body = rows(result).map((r) => `| ${r.map(esc).join(' | ')} |`);
  const notes = result.scenarios.map((s) => `- **${s.label}**: ${s.notes}${s.error ? ` — failed: ${s.error.split('\n')[0]}` : ''}`);
  return [
    `# Fleet benchmark, ${meta.when}`,
    '',
    meta.machine,
    '',
    `Load average: ${meta.load}`,
    '',
    header,
    sep,
    ...body,
    '',
    ...comparisons(result).map((l) => `- ${l}`),
    '',
    ...legend(result)
      .split('\n')
      .map((l) => `${l}  `),
    '',
    ...notes,
    '',
  ].join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** Nodes holding a copy against seconds since start, one step line per scenario. */
export function completionSvg(result: FleetResult, title: string): string {
  const W = 760;
  const H = 420;
  const m = { left: 56, right: 20, top: 40, bottom: 90 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const n = result.options.nodes;
  const all = result.scenarios.flatMap((s) => s.curve);
  const tMax = niceCeil(Math.max(1, ...all, ...result.scenarios.filter((s) => s.kind === 'swarm').map((s) => s.boundSeconds)));
  const x = (t: number) => m.left + (t / tMax) * pw;
  const y = (k: number) => m.top + ph - (k / n) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${xml(title)}</text>`);
  const step = niceStep(tMax);
  for (let t = 0; t <= tMax + 1e-9; t += step) {
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${m.top}" x2="${x(t).toFixed(1)}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  const yStep = Math.max(1, Math.ceil(n / 8));
  for (let k = 0; k <= n; k += yStep) {
    out.push(`<line x1="${m.left}" y1="${y(k).toFixed(1)}" x2="${m.left + pw}" y2="${y(k).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${(y(k) + 4).toFixed(1)}" text-anchor="end">${k}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 34}" text-anchor="middle">seconds since start</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">nodes holding a verified copy</text>`);
  result.scenarios.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts: string[] = [`${x(0).toFixed(1)},${y(0).toFixed(1)}`];
    s.curve.forEach((t, k) => {
      pts.push(`${x(t).toFixed(1)},${y(k).toFixed(1)}`, `${x(t).toFixed(1)},${y(k + 1).toFixed(1)}`);
    });
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    if (s.kind === 'swarm' || s.boundSeconds <= tMax) {
      out.push(`<line x1="${x(s.boundSeconds).toFixed(1)}" y1="${m.top}" x2="${x(s.boundSeconds).toFixed(1)}" y2="${m.top + ph}" stroke="${color}" stroke-dasharray="4 4" stroke-width="1"/>`);
    }
    const ly = H - 36 + Math.floor(i / 2) * 16;
    const lx = m.left + (i % 2) * (pw / 2);
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 26}" y="${ly}">${xml(`${s.label}: ${f1(s.lastCopySeconds)} s (${f2(s.ratioToBound)} × bound)`)}</text>`);
  });
  out.push(`<text x="${W - m.right}" y="${H - 6}" text-anchor="end" fill="#666" font-size="10">dashed: each scenario's physical bound</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceStep(max: number): number {
  const raw = max / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const k of [1, 2, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}

function niceCeil(v: number): number {
  const s = niceStep(v);
  return Math.ceil(v / s) * s;
}

function fmtTick(t: number): string {
  return Number.isInteger(t) ? String(t) : t.toFixed(1);
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
