import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HashPool } from '../../hashing/src/hash-pool.js';
import { TrackerCore } from '../../tracker/src/core.js';
import type { AgentChannelError, AgentSyncResponse, DesiredRelease } from '../../contracts/src/agent-channel.js';
import type { AgentSummary, ReleaseStatus, SigningKeyInfo } from '../../contracts/src/rest.js';
import { AgentMessageError, parseProgressReport, parseSyncRequest, tokenOf } from './agent-messages.js';
import { secretsEqual } from './auth.js';
import type { ControllerConfig } from './config.js';
import { Fleet, type FleetClock } from './fleet.js';
import { parseFileName, parseMetadata, parseReleaseName, parseReleaseVersion, parseSelector, selectorMatches } from './labels.js';
import type { Logger } from './logger.js';
import { OriginSeeder } from './origin.js';
import { ReleaseStore, type PublishFields, type Release } from './release-store.js';
import { releaseStatus, rolloutTag } from './rollout.js';
import { badRequest, ControllerError } from './errors.js';
import { MultipartReader, multipartBoundary } from './multipart.js';
import { claimOf, parseUploadClaim, readOpening, type RawUploadClaim } from './announced-upload.js';
import { openSigningKey, type ControllerSigningKey } from './signing-key.js';

/** Publish fields as they arrive (query string, headers or JSON), before validation. */
export interface RawPublishFields {
  name?: unknown;
  version?: unknown;
  selector?: unknown;
  metadata?: unknown;
  unpack?: unknown;
}

/** The longest a read of a rollout may be held waiting for it to change (HTTP `Prefer: wait=…`). */
export const MAX_STATUS_WAIT_MS = 30_000;
/**
 * Once a report wakes a held read, it waits this much longer for other agents' reports
 * before answering: a fleet reports every second, and each answer costs a status.
 */
const REPORT_COALESCE_MS = 50;

/** An agent-channel answer: the response, or the refusal the contract defines. */
export type ChannelResult<T> = { ok: true; value: T } | { ok: false; error: AgentChannelError };

/**
 * The controller without its framework: releases on disk, the private tracker's
 * allow-list, the origin seeder and the fleet's reports, kept consistent with each
 * other. The HTTP and agent-channel layers only translate calls into these methods.
 */
export class ControllerCore {
  readonly tracker = new TrackerCore({ allow: [] });
  readonly fleet: Fleet;
  readonly store: ReleaseStore;
  readonly origin: OriginSeeder;
  /** The key every release's manifest is signed with; agents trust its public half. */
  readonly signingKey: ControllerSigningKey;
  private readonly hashPool = new HashPool();
  private httpPort = 0;
  private started = false;
  /** The stored releases are loaded: the API may answer from the store. */
  private loaded = false;
  /** name@version of publishes under way, from their first byte to seeding. */
  private readonly publishing = new Set<string>();

  constructor(
    readonly config: ControllerConfig,
    private readonly log: Logger,
    clock?: FleetClock,
  ) {
    this.fleet = new Fleet(clock, { lostAfterMs: config.agentTimeoutSeconds * 1000, forgetAfterMs: config.agentForgetSeconds * 1000 });
    this.signingKey = openSigningKey(config);
    this.store = new ReleaseStore({ dataDir: config.dataDir, hashPool: this.hashPool, announceUrl: () => this.announceUrl, pathRoots: config.pathRoots, signingKey: this.signingKey });
    this.origin = new OriginSeeder({
      host: config.host,
      peerPort: config.peerPort,
      uploadRateLimit: config.originUploadLimit,
      superSeed: config.superSeed,
      hashPool: this.hashPool,
      tracker: this.tracker,
      publicHost: config.publicHost,
      onEvent: (event, fields) => this.log.info(event, fields),
    });
  }

  get ready(): boolean {
    return this.started;
  }

  /**
   * Before the stored releases are loaded the store knows none of them: a publish could
   * collide with one on disk, a list would be empty, a retire would miss. The API answers
   * 'unavailable' (503, Retry-After) until then.
   */
  private assertLoaded(): void {
    if (!this.loaded) throw new ControllerError('unavailable', 'the controller is starting: its stored releases are still being loaded; retry in a moment');
  }

  get announceUrl(): string {
    return `${this.publicBaseUrl}/announce`;
  }

  get publicBaseUrl(): string {
    const host = this.config.publicHost.includes(':') ? `[${this.config.publicHost}]` : this.config.publicHost;
    return `http://${host}:${this.httpPort}`;
  }

