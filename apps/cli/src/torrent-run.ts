import { Engine } from '../../../libs/engine/src/engine.js';
import { announceTiers, announceTorrent, type Announcing } from '../../../libs/engine/src/announce.js';
import type { Torrent } from '../../../libs/engine/src/torrent.js';
import type { Metainfo } from '../../../libs/metainfo/src/metainfo.js';
import type { CommandIo } from './command.js';
import { progressReporter, type ProgressReporter } from './progress.js';

/** What seed and download share: an engine, trackers, and the progress display. */
export interface TorrentRun {
  engine: Engine;
  announcing: Announcing | undefined;
}

export interface EngineFlags {
  host?: string;
  port: number;
  uploadRateLimit: number;
  downloadRateLimit: number;
  unchokeSlots?: number;
}

export async function startEngine(opts: EngineFlags): Promise<Engine> {
  const engine = new Engine({
    host: opts.host,
    port: opts.port,
    uploadRateLimit: opts.uploadRateLimit,
    downloadRateLimit: opts.downloadRateLimit,
    ...(opts.unchokeSlots !== undefined ? { choker: { slots: opts.unchokeSlots } } : {}),
  });
  try {
    await engine.listen();
  } catch (err) {
    await engine.close();
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot listen on port ${opts.port}: ${e.code ?? e.message}`);
  }
  return engine;
}

export function startAnnouncing(engine: Engine, torrent: Torrent, metainfo: Metainfo, io: CommandIo, json: boolean): Announcing | undefined {
  let lastError = '';
  return announceTorrent(torrent, announceTiers(metainfo), {
    peerId: engine.peerId,
    port: engine.port,
    clock: engine.clock,
    random: engine.random,
    onError: (err) => {
      // Trackers retry with backoff; say so once per distinct error, not every retry.
      if (err.message === lastError) return;
      lastError = err.message;
      if (json) io.stdout.write(JSON.stringify({ event: 'tracker-error', message: err.message }) + '\n');
      else io.stderr.write(`\ntracker: ${err.message} (retrying)\n`);
    },
  });
}

/** Reports a torrent's progress until `until` settles; returns the reporter for a final line. */
export function watchTorrent(io: CommandIo, torrent: Torrent, json: boolean, label: string, phase: () => string): { reporter: ProgressReporter; stop: () => void } {
  const reporter = progressReporter(io, { json, label, total: torrent.info.length });
  const draw = () => {
    const s = torrent.stats();
    reporter.update({ done: s.verifiedBytes, rate: s.complete ? s.uploadRate : s.downloadRate, peers: s.peers, phase: phase(), uploaded: s.uploadedBytes });
  };
  const timer = setInterval(draw, 200);
  draw();
  return { reporter, stop: () => clearInterval(timer) };
}

export function torrentSummary(torrent: Torrent): Record<string, unknown> {
  const s = torrent.stats();
  return {
    infoHash: s.infoHash,
    name: s.name,
    bytes: s.length,
    verifiedPieces: s.verifiedPieces,
    pieceCount: s.pieceCount,
    downloadedBytes: s.downloadedBytes,
    uploadedBytes: s.uploadedBytes,
    wastedBytes: s.wastedBytes,
    hashFailures: s.hashFailures,
  };
}
