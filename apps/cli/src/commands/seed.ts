import { resolve } from 'node:path';
import type { Command, CommandIo, ParsedValues } from '../command.js';
import { loadTorrentFile, parsePeers, parsePort, parseRate, parseSlots } from '../torrent-args.js';
import { startAnnouncing, startEngine, torrentSummary, watchTorrent } from '../torrent-run.js';
import { progressReporter } from '../progress.js';
import { InputError } from '../command.js';
import { StorageError } from '../../../../libs/engine/src/storage.js';

const HELP = `Usage: swarmship seed <file.torrent> <path> [--port N] [--host H] [--super-seed] [--peer host:port]... [--json]

Serve a torrent's data to its swarm. <path> is the content the torrent was made from:
the file itself for a single-file torrent, the top directory for a multi-file one.
Every piece is checked against the torrent first, so a seeder never serves bytes that
do not match. Peers find this seeder through the torrent's trackers, or dial it with
its port; --peer dials peers directly. Runs until interrupted (Ctrl-C or SIGTERM).

Options:
  --port N              TCP port for peers. Default 6881; 0 picks a free one.
  --host H              Address to listen on. Default every interface.
  --super-seed          BEP 16 super-seeding: announce pieces one at a time, each to
                        the peer that will spread it, until a full copy exists outside
                        this seeder, then seed normally. Makes an origin send about one
                        copy of the data however many peers download it.
  --peer host:port      Dial this peer as well (repeatable; [v6]:port for IPv6).
  --unchoke-slots N     Peers to upload to at once (default 8, plus 1 optimistic).
  --upload-limit RATE   Cap upload, e.g. 100MB, 64MiB, 800mbit. Default unlimited.
  --trust               Skip the check of the data (only if it was just hashed).
  --json                Progress and events as JSON lines on standard output.
  -h, --help            Show this help.

Example:
  swarmship create build.tar.gz -o build.torrent --tracker http://tracker:6969/announce
  swarmship seed build.torrent build.tar.gz --port 6881 --super-seed
`;

export const seedCommand: Command = {
  name: 'seed',
  help: HELP,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'super-seed': { type: 'boolean' },
    peer: { type: 'string', multiple: true },
    'upload-limit': { type: 'string' },
    'unchoke-slots': { type: 'string' },
    trust: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  positionals: [2, 2],
  async run(values: ParsedValues, [torrentPath, contentPath]: string[], io: CommandIo): Promise<number> {
    const json = values.json === true;
    const port = values.port === undefined ? 6881 : parsePort(values.port);
    const peers = parsePeers(values.peer);
    const uploadRateLimit = parseRate(values['upload-limit'], '--upload-limit');
    const { metainfo } = await loadTorrentFile(torrentPath!);
    const engine = await startEngine({ host: values.host as string | undefined, port, uploadRateLimit, downloadRateLimit: Infinity, unchokeSlots: parseSlots(values['unchoke-slots']) });
    try {
      const checking = progressReporter(io, { json, label: 'checking', total: metainfo.pieceCount });
      const torrent = await engine
        .addTorrent(metainfo, {
          contentPath: resolve(contentPath!),
          mode: 'seed',
          superSeed: values['super-seed'] === true,
          peers,
          trustFiles: values.trust === true,
          onCheckProgress: (done) => checking.update({ done }),
        })
        .catch((err: Error) => {
          throw err instanceof StorageError ? new InputError(err.message) : err;
        });
      if (values.trust !== true) checking.finish();
      if (!torrent.complete) {
        const s = torrent.stats();
        throw new InputError(`${contentPath} does not match the torrent: ${s.pieceCount - s.verifiedPieces} of ${s.pieceCount} pieces fail their hash`);
      }
      if (json) io.stdout.write(JSON.stringify({ event: 'seeding', infoHash: torrent.infoHashHex, port: engine.port }) + '\n');
      else io.stderr.write(`seeding ${metainfo.name} (${torrent.infoHashHex}) on port ${engine.port}; Ctrl-C stops\n`);
      const announcing = startAnnouncing(engine, torrent, metainfo, io, json);
      const watch = watchTorrent(io, torrent, json, 'seeding', () => (torrent.superSeeding ? 'super-seeding' : `sent ${(torrent.stats().uploadedBytes / metainfo.length).toFixed(2)} copies`));
      const failure = new Promise<Error>((resolve) => torrent.once('error', resolve));
      const outcome = await Promise.race([io.interrupted.then(() => undefined), failure]);
      watch.stop();
      watch.reporter.finish(torrentSummary(torrent));
      await announcing?.stop();
      if (outcome) throw outcome;
      return 0;
    } finally {
      await engine.close();
    }
  },
};
