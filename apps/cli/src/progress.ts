import type { CommandIo } from './command.js';

export interface ProgressFields {
  /** Work done so far, in the unit of `total` (bytes, usually). */
  done: number;
  /** Bytes per second, when the caller measures it itself. */
  rate?: number;
  peers?: number;
  /** A word for what is happening: hashing, downloading, seeding… */
  phase?: string;
  /** Bytes sent to peers so far (torrents only). */
  uploaded?: number;
}

export interface ProgressReporter {
  update(fields: ProgressFields): void;
  /** Ends the bar (newline on a terminal) and, with --json, prints a final event. */
  finish(summary?: Record<string, unknown>): void;
}

const BAR_WIDTH = 24;
const TTY_REDRAW_MS = 100;
const JSON_EVERY_MS = 1000;

/**
 * A progress bar on a terminal, JSON lines with --json, and nothing noisy when the
 * output is a pipe (one line every few seconds, so CI logs stay readable).
 */
export function progressReporter(io: CommandIo, opts: { json: boolean; label: string; total: number; now?: () => number }): ProgressReporter {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const tty = !opts.json && io.stderr.isTTY === true;
  const every = opts.json ? JSON_EVERY_MS : tty ? TTY_REDRAW_MS : 5000;
  let lastDraw = -Infinity;
  let last: ProgressFields = { done: 0 };
  const rateWindow: { t: number; done: number }[] = [];

  function measuredRate(t: number, done: number): number {
    rateWindow.push({ t, done });
    while (rateWindow.length > 2 && t - rateWindow[0]!.t > 5000) rateWindow.shift();
    const first = rateWindow[0]!;
    const dt = (t - first.t) / 1000;
    return dt > 0 ? (done - first.done) / dt : 0;
  }

  function draw(fields: ProgressFields, final: boolean): void {
    const t = now();
    const rate = fields.rate ?? measuredRate(t, fields.done);
    const fraction = opts.total > 0 ? Math.min(1, fields.done / opts.total) : 1;
    const eta = rate > 0 ? (opts.total - fields.done) / rate : Infinity;
    if (opts.json) {
      io.stdout.write(JSON.stringify({
        event: 'progress', label: opts.label, phase: fields.phase, done: fields.done, total: opts.total,
        percent: Math.round(fraction * 1000) / 10, rateBytesPerSecond: Math.round(rate), peers: fields.peers, uploadedBytes: fields.uploaded,
        etaSeconds: Number.isFinite(eta) ? Math.round(eta) : null, elapsedSeconds: Math.round((t - started) / 100) / 10,
      }) + '\n');
      return;
    }
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
    const parts = [
      `${opts.label} ${bar} ${(fraction * 100).toFixed(1).padStart(5)}%`,
      `${formatBytes(fields.done)}/${formatBytes(opts.total)}`,
      `${formatBytes(rate)}/s`,
    ];
    if (fields.peers !== undefined) parts.push(`${fields.peers} peer${fields.peers === 1 ? '' : 's'}`);
    parts.push(final ? `in ${formatDuration((t - started) / 1000)}` : `ETA ${formatDuration(eta)}`);
    if (fields.phase) parts.push(fields.phase);
    const line = parts.join('  ');
    if (tty) {
      const width = io.stderr.columns ?? 120;
      io.stderr.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length))}\x1b[K${final ? '\n' : ''}`);
    } else {
      io.stderr.write(`${line}\n`);
    }
  }

  return {
    update(fields) {
      last = fields;
      const t = now();
      if (t - lastDraw < every) {
        if (!opts.json) measuredRate(t, fields.done);
        return;
      }
      lastDraw = t;
      draw(fields, false);
    },
    finish(summary) {
      if (opts.json) {
        io.stdout.write(JSON.stringify({ event: 'done', label: opts.label, elapsedSeconds: Math.round((now() - started) / 100) / 10, ...summary }) + '\n');
      } else {
        draw(last, true);
      }
    },
  };
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
