import { access, constants, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../../../../libs/durable-files/src/atomic.js';
import { createTorrent, CreateTorrentError, isValidPieceLength, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, toMagnet, type Metainfo } from '../../../../libs/metainfo/src/index.js';
import { parseByteSize } from '../byte-size.js';
import { InputError, UsageError, type Command, type CommandIo, type ParsedValues } from '../command.js';
import { formatBytes, progressReporter, type ProgressReporter } from '../progress.js';

const HELP = `Usage: swarmship create <path> -o <file.torrent> [--piece-length SIZE] [--tracker URL]... [--private] [--web-seed URL]... [--comment TEXT] [--json]

Make a .torrent of a file or a directory, hashing on every core. The info hash is the
one mktorrent and libtorrent compute for the same files and piece length: files in
byte order of their paths, symlinks followed, empty directories left out. The torrent
is written whole or not at all (a temporary file renamed into place). Prints the info
hash, the piece count and a magnet link.

Options:
  -o, --output FILE     Where to write the .torrent (required).
  --piece-length SIZE   Bytes per piece: a power of two from 16K to 512M, written as
                        bytes or with a binary suffix (262144, 256K, 1MiB, 4M).
                        Default: the smallest power of two giving at most 2000 pieces,
                        within 256K..16M (1 GiB gets 1M pieces, 10 GiB gets 8M).
  --tracker URL         Announce URL (repeatable). The first is the primary; each
                        further one is a backup in its own tier, tried in order.
  --private             Set the private flag (BEP 27): peers come from the trackers
                        only, no DHT or peer exchange. Use it for fleet releases.
  --web-seed URL        HTTP(S) URL serving the same content (BEP 19; repeatable).
  --comment TEXT        Free text stored in the torrent.
  --json                Progress and the result as JSON lines on standard output.
  -h, --help            Show this help.

Example:
  swarmship create dist/app-1.4.2 -o app-1.4.2.torrent --piece-length 4MiB \\
    --tracker http://controller:8080/announce --private
`;

export const createCommand: Command = {
  name: 'create',
  help: HELP,
  options: {
    output: { type: 'string', short: 'o' },
    'piece-length': { type: 'string' },
    tracker: { type: 'string', multiple: true },
    private: { type: 'boolean' },
    'web-seed': { type: 'string', multiple: true },
    comment: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  async run(values: ParsedValues, [contentPath]: string[], io: CommandIo): Promise<number> {
    const json = values.json === true;
    const output = values.output;
    if (typeof output !== 'string' || output === '') throw new UsageError(`missing -o <file.torrent>. ${HELP.split('\n')[0]}`);
    const pieceLength = values['piece-length'] === undefined ? undefined : pieceLengthOption(String(values['piece-length']));
    const trackers = urls(values.tracker, '--tracker');
    const webSeeds = urls(values['web-seed'], '--web-seed');
    const outPath = resolve(output);
    await checkWritable(outPath);

    const abort = new AbortController();
    void io.interrupted.then(() => abort.abort(new Error('interrupted; nothing was written')));
    let progress: ProgressReporter | undefined;
    const started = performance.now();
    const rate = (done: number) => done / Math.max(0.001, (performance.now() - started) / 1000);
    let created: { torrent: Buffer; metainfo: Metainfo };
    try {
      created = await createTorrent(contentPath!, {
        pieceLength,
        announce: trackers,
        private: values.private === true,
        urlList: webSeeds,
        comment: typeof values.comment === 'string' ? values.comment : undefined,
        signal: abort.signal,
        onProgress: (done, total) => {
          progress ??= progressReporter(io, { json, label: 'hashing', total });
          progress.update({ done, rate: rate(done) });
        },
      });
    } catch (err) {
      throw err instanceof CreateTorrentError ? new InputError(err.message) : err;
    }
    const { torrent, metainfo } = created;
    await writeAtomically(outPath, torrent);

    const magnet = toMagnet(metainfo);
    progress ??= progressReporter(io, { json, label: 'hashing', total: metainfo.length });
    if (json) {
      progress.finish({
        torrent: outPath,
        name: metainfo.name,
        infoHash: metainfo.infoHashHex,
        length: metainfo.length,
        files: metainfo.files.length,
        pieceLength: metainfo.pieceLength,
        pieceCount: metainfo.pieceCount,
        private: metainfo.private,
        magnet,
      });
    } else {
      progress.update({ done: metainfo.length, rate: rate(metainfo.length) });
      progress.finish();
      const fileCount = metainfo.files.length;
      io.stdout.write(
        [
          `created ${output}`,
          `  name        ${metainfo.name}`,
          `  info hash   ${metainfo.infoHashHex}`,
          `  size        ${formatBytes(metainfo.length)} (${metainfo.length} bytes)${metainfo.singleFile ? '' : ` in ${fileCount} file${fileCount === 1 ? '' : 's'}`}`,
          `  pieces      ${metainfo.pieceCount} × ${formatBytes(metainfo.pieceLength)}`,
          `  magnet      ${magnet}`,
          '',
        ].join('\n'),
      );
    }
    return 0;
  },
};

function pieceLengthOption(text: string): number {
  const bytes = parseByteSize(text, '--piece-length');
  if (!isValidPieceLength(bytes)) {
    const nearest = bytes > 0 ? 2 ** Math.round(Math.log2(bytes)) : 0;
    const hint = isValidPieceLength(nearest) ? `; did you mean ${formatBytes(nearest).replace(' ', '')}?` : '';
    throw new UsageError(`--piece-length ${text}: must be a power of two from ${formatBytes(MIN_PIECE_LENGTH)} to ${formatBytes(MAX_PIECE_LENGTH)}${hint}`);
  }
  return bytes;
}

function urls(values: unknown, flag: string): string[] {
  const list = Array.isArray(values) ? values.map(String) : values === undefined ? [] : [String(values)];
  for (const url of list) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`${flag} ${url}: not a URL`);
    }
    if (!/^(https?|udp):$/.test(parsed.protocol)) throw new UsageError(`${flag} ${url}: expected an http, https or udp URL`);
  }
  return list;
}

/** Fails before the long hashing, not after it, when the output cannot be written. */
async function checkWritable(outPath: string): Promise<void> {
  const existing = await stat(outPath).catch(() => undefined);
  if (existing?.isDirectory()) throw new InputError(`cannot write ${outPath}: it is a directory`);
  try {
    // access() says yes to root for any existing path, a plain file included.
    if (!(await stat(dirname(outPath))).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    await access(dirname(outPath), constants.W_OK);
  } catch (err) {
    throw new InputError(`cannot write ${outPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} on ${dirname(outPath)}`);
  }
}

/**
 * Writes beside the target, flushes, then renames: a reader sees the old file or the
 * whole new one, and a failure leaves nothing behind.
 */
async function writeAtomically(outPath: string, bytes: Buffer): Promise<void> {
  try {
    await writeFileAtomic(outPath, bytes);
  } catch (err) {
    throw new InputError(`cannot write ${outPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
