import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { ANNOUNCED_UPLOAD_TYPE } from '../../../../libs/contracts/src/rest.js';
import { fileDigests } from '../../../../libs/hashing/src/file-digests.js';
import { HashPool } from '../../../../libs/hashing/src/hash-pool.js';
import { choosePieceLength } from '../../../../libs/metainfo/src/create.js';
import type { ReleaseStatus } from '../../../../libs/contracts/src/rest.js';
import { EXIT_FAILURE, InputError, UsageError, type Command, type CommandIo, type ParsedValues } from '../command.js';
import { CONTROLLER_OPTIONS_HELP, ControllerClient, ControllerError, controllerOptions, parseLabels, releasePath } from '../controller-client.js';
import { formatBytes, formatDuration, progressReporter, type ProgressReporter } from '../progress.js';

const HELP = `Usage: swarmship publish <path> --name NAME --version V [--selector k=v,…] [--wait] [--min-ready 100%] [--timeout 10m] [--json]

Publish a build artifact as a release: it is hashed here, then uploaded to the
controller (streamed, with progress bars), which makes its torrent from the digests sent
first, tells every matching agent to fetch it and seeds each piece as it lands, so the
fleet starts before the upload ends. With --wait, the command then follows the rollout and exits 0 once enough
nodes hold a verified copy, or non-zero with the nodes that failed or lag.

<path> is a file (a tarball, a binary, a model). A directory already on the controller's
volume can be published with --controller-path instead.

Options:
  --name NAME           Release name (e.g. the service). Required.
  --version V           Release version (e.g. the commit). Required; name@version is unique.
  --selector k=v,…      Only agents whose labels match all of these. Default: every agent.
  --metadata k=v,…      Free-form metadata kept with the release.
  --controller-path P   Publish P, a file or directory on the controller's own volume,
                        instead of uploading <path>.
  --wait                Follow the rollout until --min-ready of the targeted nodes are done.
  --min-ready N%        With --wait: share of targeted nodes that must complete. Default 100%.
  --timeout DURATION    With --wait: give up after this long (e.g. 90s, 10m). Default 10m.
                        With no agent matching the selector after 30 s, it gives up then.
${CONTROLLER_OPTIONS_HELP}
  -h, --help            Show this help.

Exit codes: 0 published (and, with --wait, rolled out); 1 rollout failed or timed out;
2 bad arguments or input; the controller's refusal (401, 409, 507…) is printed as is.

Example (in a CI job):
  export SWARMSHIP_URL=https://swarmship.internal SWARMSHIP_TOKEN=…
  swarmship publish build/app.tar.gz --name app --version "$GIT_SHA" --selector tier=web --wait
`;

