import { readFile } from 'node:fs/promises';
import { MetainfoError, parseTorrent, toMagnet, type Metainfo } from '../../../../libs/metainfo/src/index.js';
import { InputError, type Command, type CommandIo, type ParsedValues } from '../command.js';
import { formatBytes } from '../progress.js';

const HELP = `Usage: swarmship info <file.torrent> [--json]

Show what a .torrent holds: name, info hash, size, piece length and count, the private
flag, trackers by tier, web seeds, every file with its size, and a magnet link. The
torrent is checked as strictly as every swarmship node checks it, so a torrent that
passes here is one the fleet will accept; a malformed one gets a one-line error naming
the field at fault (exit code 2).

Options:
  --json       Print one JSON object instead of text.
  -h, --help   Show this help.

Example:
  swarmship info app-1.4.2.torrent
  swarmship info app-1.4.2.torrent --json | jq -r .infoHash
`;

export const infoCommand: Command = {
  name: 'info',
  help: HELP,
  options: { json: { type: 'boolean' } },
  positionals: [1, 1],
  async run(values: ParsedValues, [torrentPath]: string[], io: CommandIo): Promise<number> {
    let bytes: Buffer;
    try {
      bytes = await readFile(torrentPath!);
    } catch (err) {
      throw new InputError(`cannot read ${torrentPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let m: Metainfo;
    try {
      m = parseTorrent(bytes);
    } catch (err) {
      throw err instanceof MetainfoError ? new InputError(`${torrentPath}: ${err.message}`) : err;
    }
    io.stdout.write(values.json === true ? `${JSON.stringify(asJson(m))}\n` : describe(m));
    return 0;
  },
};

function asJson(m: Metainfo): Record<string, unknown> {
  return {
    name: m.name,
    infoHash: m.infoHashHex,
    length: m.length,
    pieceLength: m.pieceLength,
    pieceCount: m.pieceCount,
    private: m.private,
    singleFile: m.singleFile,
    announce: m.announce ?? null,
    announceList: m.announceList,
    urlList: m.urlList,
    comment: m.comment ?? null,
    createdBy: m.createdBy ?? null,
    creationDate: m.creationDate ?? null,
    files: m.files.map((f) => ({ path: f.path.join('/'), length: f.length, offset: f.offset, ...(f.pad ? { pad: true } : {}) })),
    magnet: toMagnet(m),
  };
}

function describe(m: Metainfo): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(12)}  ${value}`);
  const files = m.files.filter((f) => !f.pad);
  row('name', oneLine(m.name));
  row('info hash', m.infoHashHex);
  row('size', `${formatBytes(m.length)} (${m.length} bytes)${m.singleFile ? '' : ` in ${files.length} file${files.length === 1 ? '' : 's'}`}`);
  row('pieces', `${m.pieceCount} × ${formatBytes(m.pieceLength)}`);
  row('private', m.private ? 'yes' : 'no');
  if (m.createdBy !== undefined) row('created by', oneLine(m.createdBy));
  if (m.creationDate !== undefined) row('created', dateText(m.creationDate));
  if (m.comment !== undefined) row('comment', oneLine(m.comment));
  const tiers = m.announceList.length > 0 ? m.announceList : m.announce ? [[m.announce]] : [];
  if (tiers.length === 0) row('trackers', 'none');
  tiers.forEach((tier, i) => row(i === 0 ? 'trackers' : '', `${tiers.length > 1 ? `tier ${i + 1}: ` : ''}${tier.map(oneLine).join(', ')}`));
  if (m.urlList.length === 0) row('web seeds', 'none');
  m.urlList.forEach((url, i) => row(i === 0 ? 'web seeds' : '', oneLine(url)));
  lines.push('files');
  const width = Math.max(...files.map((f) => formatBytes(f.length).length));
  for (const f of files) lines.push(`  ${formatBytes(f.length).padStart(width)}  ${oneLine(m.singleFile ? f.path[0]! : f.path.join('/'))}`);
  row('magnet', toMagnet(m));
  return `${lines.join('\n')}\n`;
}

function dateText(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : `${d.toISOString().replace('.000Z', 'Z')} (${seconds})`;
}

/** Torrent text is untrusted: keep control characters from moving the cursor or adding lines. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