  /** Loads the stored releases and seeds the live ones; `httpPort` is where the tracker answers. */
  async start(httpPort: number): Promise<void> {
    this.httpPort = httpPort;
    await this.origin.start();
    const { loaded, skipped, signed, unsigned } = await this.store.load();
    for (const s of skipped) this.log.error('stored release unreadable; left out', s);
    if (signed.length > 0) this.log.info('stored releases signed', { releases: signed, keyId: this.signingKey.keyId });
    for (const u of unsigned) this.log.error('stored release cannot be signed; agents will refuse it', u);
    for (const release of loaded) {
      if (release.record.retiredAt !== undefined) continue;
      await this.goLive(release);
    }
    this.loaded = true;
    this.started = true;
    this.log.info('releases loaded', { live: this.store.live().length, retired: loaded.length - this.store.live().length });
  }

  private async goLive(release: Release): Promise<void> {
    this.tracker.allow(release.metainfo.infoHash);
    try {
      await this.origin.seed(release);
    } catch (err) {
      // The release stays listed and allowed: agents holding it keep serving each other.
      this.log.error('origin cannot seed release', { release: label(release), error: (err as Error).message });
    }
  }

  async publishStream(raw: RawPublishFields, fileName: unknown, body: Readable, declaredBytes: number | undefined): Promise<ReleaseStatus> {
    this.assertLoaded();
    const fields = parsePublishFields(raw);
    const name = parseFileName(fileName ?? 'artifact', 'filename');
    return this.publishOnce(fields, () => this.store.publishStream(fields, name, body, declaredBytes));
  }

  /**
   * An upload whose piece digests open its body (ANNOUNCED_UPLOAD_TYPE): the release is
   * listed, seeded and sent to agents as soon as its torrent is made from them, and the
   * origin offers each piece as it lands. A failed upload withdraws the release.
   */
  async publishAnnounced(raw: RawPublishFields, fileName: unknown, body: AsyncIterable<Buffer>, rawClaim: RawUploadClaim): Promise<ReleaseStatus> {
    this.assertLoaded();
    const fields = parsePublishFields(raw);
    const name = parseFileName(fileName ?? 'artifact', 'filename');
    const parsed = parseUploadClaim(rawClaim);
    return this.publishOnce(fields, async () => {
      const { opening, rest } = await readOpening(body, parsed.digestBytes).catch((err: unknown) => {
        throw err instanceof ControllerError ? err : badRequest('body', `the upload was cut off within its piece digests (${(err as Error).message})`);
      });
      return this.store.publishAnnounced(fields, name, rest, claimOf(parsed, opening), {
        opened: async (release) => {
          this.tracker.allow(release.metainfo.infoHash);
          await this.origin.seedGrowing(release);
          this.fleet.bump();
          this.log.info('release opened', { release: label(release), infoHash: release.record.infoHash, bytes: release.record.bytes });
        },
        pieceLanded: (release, index) => this.origin.pieceLanded(release.record.infoHash, index),
        withdrawn: async (release) => {
          await this.stopServing(release);
          this.log.info('release withdrawn: its upload failed', { release: label(release) });
        },
      });
    });
  }

  /**
   * multipart/form-data: release fields as query parameters or as form fields placed
   * before the file part, whose bytes are streamed to disk like a plain upload.
   */
  async publishMultipart(raw: RawPublishFields & { filename?: unknown }, body: AsyncIterable<Buffer>, contentType: string, contentLength: number | undefined): Promise<ReleaseStatus> {
    this.assertLoaded();
    const reader = new MultipartReader(body[Symbol.asyncIterator](), multipartBoundary(contentType));
    const fields: Record<string, unknown> = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
    let file;
    for (;;) {
      const part = await reader.nextPart();
      if (!part) throw badRequest('file', 'the multipart body has no file part');
      if (part.filename !== undefined || part.name === 'file') {
        file = part;
        break;
      }
      if (!FORM_FIELDS.has(part.name)) throw badRequest(part.name, `unknown form field (known: ${[...FORM_FIELDS].join(', ')}, then the file)`);
      fields[part.name] = await reader.text(MAX_FORM_FIELD_BYTES, part.name);
    }
    const publish = parsePublishFields(fields);
    // Browsers may send a whole client-side path as the file name; only its last element names the artifact.
    const given = fields['filename'] ?? file.filename?.split(/[/\\]/).pop() ?? 'artifact';
    const fileName = parseFileName(given === '' ? 'artifact' : given, 'filename');
    // The multipart framing makes Content-Length a little more than the file: a safe bound for the space check.
    return this.publishOnce(publish, async () => {
      const release = await this.store.publishStream(publish, fileName, Readable.from(reader.body()), undefined, contentLength);
      while (await reader.nextPart().catch(() => null)) {
        // Parts after the file are not ours; read past them so the connection stays usable.
      }
      return release;
    });
  }