export const publishCommand: Command = {
  name: 'publish',
  help: HELP,
  options: {
    ...controllerOptions,
    name: { type: 'string' },
    version: { type: 'string' },
    selector: { type: 'string' },
    metadata: { type: 'string' },
    'controller-path': { type: 'string' },
    wait: { type: 'boolean' },
    'min-ready': { type: 'string' },
    timeout: { type: 'string' },
  },
  positionals: [0, 1],
  async run(values: ParsedValues, [path]: string[], io: CommandIo): Promise<number> {
    const json = values.json === true;
    const name = required(values.name, '--name');
    const version = required(values.version, '--version');
    const selector = parseLabels(values.selector, '--selector');
    const metadata = parseLabels(values.metadata, '--metadata');
    const minReady = parsePercent(values['min-ready']);
    const timeoutMs = parseDuration(values.timeout ?? '10m', '--timeout');
    const remotePath = values['controller-path'];
    if ((path === undefined) === (remotePath === undefined)) throw new UsageError('give either <path> or --controller-path');
    const client = await ControllerClient.fromOptions(values, io);

    let release: ReleaseStatus;
    if (typeof remotePath === 'string') {
      release = await client.postJson<ReleaseStatus>('/releases', { path: remotePath, name, version, selector, metadata });
    } else {
      const file = resolve(path!);
      const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
        throw new InputError(`cannot read ${file}: ${e.code ?? e.message}`);
      });
      if (!st.isFile()) throw new InputError(`${file} is not a file: pack a directory first (tar czf app.tar.gz dir/), or use --controller-path`);
      const query = new URLSearchParams({ name, version, filename: basename(file) });
      if (values.selector) query.set('selector', String(values.selector));
      if (values.metadata) query.set('metadata', String(values.metadata));
      if (st.size === 0) throw new InputError(`${file} is empty: a release needs at least one byte`);
      release = await uploadPiecesFirst(client, io, json, file, st.size, `/releases?${query}`).catch(async (err: unknown) => {
        // A controller from before pieces-first uploads refuses the content type: during an
        // upgrade the CLI may be the newer one. The plain upload works with any.
        if (!(err instanceof ControllerError && err.status === 400 && err.field === 'Content-Type')) throw err;
        if (!json) io.stderr.write('the controller does not take piece digests first (an older version): uploading the artifact plainly\n');
        return uploadPlainly(client, io, json, file, st.size, `/releases?${query}`);
      });
    }
    if (json) io.stdout.write(JSON.stringify({ event: 'published', release }) + '\n');
    else io.stderr.write(`published ${name}@${version} (${release.infoHash}, ${formatBytes(release.bytes)})\n`);
    if (values.wait !== true) return 0;
    return followRollout(client, io, name, version, minReady, timeoutMs, json);
  },
};

/**
 * Hashes the artifact here first, then sends its piece digests ahead of its bytes: the
 * controller makes the torrent from them and the fleet starts fetching while the upload
 * is still arriving, so the upload and its hashing on the controller are no longer
 * in the way of the rollout (docs/decisions/0016).
 */
async function uploadPiecesFirst(client: ControllerClient, io: CommandIo, json: boolean, file: string, size: number, path: string): Promise<ReleaseStatus> {
  const pieceLength = choosePieceLength(size);
  const hashing = progressReporter(io, { json, label: 'hash', total: size });
  const pool = new HashPool();
  let digests;
  try {
    digests = await fileDigests(pool, file, size, pieceLength, (done) => hashing.update({ done, phase: 'hashing' }));
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    await pool.close();
  }
  hashing.finish({ sha256: digests.fileSha256 });
  const opening = Buffer.concat([digests.sha1, digests.sha256]);
  const upload = progressReporter(io, { json, label: 'upload', total: size });
  const open = () => {
    const artifact = readWithProgress(file, size, upload);
    return Readable.from(
      (async function* () {
        yield opening;
        yield* artifact;
      })(),
    );
  };
  const release = await client.postStream<ReleaseStatus>(path, open, opening.length + size, ANNOUNCED_UPLOAD_TYPE, {
    'x-swarmship-size': String(size),
    'x-swarmship-piece-length': String(pieceLength),
    'x-swarmship-sha256': digests.fileSha256,
  });
  upload.finish({ infoHash: release.infoHash });
  return release;
}

/** The artifact alone: the controller hashes it as it arrives, and agents start once it is all in. */
async function uploadPlainly(client: ControllerClient, io: CommandIo, json: boolean, file: string, size: number, path: string): Promise<ReleaseStatus> {
  const upload = progressReporter(io, { json, label: 'upload', total: size });
  const release = await client.postStream<ReleaseStatus>(path, () => readWithProgress(file, size, upload), size);
  upload.finish({ infoHash: release.infoHash });
  return release;
}

/** The file's first `size` bytes (those hashed, even if it grew since), counted on `bar` as they are read. */
function readWithProgress(file: string, size: number, bar: ProgressReporter): Readable {
  let sent = 0;
  const artifact = createReadStream(file, { highWaterMark: 1024 * 1024, end: size - 1 });
  artifact.on('data', (chunk) => bar.update({ done: (sent += chunk.length), phase: 'uploading' }));
  return artifact;
}

/** How long --wait waits for at least one agent to be targeted before giving up. */
const NO_TARGET_GRACE_MS = 30_000;

