import { access, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { resolve } from 'node:path';
import type { Command, CommandIo, ParsedValues } from '../command.js';
import { EXIT_FAILURE, InputError } from '../command.js';
import { loadTorrentFile, parsePeers, parsePort, parseRate, parseSlots } from '../torrent-args.js';
import { startAnnouncing, startEngine, torrentSummary, watchTorrent } from '../torrent-run.js';
import { progressReporter } from '../progress.js';
import { StorageError } from '../../../../libs/engine/src/storage.js';

const HELP = `Usage: swarmship download <file.torrent> --dir <dir> [--port N] [--seed-after] [--peer host:port]... [--json]

Download a torrent into <dir>: a single-file torrent becomes <dir>/<name>, a
multi-file one <dir>/<name>/…. Peers come from the torrent's trackers and from --peer.
Every piece is verified (SHA-1) before it is written; a piece that fails is fetched
again and a peer that keeps sending bad data is banned. If <dir> already holds part of
the data (an interrupted download), it is checked and only what is missing is fetched.

Exits 0 only when every piece is verified and flushed to disk; 1 if interrupted or the
download failed (run it again to resume); 2 for a bad torrent or destination.

Options:
  --dir DIR             Where to put the data (created if missing). Required.
  --port N              TCP port for incoming peers. Default 0 (a free one).
  --host H              Address to listen on. Default every interface.
  --seed-after          Keep seeding once complete, until interrupted.
  --peer host:port      Dial this peer (repeatable; [v6]:port for IPv6).
  --download-limit RATE Cap download, e.g. 100MB, 64MiB, 800mbit. Default unlimited.
  --unchoke-slots N     Peers to upload to at once (default 8, plus 1 optimistic).
  --upload-limit RATE   Cap upload. Default unlimited.
  --json                Progress and events as JSON lines on standard output.
  -h, --help            Show this help.

Example:
  swarmship download build.torrent --dir /srv/releases --peer 10.0.0.5:6881
`;

export const downloadCommand: Command = {
  name: 'download',
  help: HELP,
  options: {
    dir: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'seed-after': { type: 'boolean' },
    peer: { type: 'string', multiple: true },
    'download-limit': { type: 'string' },
    'upload-limit': { type: 'string' },
    'unchoke-slots': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  async run(values: ParsedValues, [torrentPath]: string[], io: CommandIo): Promise<number> {
    const json = values.json === true;
    if (typeof values.dir !== 'string') throw new InputError("--dir is required. See 'swarmship download --help'.");
    const dir = resolve(values.dir);
    const port = parsePort(values.port);
    const peers = parsePeers(values.peer);
    const uploadRateLimit = parseRate(values['upload-limit'], '--upload-limit');
    const downloadRateLimit = parseRate(values['download-limit'], '--download-limit');
    const { metainfo } = await loadTorrentFile(torrentPath!);
    await ensureWritableDir(dir);

    const engine = await startEngine({ host: values.host as string | undefined, port, uploadRateLimit, downloadRateLimit, unchokeSlots: parseSlots(values['unchoke-slots']) });
    try {
      const checking = progressReporter(io, { json, label: 'checking', total: metainfo.pieceCount });
      const torrent = await engine
        .addTorrent(metainfo, { dir, mode: 'download', peers, onCheckProgress: (done) => checking.update({ done }) })
        .catch((err: Error) => {
          throw err instanceof StorageError ? new InputError(err.message) : err;
        });
      const announcing = startAnnouncing(engine, torrent, metainfo, io, json);
      const completed = new Promise<void>((resolve) => (torrent.complete ? resolve() : torrent.once('complete', resolve)));
      const failure = new Promise<Error>((resolve) => torrent.once('error', resolve));
      const watch = watchTorrent(io, torrent, json, 'download', () => 'downloading');
      const outcome = await Promise.race([completed.then(() => 'complete' as const), io.interrupted.then(() => 'interrupted' as const), failure]);
      watch.stop();
      watch.reporter.finish({ ...torrentSummary(torrent), outcome: outcome instanceof Error ? 'failed' : outcome });
      if (outcome instanceof Error) {
        await announcing?.stop();
        throw outcome;
      }
      if (outcome === 'interrupted') {
        const s = torrent.stats();
        io.stderr.write(`interrupted: ${s.verifiedPieces} of ${s.pieceCount} pieces verified and kept; run the same command to resume\n`);
        await announcing?.stop();
        return EXIT_FAILURE;
      }
      if (!json) io.stderr.write(`complete: ${resolve(dir, metainfo.name)}\n`);
      if (values['seed-after'] === true) {
        const seeding = watchTorrent(io, torrent, json, 'seeding', () => `sent ${(torrent.stats().uploadedBytes / metainfo.length).toFixed(2)} copies`);
        await Promise.race([io.interrupted, failure]);
        seeding.stop();
        seeding.reporter.finish(torrentSummary(torrent));
      }
      await announcing?.stop();
      return 0;
    } finally {
      await engine.close();
    }
  },
};

/** Fails before any download starts when the destination cannot be written. */
async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new InputError(`cannot write to ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
