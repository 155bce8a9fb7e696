import { startTrackerServer } from '../../../../libs/tracker/src/index.js';
import { UsageError, type Command, type CommandIo, type ParsedValues } from '../command.js';

const HELP = `Usage: swarmship tracker [--host H] --port N [--allow INFOHASH]... [--interval SECONDS] [--json]

Run a BitTorrent tracker (HTTP, BEP 3/7/23/48) on its own, for a swarm without a
controller or for trying things out. Peers announce to it and learn about each other
from it; it never touches the data. It runs until interrupted (Ctrl-C or SIGTERM).

Options:
  --host H              Address to listen on. Default 0.0.0.0 (every IPv4 interface);
                        use :: for IPv6 as well, 127.0.0.1 to keep it on this machine.
  --port N              TCP port to listen on (required). 0 picks a free one; the
                        announce URL printed at start says which.
  --allow INFOHASH      Serve only this torrent (40 hex digits, the v1 info hash).
                        Repeat for several. Without it the tracker serves any torrent;
                        with it, announces for any other torrent are refused.
  --interval SECONDS    How often peers should announce. Default 60. A peer that has
                        not announced for twice this long is dropped from its swarm.
  --json                Print the announce URL as one JSON line instead of text.
  -h, --help            Show this help.

Prints the announce URL to put in a torrent's announce field or a client's tracker
list. On a wildcard --host the URL names loopback; peers on other machines use this
machine's address with the same port and path.

Example:
  swarmship tracker --port 6969 --allow 0123456789abcdef0123456789abcdef01234567
`;

export const trackerCommand: Command = {
  name: 'tracker',
  help: HELP,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    allow: { type: 'string', multiple: true },
    interval: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values: ParsedValues, _positionals: string[], io: CommandIo): Promise<number> {
    const host = typeof values.host === 'string' ? values.host : '0.0.0.0';
    if (host === '') throw new UsageError('--host must not be empty');
    const port = wholeNumber(values.port, '--port', 0, 65535);
    if (port === undefined) throw new UsageError("--port is required. See 'swarmship tracker --help'.");
    const interval = wholeNumber(values.interval, '--interval', 1, 86_400);
    const allow = infoHashes(values.allow);

    const tracker = await startTrackerServer({ host, port, allow, interval });
    try {
      if (values.json === true) {
        io.stdout.write(`${JSON.stringify({ announce: tracker.url, host, port: tracker.port, private: allow !== undefined, interval: tracker.core.interval })}\n`);
      } else {
        const scope = allow ? `private: ${allow.length} torrent(s)` : 'open: any torrent';
        io.stdout.write(`${tracker.url}\n`);
        io.stderr.write(`tracker listening on ${host}:${tracker.port} (${scope}, interval ${tracker.core.interval} s); Ctrl-C stops it\n`);
      }
      await io.interrupted;
    } finally {
      await tracker.close();
    }
    return 0;
  },
};

function wholeNumber(value: ParsedValues[string], flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got '${text}'`);
  return n;
}

function infoHashes(value: ParsedValues[string]): Buffer[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => {
    const text = String(item);
    if (!/^[0-9a-fA-F]{40}$/.test(text)) throw new UsageError(`--allow '${text}' is not an info hash: expected 40 hex digits`);
    return Buffer.from(text, 'hex');
  });
}