  async publishPath(raw: RawPublishFields, path: unknown): Promise<ReleaseStatus> {
    this.assertLoaded();
    const fields = parsePublishFields(raw);
    if (typeof path !== 'string' || path === '') throw badRequest('path', 'is required');
    return this.publishOnce(fields, () => this.store.publishPath(fields, path));
  }

  /**
   * One publish of name@version from its first byte until it is listed with the tracker
   * and seeded. A retire of the same release meanwhile is refused: the store registers a
   * release before it goes live, and a retire between the two left it retired on disk
   * yet allowed by the tracker and seeded by the origin.
   */
  private async publishOnce(fields: PublishFields, store: () => Promise<Release>): Promise<ReleaseStatus> {
    const k = `${fields.name}@${fields.version}`;
    if (this.publishing.has(k)) throw new ControllerError('conflict', `release ${k} is being published right now`);
    this.publishing.add(k);
    try {
      return await this.published(await store());
    } finally {
      this.publishing.delete(k);
    }
  }

  private async published(release: Release): Promise<ReleaseStatus> {
    await this.goLive(release);
    this.fleet.bump();
    this.log.info('release published', { release: label(release), infoHash: release.record.infoHash, bytes: release.record.bytes });
    return this.statusOf(release);
  }

  async retire(name: string, version: string): Promise<ReleaseStatus> {
    this.assertLoaded();
    if (this.publishing.has(`${name}@${version}`)) {
      throw new ControllerError('conflict', `release ${name}@${version} is being published right now; retire it once its publish has answered`);
    }
    const before = this.store.get(name, version);
    const wasLive = before.record.retiredAt === undefined;
    const release = await this.store.retire(name, version);
    if (wasLive) {
      await this.stopServing(release);
      this.log.info('release retired', { release: label(release) });
    }
    return this.statusOf(release);
  }

  /** Off the tracker's allow-list and the origin, and agents told at their next sync. */
  private async stopServing(release: Release): Promise<void> {
    this.tracker.disallow(release.metainfo.infoHash);
    await this.origin.unseed(release.record.infoHash);
    this.fleet.bump();
  }

  list(): ReleaseStatus[] {
    this.assertLoaded();
    return this.store.list().map((r) => this.statusOf(r));
  }

  status(name: string, version: string): ReleaseStatus {
    this.assertLoaded();
    return this.statusOf(this.store.get(name, version));
  }