/**
 * How long one read of the rollout may be held by the controller: it answers as soon as
 * an agent's report changes the rollout, and the progress bar is redrawn at least this often.
 */
const ROLLOUT_WAIT_SECONDS = 5;

/** Follows the release until enough targeted nodes are complete; prints who failed or lags otherwise. */
async function followRollout(client: ControllerClient, io: CommandIo, name: string, version: string, minReady: number, timeoutMs: number, json: boolean): Promise<number> {
  const started = performance.now();
  const path = releasePath(name, version);
  let { body: status, tag } = await client.getWhenChanged<ReleaseStatus>(path, undefined, 0);
  if (!status) throw new Error(`GET ${path}: no release status in the answer`);
  const bar = progressReporter(io, { json, label: 'rollout', total: Math.max(1, status.rollout.targeted) * status.bytes });
  const interrupted = io.interrupted.then(() => 'interrupted' as const);
  for (;;) {
    const r = status.rollout;
    const verified = r.nodes.reduce((n, x) => n + x.verifiedBytes, 0);
    bar.update({ done: verified, phase: `${r.complete}/${r.targeted} nodes complete${r.failed ? `, ${r.failed} failed` : ''}` });
    if (r.targeted > 0 && r.complete >= Math.ceil(r.targeted * minReady)) {
      bar.finish({ complete: r.complete, targeted: r.targeted, failed: r.failed, seconds: (performance.now() - started) / 1000 });
      if (!json) io.stderr.write(`rolled out: ${r.complete} of ${r.targeted} nodes hold ${name}@${version} (${formatDuration((performance.now() - started) / 1000)})\n`);
      return 0;
    }
    if (performance.now() - started > timeoutMs) break;
    // A selector nothing matches (a typo, a label not rolled out yet) would otherwise hold a
    // CI job for the whole timeout: agents that exist sync within seconds.
    if (r.targeted === 0 && performance.now() - started > NO_TARGET_GRACE_MS) break;
    // Held by the controller until the rollout changes; a controller that sends no ETag
    // cannot hold reads, and is asked once a second instead.
    const next =
      tag !== undefined
        ? client.getWhenChanged<ReleaseStatus>(path, tag, Math.min(ROLLOUT_WAIT_SECONDS, Math.max(1, (timeoutMs - (performance.now() - started)) / 1000)))
        : new Promise((res) => setTimeout(res, 1000)).then(() => client.getWhenChanged<ReleaseStatus>(path, undefined, 0));
    const answer = await Promise.race([next, interrupted]);
    if (answer === 'interrupted') break;
    if (answer.body) status = answer.body;
    tag = answer.tag;
  }
  const r = status.rollout;
  bar.finish({ complete: r.complete, targeted: r.targeted, failed: r.failed, outcome: 'incomplete' });
  const lagging = r.nodes.filter((x) => x.state !== 'complete');
  if (json) io.stdout.write(JSON.stringify({ event: 'rollout-incomplete', complete: r.complete, targeted: r.targeted, nodes: lagging }) + '\n');
  else {
    io.stderr.write(`rollout incomplete: ${r.complete} of ${r.targeted} nodes complete${r.targeted === 0 ? ' (no agent matches the selector)' : ''}\n`);
    for (const x of lagging) io.stderr.write(`  ${x.agent}: ${x.state}${x.error ? ` (${x.error})` : ''}, ${formatBytes(x.verifiedBytes)} of ${formatBytes(status.bytes)}\n`);
  }
  return EXIT_FAILURE;
}

function required(v: unknown, flag: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`${flag} is required. See 'swarmship publish --help'.`);
  return v;
}

function parsePercent(v: unknown): number {
  if (v === undefined) return 1;
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(String(v));
  const n = m ? Number(m[1]) : NaN;
  if (!(n > 0 && n <= 100)) throw new UsageError(`--min-ready ${String(v)}: expected a percentage from 1% to 100%`);
  return n / 100;
}

export function parseDuration(v: unknown, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(v));
  if (!m) throw new UsageError(`${flag} ${String(v)}: expected a duration such as 90s, 10m or 1h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}