  /**
   * The release's status with its weak validator (`rolloutTag`); if that is `knownTag`,
   * held until an agent's report changes it or `waitMs` (at most MAX_STATUS_WAIT_MS)
   * passes, so a client following a rollout hears of each change at once without polling.
   */
  async statusWhenChanged(name: string, version: string, knownTag: string | undefined, waitMs: number): Promise<{ status: ReleaseStatus; tag: string }> {
    const deadline = performance.now() + Math.min(Math.max(0, waitMs), MAX_STATUS_WAIT_MS);
    let status = this.status(name, version);
    while (rolloutTag(status) === knownTag && this.started) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await this.fleet.nextReport(left);
      await sleep(Math.max(0, Math.min(REPORT_COALESCE_MS, deadline - performance.now())));
      status = this.status(name, version);
    }
    return { status, tag: rolloutTag(status) };
  }

  /** The public key agents verify release manifests with. */
  signingKeyInfo(): SigningKeyInfo {
    return { algorithm: 'ed25519', keyId: this.signingKey.keyId, publicKey: this.signingKey.publicPem };
  }

  torrent(name: string, version: string): { fileName: string; torrent: Buffer } {
    this.assertLoaded();
    const release = this.store.get(name, version);
    return { fileName: `${name}-${version}.torrent`, torrent: release.torrent };
  }

  private statusOf(release: Release): ReleaseStatus {
    return releaseStatus({
      release: release.record,
      agents: this.fleet.active(),
      originBytesSent: this.origin.sentBytes(release.record.infoHash),
      completedAt: (agent, holding) => this.fleet.completedAt(agent, holding),
    });
  }

  agents(): AgentSummary[] {
    return this.fleet.list().map((a) => ({
      name: a.name,
      labels: a.identity?.labels ?? {},
      addresses: a.identity?.addresses ?? [],
      peerPort: a.identity?.peerPort ?? 0,
      diskFreeBytes: a.identity?.diskFreeBytes ?? 0,
      version: a.identity?.version ?? 'unknown',
      lastSeen: new Date(a.lastSeen).toISOString(),
      state: a.lost ? 'lost' : 'active',
      releases: a.holdings.map((h) => ({ name: h.name, version: h.version, state: h.state })),
    }));
  }

  /** AgentPatterns.sync: record what the agent holds, hold the call until there is news, answer with its desired set. */
  async sync(msg: unknown): Promise<ChannelResult<AgentSyncResponse>> {
    const refused = this.refuse(msg);
    if (refused) return refused;
    let req;
    try {
      req = parseSyncRequest(msg);
    } catch (err) {
      return badMessage(err);
    }
    this.fleet.recordSync(req.agent, req.holdings);
    const answered = this.fleet.holdSync(req.agent.name);
    try {
      await this.fleet.waitForChange(req.knownRevision, req.waitMs);
    } finally {
      answered();
    }
    const labels = req.agent.labels;
    const desired: DesiredRelease[] = this.store
      .live()
      .filter((r) => selectorMatches(r.record.selector, labels))
      .map((r) => {
        const d: DesiredRelease = { name: r.record.name, version: r.record.version, infoHash: r.record.infoHash, torrent: r.torrent.toString('base64'), metadata: r.record.metadata };
        // As signed: the manifest says unpack only for a record's `true`.
        if (r.record.unpack === true) d.unpack = true;
        if (r.record.manifest !== undefined && r.record.signature !== undefined) {
          d.manifest = r.record.manifest;
          d.signature = r.record.signature;
          if (r.record.signingKey !== undefined) d.signingKey = r.record.signingKey;
        }
        return d;
      });
    return {
      ok: true,
      value: {
        revision: this.fleet.revision,
        desired,
        announceUrl: this.announceUrl,
        origin: { host: this.config.publicHost, port: this.origin.port },
        retireGraceSeconds: this.config.retireGraceSeconds,
      },
    };
  }

  /** AgentPatterns.progress. */
  progress(msg: unknown): ChannelResult<{ ok: true }> {
    const refused = this.refuse(msg);
    if (refused) return refused;
    try {
      const report = parseProgressReport(msg);
      this.fleet.recordProgress(report.agentName, report.holdings);
    } catch (err) {
      return badMessage(err);
    }
    return { ok: true, value: { ok: true } };
  }

  private refuse(msg: unknown): { ok: false; error: AgentChannelError } | undefined {
    if (secretsEqual(tokenOf(msg) ?? '', this.config.agentToken)) return undefined;
    this.log.warn('agent refused: wrong or missing agent token');
    return { ok: false, error: { error: 'unauthorized', message: 'wrong or missing agent token' } };
  }

  async close(): Promise<void> {
    this.started = false;
    this.fleet.wakeAll();
    await this.origin.close();
    await this.hashPool.close();
  }
}

const FORM_FIELDS = new Set(['name', 'version', 'selector', 'metadata', 'unpack', 'filename']);
const MAX_FORM_FIELD_BYTES = 64 * 1024;

/** The release fields of a publish, checked; exported for the REST fuzz target (test/fuzz). */
export function parsePublishFields(raw: RawPublishFields): PublishFields {
  const unpack = raw.unpack;
  if (unpack !== undefined && unpack !== true && unpack !== false && unpack !== 'true' && unpack !== 'false') throw badRequest('unpack', 'must be true or false');
  return {
    name: parseReleaseName(raw.name),
    version: parseReleaseVersion(raw.version),
    selector: parseSelector(raw.selector, 'selector'),
    metadata: parseMetadata(raw.metadata, 'metadata'),
    unpack: unpack === true || unpack === 'true',
  };
}

function badMessage(err: unknown): { ok: false; error: AgentChannelError } {
  if (err instanceof AgentMessageError) return { ok: false, error: { error: 'bad-request', message: err.message } };
  throw err;
}

function label(r: Release): string {
  return `${r.record.name}@${r.record.version}`;
}
