import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentIdentity, AgentProgressReport, AgentSyncRequest, AgentSyncResponse, DesiredRelease, Holding, HoldingState } from '../../contracts/src/agent-channel.js';
import { SWARMSHIP_VERSION } from '../../contracts/src/version.js';
import { Engine } from '../../engine/src/engine.js';
import { announceTiers, announceTorrent, type Announcing } from '../../engine/src/announce.js';
import type { Torrent } from '../../engine/src/torrent.js';
import { layoutFiles } from '../../engine/src/storage.js';
import { HashPool } from '../../hashing/src/hash-pool.js';
import type { Metainfo } from '../../metainfo/src/metainfo.js';
import { parseTorrent } from '../../metainfo/src/parse.js';
import { ManifestError, manifestMismatch, verifyManifest, type ReleaseManifest } from '../../signing/src/manifest.js';
import type { AgentConfig } from './config.js';
import { AgentMetrics } from './metrics.js';
import { ReleaseStore, safeElement, UnsafePathError } from './release-store.js';
import { extractTar, isTarball } from './tar.js';
import { parseSyncResponse } from './sync-response.js';

/**
 * Memory for pieces per release: assembling downloads (16 pieces of 1 MiB in progress at
 * once) and whole pieces read for peers. An agent shares its node with the workload it
 * ships; these keep its peak resident memory near 130 MiB in the fleet benchmark and
 * still keep a 200 Mbit/s link busy (docs/decisions/0008).
 */
const AGENT_WRITE_BUFFER_BYTES = 16 * 1024 * 1024;
const AGENT_READ_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * One hash worker: it verifies and writes about 600 MB/s on one core, more than an
 * agent's link brings, and each worker is a V8 heap of its own (about 8 MiB).
 */
const AGENT_HASH_WORKERS = 1;

/** The controller as the agent sees it: the two calls of the agent channel. */
export interface ControllerChannel {
  sync(request: AgentSyncRequest, timeoutMs: number): Promise<AgentSyncResponse>;
  progress(report: AgentProgressReport): Promise<void>;
  close(): Promise<void>;
}

/** The controller said no (wrong token, bad request): not a network fault, retrying alone will not fix it. */
export class ChannelRefusedError extends Error {
  override name = 'ChannelRefusedError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface AgentLog {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

/** How long the controller may hold a sync before answering "no change". */
const SYNC_WAIT_MS = 25_000;
const PROGRESS_EVERY_MS = 1000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const RETRY_MIN_MS = 5_000;
const RETRY_MAX_MS = 5 * 60_000;
/** Where an unpacked .tar/.tar.gz goes inside the release dir, beside the artifact. */
export const UNPACK_DIR = 'unpacked';

class Cancelled extends Error {}

/** A release this agent will not publish: its signature, its manifest or its bytes are not what they claim. */
export class ReleaseRefusedError extends Error {
  override name = 'ReleaseRefusedError';
}

/**
 * The downloaded artifact is not the one the signed manifest names (its SHA-256). Unlike
 * the other refusals this one cost a whole download, and the same manifest would cost
 * another: the release waits for the controller to send a different one.
 */
class ArtifactRefusedError extends ReleaseRefusedError {
  constructor(
    message: string,
    /** The manifest (base64, as sent) the artifact was checked against. */
    readonly manifest: string,
  ) {
    super(message);
  }
}

/** The signed manifest as a desired release carries it (base64), still unverified. */
interface SignedRelease {
  manifest: string;
  signature: string;
  keyId: string | undefined;
}

/** One release on this node, from the first time it was desired to its removal. */
interface Held {
  key: string;
  name: string;
  version: string;
  infoHash: string;
  metainfo: Metainfo | undefined;
  torrentBytes: Buffer | undefined;
  unpack: boolean;
  /** The controller's signed manifest for this release, from its latest desired state. */
  signed?: SignedRelease;
  /**
   * A manifest whose artifact was downloaded and did not match its SHA-256: not
   * downloaded again until the controller sends another manifest (a re-publish or a
   * re-sign), so a bad release costs each node one download, not one every few minutes.
   */
  refusedManifest?: string;
  state: HoldingState;
  error?: string;
  completedAt?: number;
  startedAt?: number;
  torrent?: Torrent;
  announcing?: Announcing;
  task?: Promise<void>;
  cancel?: AbortController;
  retryAt?: number;
  failures: number;
  removeAt?: number;
  fromOrigin: number;
  fromPeers: number;
  sent: number;
  /** Counters of the attached torrent at the last sample. */
  seen: { kept: number; sent: number; hashFailures: number; peers: Map<string, number> };
  onPiece?: () => void;
  onBanned?: (address: string, reason: string) => void;
}

/**
 * The agent: syncs desired releases from the controller (long-poll, level-triggered),
 * downloads each into staging, publishes it by rename, seeds it, removes what is no
 * longer wanted, and reports. No framework: the app gives it a channel and a log.
 */
export class ReleaseAgent {
  readonly metrics: AgentMetrics;
  readonly store: ReleaseStore;
  private engine: Engine | undefined;
  /** The engine's piece hashing, and the whole-artifact SHA-256 before publishing. */
  private hashPool: HashPool | undefined;
  private readonly held = new Map<string, Held>();
  private last: AgentSyncResponse | undefined;
  private knownRevision = 0;
  private stopping = false;
  private ticker: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private diskFree = 0;
  private originHosts = new Set<string>();
  private originKey = '';
  private lastChannelError = '';
  private reportDirty = true;
  private reporting = false;
  /** The first sync answered: the agent knows what it should hold. */
  synced = false;
  ready = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly channel: ControllerChannel,
    private readonly log: AgentLog,
    private readonly now: () => number = Date.now,
    store?: ReleaseStore,
  ) {
    this.store = store ?? new ReleaseStore(config.dataDir);
    this.metrics = new AgentMetrics({
      peers: () => [...this.held.values()].reduce((n, h) => n + (h.torrent?.peers.size ?? 0), 0),
      piecesInFlight: () => [...this.held.values()].reduce((n, h) => n + (h.torrent?.piecesInFlight ?? 0), 0),
      states: () => {
        const counts: Partial<Record<HoldingState, number>> = {};
        for (const h of this.held.values()) counts[h.state] = (counts[h.state] ?? 0) + 1;
        return counts;
      },
    });
  }

  get peerPort(): number {
    return this.engine?.port ?? 0;
  }

  async start(): Promise<void> {
    try {
      await this.store.init();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(`data dir ${this.config.dataDir} (--data, SWARMSHIP_DATA) cannot be used: ${err instanceof UnsafePathError ? e.message : (e.code ?? e.message)}`);
    }
    this.hashPool = new HashPool(AGENT_HASH_WORKERS);
    const engine = new Engine({
      hashPool: this.hashPool,
      host: this.config.listenHost,
      port: this.config.peerPort,
      uploadRateLimit: this.config.uploadRateLimit,
      downloadRateLimit: this.config.downloadRateLimit,
      writeBufferBytes: AGENT_WRITE_BUFFER_BYTES,
      readCacheBytes: AGENT_READ_CACHE_BYTES,
      directIo: !this.config.pageCache,
    });
    try {
      await engine.listen();
    } catch (err) {
      await engine.close();
      await this.hashPool.close();
      throw new Error(`cannot listen for peers on port ${this.config.peerPort}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    this.engine = engine;
    await this.refreshDiskFree();
    // What we held before a restart: published copies are served at once, even with
    // no controller; partial downloads wait until the controller still wants them.
    for (const t of await this.store.storedTorrents()) {
      const h = this.adopt({ name: t.name, version: t.version, torrent: t.torrent, unpack: t.unpack });
      if (!h) continue;
      const published = await this.store.isPublished(h.name, h.version);
      if (published) this.startTask(h, () => this.servePublished(h, published.at, false));
    }
    this.ready = true;
    if (this.config.trustedKeys.length > 0) {
      this.log.info('trusted-keys', { keys: this.config.trustedKeys.map((k) => ({ keyId: k.keyId, from: k.source })), unsignedAccepted: this.config.allowUnsigned });
    } else {
      this.log.warn('signatures-not-checked', { reason: '--allow-unsigned and no --trust-key: releases are published without checking who made them' });
    }
    this.ticker = setInterval(() => this.tick(), PROGRESS_EVERY_MS);
    this.syncing = this.syncLoop();
    this.log.info('agent-started', { name: this.config.name, peerPort: engine.port, dataDir: this.config.dataDir, controller: `tcp://${this.config.controller.host}:${this.config.controller.port}` });
  }

  /** Stops announcing (trackers hear `stopped`), lets writes in flight finish, closes the engine. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    this.wake?.();
    for (const h of this.held.values()) h.cancel?.abort();
    await Promise.allSettled([...this.held.values()].map((h) => h.task));
    await Promise.allSettled([...this.held.values()].map((h) => this.detach(h)));
    await this.engine?.close();
    await this.hashPool?.close();
    await this.channel.close().catch(() => undefined);
    await this.syncing;
    this.log.info('agent-stopped', {});
  }

  // ---- the sync loop ------------------------------------------------------------

  private async syncLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        await this.refreshDiskFree();
        const res = parseSyncResponse(await this.channel.sync(this.syncRequest(), SYNC_WAIT_MS + 15_000));
        if (this.stopping) return;
        const back = failures > 0;
        if (back || !this.synced) this.log.info('controller-connected', { revision: res.revision, desired: res.desired.length });
        failures = 0;
        this.lastChannelError = '';
        this.synced = true;
        this.knownRevision = res.revision;
        this.last = res;
        await this.learnOrigin(res);
        this.reconcile();
        if (back) this.redialOrigin(res);
      } catch (err) {
        if (this.stopping) return;
        failures++;
        this.reportChannelError(err as Error);
        await this.sleep(backoff(failures, BACKOFF_MIN_MS, BACKOFF_MAX_MS));
      }
    }
  }

  /**
   * The controller answers again after an outage, so its origin may have restarted:
   * every download dials it now instead of when its backoff, grown through the outage,
   * would next allow (up to a minute later).
   */
  private redialOrigin(res: AgentSyncResponse): void {
    if (res.origin.port <= 0) return;
    for (const h of this.held.values()) {
      if (h.state === 'downloading' && h.torrent && !h.torrent.complete) h.torrent.redial([{ host: res.origin.host, port: res.origin.port }]);
    }
  }

  private reportChannelError(err: Error): void {
    const refused = err instanceof ChannelRefusedError;
    const message = refused ? `the controller refused this agent (${err.code}): ${err.message}` : `cannot reach the controller at ${this.config.controller.host}:${this.config.controller.port}: ${err.message}`;
    if (message === this.lastChannelError) return;
    this.lastChannelError = message;
    if (refused) this.log.error('controller-refused', { code: err.code, message, hint: err.code === 'unauthorized' ? 'check SWARMSHIP_AGENT_TOKEN' : undefined });
    else this.log.warn('controller-unreachable', { message, retrying: true, holding: this.held.size });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private syncRequest(): AgentSyncRequest {
    // The first call is answered at once: revisions start at 0, so holding it would
    // leave a new agent idle for a whole poll.
    return { token: this.config.token, agent: this.identity(), holdings: this.holdings(), knownRevision: this.knownRevision, waitMs: this.synced ? SYNC_WAIT_MS : 0 };
  }

  identity(): AgentIdentity {
    return {
      name: this.config.name,
      labels: this.config.labels,
      addresses: [this.config.advertiseAddress],
      peerPort: this.peerPort,
      diskFreeBytes: this.diskFree,
      version: SWARMSHIP_VERSION,
    };
  }

  private async refreshDiskFree(): Promise<void> {
    this.diskFree = await this.store.freeBytes().catch(() => this.diskFree);
  }

  /** The origin's IP addresses, so bytes from it can be told from bytes from other agents. */
  private async learnOrigin(res: AgentSyncResponse): Promise<void> {
    const key = `${res.origin.host}:${res.origin.port}`;
    if (key === this.originKey) return;
    this.originKey = key;
    const hosts = new Set<string>();
    if (isIP(res.origin.host)) hosts.add(res.origin.host);
    else for (const a of await lookup(res.origin.host, { all: true }).catch(() => [])) hosts.add(a.address);
    this.originHosts = hosts;
  }

  // ---- what we hold -------------------------------------------------------------

  holdings(): Holding[] {
    return [...this.held.values()].map((h) => {
      this.sample(h);
      const total = h.metainfo?.length ?? 0;
      const verified = h.state === 'complete' ? total : (h.torrent?.stats().verifiedBytes ?? 0);
      const holding: Holding = {
        name: h.name,
        version: h.version,
        infoHash: h.infoHash,
        state: h.state,
        verifiedBytes: verified,
        totalBytes: total,
        bytesFromOrigin: h.fromOrigin,
        bytesFromPeers: h.fromPeers,
        bytesSent: h.sent,
      };
      if (h.error !== undefined) holding.error = h.error;
      if (h.completedAt !== undefined) holding.completedAt = h.completedAt;
      return holding;
    });
  }

  /** A release as the controller describes it, checked before anything touches the disk. */
  private adopt(d: { name: string; version: string; torrent: Buffer; unpack: boolean; infoHash?: string }): Held | undefined {
    const key = `${d.name}/${d.version}`;
    const h: Held = {
      key, name: d.name, version: d.version, infoHash: d.infoHash ?? '', metainfo: undefined, torrentBytes: d.torrent, unpack: d.unpack,
      state: 'pending', failures: 0, fromOrigin: 0, fromPeers: 0, sent: 0, seen: { kept: 0, sent: 0, hashFailures: 0, peers: new Map() },
    };
    const refuse = (error: string) => {
      if (!safeElement(d.name) || !safeElement(d.version)) return undefined;
      h.state = 'failed';
      h.error = error;
      this.held.set(key, h);
      this.log.error('release-refused', { release: key, error });
      return h;
    };
    if (!safeElement(d.name) || !safeElement(d.version)) {
      this.log.error('release-refused', { release: key, error: 'name or version is not a safe path element' });
      return undefined;
    }
    try {
      h.metainfo = parseTorrent(d.torrent);
    } catch (err) {
      return refuse(`the controller's torrent is invalid: ${(err as Error).message}`);
    }
    const hash = h.metainfo.infoHash.toString('hex');
    if (d.infoHash !== undefined && d.infoHash.toLowerCase() !== hash) return refuse(`the torrent's info hash ${hash} is not the release's ${d.infoHash}`);
    h.infoHash = hash;
    if (h.unpack && !(h.metainfo.singleFile && isTarball(h.metainfo.name))) return refuse(`unpack needs a single .tar, .tar.gz or .tgz file; the artifact is ${h.metainfo.name}`);
    this.held.set(key, h);
    return h;
  }

  private adoptDesired(d: DesiredRelease): Held | undefined {
    let torrent: Buffer;
    try {
      torrent = Buffer.from(d.torrent, 'base64');
    } catch {
      torrent = Buffer.alloc(0);
    }
    const h = this.adopt({ name: d.name, version: d.version, torrent, unpack: d.unpack === true, infoHash: d.infoHash });
    if (h) h.signed = signedOf(d);
    return h;
  }

  // ---- reconciling --------------------------------------------------------------

  private tick(): void {
    if (this.stopping) return;
    this.reconcile();
    void this.report();
  }

  /** Brings what we hold toward what the controller last asked for; cheap, called often. */
  private reconcile(): void {
    if (this.stopping) return;
    const now = this.now();
    const res = this.last;
    if (res) {
      const wanted = new Set<string>();
      for (const d of res.desired) {
        const key = `${d.name}/${d.version}`;
        wanted.add(key);
        let h = this.held.get(key);
        if (h && h.infoHash !== d.infoHash.toLowerCase() && h.metainfo) {
          // Same name and version, other content: the old copy goes first.
          wanted.delete(key);
          if (!h.task) this.startTask(h, () => this.remove(h!, 'replaced by other content'));
          continue;
        }
        h ??= this.adoptDesired(d);
        if (!h) continue;
        // The latest signature counts: a controller whose key was rotated re-signs.
        h.signed = signedOf(d);
        h.removeAt = undefined;
        if (h.task || !h.metainfo) continue;
        // Like the signature, checked against the manifest when a download starts; never
        // changed under a running one, and meaningless once the release is published.
        if (h.state !== 'complete') h.unpack = d.unpack === true;
        if (h.state === 'pending' || h.state === 'removing' || (h.state === 'failed' && this.retryDue(h, now))) {
          h.refusedManifest = undefined;
          this.startTask(h, (signal) => this.obtain(h!, signal));
        }
      }
      for (const h of this.held.values()) {
        if (wanted.has(h.key)) continue;
        if (h.removeAt === undefined) {
          h.removeAt = now + res.retireGraceSeconds * 1000;
          this.log.info('release-retired', { release: h.key, removeInSeconds: res.retireGraceSeconds });
          if (h.state !== 'complete') {
            h.cancel?.abort();
            h.state = 'removing';
          }
        }
        // A removal that failed (a link where the release was) waits for its retry time.
        if (now >= h.removeAt && !h.task && (h.retryAt === undefined || now >= h.retryAt)) this.startTask(h, () => this.remove(h, 'retired'));
      }
      this.pruneOldVersions(wanted);
    }
    this.stopSeedingExpired(now);
  }

  /** A failed release is tried again: after its backoff, or when the controller sends another manifest than the one its artifact failed. */
  private retryDue(h: Held, now: number): boolean {
    if (h.refusedManifest !== undefined) return h.signed?.manifest !== h.refusedManifest;
    return h.retryAt !== undefined && now >= h.retryAt;
  }

  /** Per artifact, published copies beyond the kept count go, oldest first; desired ones always stay. */
  private pruneOldVersions(wanted: Set<string>): void {
    const byName = new Map<string, Held[]>();
    for (const h of this.held.values()) {
      if (h.state !== 'complete' && h.state !== 'removing') continue;
      byName.set(h.name, [...(byName.get(h.name) ?? []), h]);
    }
    for (const list of byName.values()) {
      if (list.length <= this.config.keepVersions) continue;
      list.sort((a, b) => (b.completedAt ?? 0) - (a.completedAt ?? 0));
      let keep = this.config.keepVersions - list.filter((h) => wanted.has(h.key)).length;
      for (const h of list) {
        if (wanted.has(h.key)) continue;
        if (keep-- > 0) continue;
        if (!h.task) this.startTask(h, () => this.remove(h, `more than ${this.config.keepVersions} versions of ${h.name}`));
      }
    }
  }

  private stopSeedingExpired(now: number): void {
    if (!Number.isFinite(this.config.seedSeconds)) return;
    for (const h of this.held.values()) {
      if (h.state !== 'complete' || !h.torrent || h.task || h.completedAt === undefined) continue;
      if (now - h.completedAt < this.config.seedSeconds * 1000) continue;
      this.startTask(h, async () => {
        await this.detach(h);
        this.log.info('seeding-stopped', { release: h.key, afterSeconds: this.config.seedSeconds });
      });
    }
  }

  private startTask(h: Held, run: (signal: AbortSignal) => Promise<void>): void {
    const cancel = new AbortController();
    h.cancel = cancel;
    h.task = run(cancel.signal)
      .catch((err: Error) => this.failed(h, err))
      .finally(() => {
        h.task = undefined;
        h.cancel = undefined;
        this.reportDirty = true;
        if (this.stopping) return;
        setImmediate(() => this.reconcile());
        void this.report();
      });
  }

  private async failed(h: Held, err: Error): Promise<void> {
    await this.detach(h);
    if (err instanceof Cancelled || this.stopping) return;
    h.failures++;
    const noSpace = (err as NodeJS.ErrnoException).code === 'ENOSPC' || /ENOSPC|no space left/i.test(err.message);
    h.state = 'failed';
    h.error = noSpace ? 'no space left on device' : err.message;
    this.metrics.releaseFailures.inc({ reason: noSpace ? 'no-space' : err instanceof ReleaseRefusedError ? 'refused' : 'other' });
    if (err instanceof ArtifactRefusedError) {
      h.refusedManifest = err.manifest;
      h.retryAt = undefined;
      this.log.error('release-refused', { release: h.key, error: h.error, retry: 'when the controller sends another manifest' });
      return;
    }
    h.retryAt = this.now() + backoff(h.failures, RETRY_MIN_MS, RETRY_MAX_MS);
    if (noSpace) await this.store.removeStaging(h.name, h.version).catch(() => undefined);
    this.log.error(err instanceof ReleaseRefusedError ? 'release-refused' : 'release-failed', { release: h.key, error: h.error, retryInSeconds: Math.round((h.retryAt - this.now()) / 1000) });
  }

  // ---- download, publish, serve, remove -----------------------------------------

  private async obtain(h: Held, signal: AbortSignal): Promise<void> {
    const metainfo = h.metainfo!;
    const published = await this.store.isPublished(h.name, h.version);
    if (published) return this.servePublished(h, published.at, false);
    // Checked before a byte is fetched or a file made: a forged release costs nothing.
    const checked = this.checkManifest(h);
    const manifest = checked?.manifest;
    h.state = 'downloading';
    h.error = undefined;
    h.startedAt = this.now();
    this.reportDirty = true;
    const staging = await this.store.prepareStaging(h.name, h.version, [UNPACK_DIR]);
    const needed = metainfo.length - (await allocatedBytes(staging));
    const free = await this.store.freeBytes();
    if (needed > free) throw Object.assign(new Error(`no space left on device: ${needed} bytes needed, ${free} free`), { code: 'ENOSPC' });
    await this.store.saveTorrent({ name: h.name, version: h.version, torrent: h.torrentBytes!, unpack: h.unpack });
    const origin = this.last?.origin;
    const torrent = await this.engine!.addTorrent(metainfo, {
      dir: staging,
      mode: 'download',
      peers: origin && origin.port > 0 ? [{ host: origin.host, port: origin.port }] : [],
      onCheckProgress: () => {
        h.state = 'verifying';
      },
    });
    h.state = 'downloading';
    this.attach(h, torrent);
    this.reportDirty = true;
    void this.report();
    this.log.info('download-started', { release: h.key, bytes: metainfo.length, resumedBytes: torrent.stats().verifiedBytes });
    try {
      await new Promise<void>((resolve, reject) => {
        // An abort while the torrent was being added (its files checked) fires no event now.
        if (signal.aborted) return reject(new Cancelled());
        if (torrent.complete) return resolve();
        torrent.once('complete', resolve);
        torrent.once('error', reject);
        signal.addEventListener('abort', () => reject(new Cancelled()), { once: true });
      });
    } catch (err) {
      await this.detach(h);
      throw err;
    }
    this.log.info('downloaded', { release: h.key, seconds: Math.round(this.now() - h.startedAt!) / 1000 });
    await this.detach(h);
    let sha256: string | undefined;
    if (manifest?.piecesSha256 !== undefined) {
      // Every piece matched its SHA-256 in the list the manifest vouches for: the artifact is the signed one.
      sha256 = manifest.sha256;
    } else if (manifest) {
      h.state = 'verifying';
      this.reportDirty = true;
      sha256 = await this.checkArtifact(h, staging, manifest, checked.signed);
    }
    h.state = 'publishing';
    this.reportDirty = true;
    if (h.unpack) {
      // What an unpacking cut short by a crash left behind.
      await rm(join(staging, UNPACK_DIR), { recursive: true, force: true });
      const result = await extractTar(join(staging, metainfo.name), join(staging, UNPACK_DIR));
      this.log.info('unpacked', { release: h.key, files: result.files, bytes: result.bytes });
    }
    const dir = await this.store.publish(h.name, h.version);
    const at = this.now();
    this.metrics.downloadDuration.observe((at - h.startedAt) / 1000);
    await this.servePublished(h, at, true);
    this.log.info('published', { release: h.key, path: dir, bytes: metainfo.length, fromOrigin: h.fromOrigin, fromPeers: h.fromPeers, sha256 });
    if (this.config.onPublish) await this.runOnPublish(h, dir);
  }

  /**
   * The release's manifest, verified: signed by a trusted key and naming this very
   * torrent (name, version, info hash, size) and whether it is unpacked. Undefined when
   * unsigned releases are allowed and there is nothing to check. Throws
   * ReleaseRefusedError with the reason.
   */
  private checkManifest(h: Held): { manifest: ReleaseManifest; signed: string } | undefined {
    if (h.unpack && !(h.metainfo!.singleFile && isTarball(h.metainfo!.name))) {
      throw new ReleaseRefusedError(`refused: unpack needs a single .tar, .tar.gz or .tgz file; the artifact is ${h.metainfo!.name}; nothing downloaded`);
    }
    const s = h.signed;
    if (!s) {
      if (this.config.allowUnsigned) return undefined;
      throw new ReleaseRefusedError('refused: the controller sent no signed manifest for this release (is it older than signed releases?); nothing downloaded');
    }
    if (this.config.trustedKeys.length === 0) return undefined;
    let manifest: ReleaseManifest;
    try {
      manifest = verifyManifest(Buffer.from(s.manifest, 'base64'), Buffer.from(s.signature, 'base64'), this.config.trustedKeys, s.keyId).manifest;
    } catch (err) {
      if (err instanceof ManifestError) throw new ReleaseRefusedError(`refused: ${err.message}; nothing downloaded`);
      throw err;
    }
    const given = { name: h.name, version: h.version, infoHash: h.infoHash, size: h.metainfo!.length, unpack: h.unpack, pieceSha256: h.metainfo!.pieceSha256 };
    const mismatch = manifestMismatch(manifest, given);
    if (mismatch) throw new ReleaseRefusedError(`refused: ${mismatch}; nothing downloaded`);
    return { manifest, signed: s.manifest };
  }

  /**
   * SHA-256 of the whole downloaded artifact against the signed manifest, before it is
   * published, for manifests that do not vouch for piece SHA-256s (signed before they
   * existed). Every piece matched its SHA-1 already; this closes the gap a SHA-1
   * collision would leave. Read and hashed on a hash worker, 1 MiB at a time. On a
   * mismatch the download is thrown away, nothing is published, and the release waits
   * for another manifest (`signed`, as sent) before it is downloaded again.
   */
  private async checkArtifact(h: Held, staging: string, manifest: ReleaseManifest, signed: string): Promise<string> {
    const m = h.metainfo!;
    const files = layoutFiles(staging, m.name, m.files, m.singleFile).filter((f) => !f.pad);
    const digest = (await this.hashPool!.sha256Files(files.map((f) => ({ path: f.path, position: 0, length: f.length })))).toString('hex');
    if (digest !== manifest.sha256) {
      await this.store.removeStaging(h.name, h.version);
      throw new ArtifactRefusedError(
        `refused: the downloaded artifact's SHA-256 ${digest} is not the signed manifest's ${manifest.sha256}; nothing published, the download was discarded; not downloaded again until the controller sends another manifest (a re-publish or a re-sign)`,
        signed,
      );
    }
    return digest;
  }

  /** Seeds a published copy; after a restart its files are checked first (`trust` only right after publishing). */
  private async servePublished(h: Held, at: number, trust: boolean): Promise<void> {
    const metainfo = h.metainfo!;
    const torrent = await this.engine!.addTorrent(metainfo, { dir: this.store.releaseDir(h.name, h.version), mode: 'seed', trustFiles: trust });
    if (!torrent.complete) {
      await this.engine!.removeTorrent(torrent.infoHashHex);
      h.state = 'failed';
      h.error = `the published copy at ${this.store.releaseDir(h.name, h.version)} no longer matches its torrent; not served`;
      this.log.error('release-corrupt', { release: h.key, error: h.error });
      return;
    }
    h.state = 'complete';
    h.error = undefined;
    h.failures = 0;
    h.retryAt = undefined;
    h.completedAt = at;
    this.attach(h, torrent);
  }

  private async runOnPublish(h: Held, dir: string): Promise<void> {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn('/bin/sh', ['-c', this.config.onPublish!], {
        cwd: dir,
        env: { ...hookEnvironment(process.env), SWARMSHIP_RELEASE_NAME: h.name, SWARMSHIP_RELEASE_VERSION: h.version, SWARMSHIP_RELEASE_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4000));
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.once('error', (err) => {
        out += err.message;
        resolve(null);
      });
      child.once('close', (c) => {
        this.log.info('on-publish-finished', { release: h.key, exitCode: c, output: out.trim() });
        resolve(c);
      });
    });
    if (code !== 0) {
      h.state = 'failed';
      h.error = `published at ${dir}, but the post-publish command failed (exit ${code ?? 'error'})`;
      this.log.error('on-publish-failed', { release: h.key, error: h.error });
    }
  }

  private async remove(h: Held, why: string): Promise<void> {
    h.state = 'removing';
    await this.detach(h);
    await this.store.removeRelease(h.name, h.version);
    this.held.delete(h.key);
    this.log.info('release-removed', { release: h.key, reason: why });
  }

  // ---- the engine side ----------------------------------------------------------

  private attach(h: Held, torrent: Torrent): void {
    h.torrent = torrent;
    h.seen = { kept: 0, sent: 0, hashFailures: 0, peers: new Map() };
    // Sampled each second, and on the last piece: the origin's connection (a seed's) is
    // closed right after it lands, and its bytes must be counted as its own. Not on every
    // piece: a sample walks every peer's counters, 1.7 % of an agent's CPU at 16 nodes.
    h.onPiece = () => {
      this.metrics.piecesVerified.inc();
      if (torrent.complete) this.sample(h);
    };
    torrent.on('piece', h.onPiece);
    h.onBanned = (address, reason) => {
      this.metrics.peersBanned.inc();
      this.log.warn('peer-banned', { release: h.key, address, reason });
    };
    torrent.on('banned', h.onBanned);
    torrent.on('error', () => undefined);
    const tiers = announceTiers(h.metainfo!);
    const announceUrl = this.last?.announceUrl;
    h.announcing = announceTorrent(torrent, tiers.length > 0 ? tiers : announceUrl ? [[announceUrl]] : [], {
      peerId: this.engine!.peerId,
      port: this.engine!.port,
      clock: this.engine!.clock,
      random: this.engine!.random,
    });
  }

  private async detach(h: Held): Promise<void> {
    const torrent = h.torrent;
    if (!torrent) return;
    this.sample(h);
    if (h.onPiece) torrent.off('piece', h.onPiece);
    if (h.onBanned) torrent.off('banned', h.onBanned);
    const announcing = h.announcing;
    h.torrent = undefined;
    h.announcing = undefined;
    await announcing?.stop().catch(() => undefined);
    await this.engine?.removeTorrent(torrent.infoHashHex);
  }

  /** Adds what the torrent moved since the last sample to the release's and the metrics' counters. */
  private sample(h: Held): void {
    const t = h.torrent;
    if (!t) return;
    const s = t.stats();
    const seen = h.seen;
    let fromOrigin = 0;
    const current = new Map<string, number>();
    for (const p of s.peerStats) {
      const kept = p.downloadedBytes - p.wastedBytes;
      const before = seen.peers.get(p.address) ?? 0;
      current.set(p.address, kept);
      if (this.isOrigin(p.address, p.listenPort)) fromOrigin += kept >= before ? kept - before : kept;
    }
    seen.peers = current;
    const kept = s.downloadedBytes - s.wastedBytes;
    const received = Math.max(0, kept - seen.kept);
    seen.kept = kept;
    fromOrigin = Math.min(Math.max(0, fromOrigin), received);
    h.fromOrigin += fromOrigin;
    h.fromPeers += received - fromOrigin;
    if (fromOrigin > 0) this.metrics.receivedBytes.inc({ source: 'origin' }, fromOrigin);
    if (received - fromOrigin > 0) this.metrics.receivedBytes.inc({ source: 'peer' }, received - fromOrigin);
    const sent = Math.max(0, s.uploadedBytes - seen.sent);
    seen.sent = s.uploadedBytes;
    h.sent += sent;
    if (sent > 0) this.metrics.sentBytes.inc(sent);
    const failures = Math.max(0, s.hashFailures - seen.hashFailures);
    seen.hashFailures = s.hashFailures;
    if (failures > 0) this.metrics.hashFailures.inc(failures);
  }

  private isOrigin(address: string, listenPort: number | undefined): boolean {
    if (!this.last) return false;
    const cut = address.lastIndexOf(':');
    const host = address.slice(0, cut).replace(/^::ffff:/, '');
    const port = Number(address.slice(cut + 1));
    if (!this.originHosts.has(host)) return false;
    return port === this.last.origin.port || listenPort === this.last.origin.port;
  }

  // ---- reporting ----------------------------------------------------------------

  /** Progress about every second while anything moves, and once after each change. */
  private async report(): Promise<void> {
    if (this.reporting || !this.synced) return;
    const busy = [...this.held.values()].some((h) => h.state === 'pending' || h.state === 'downloading' || h.state === 'verifying' || h.state === 'publishing' || h.state === 'removing');
    if (!busy && !this.reportDirty) {
      for (const h of this.held.values()) this.sample(h);
      return;
    }
    this.reportDirty = false;
    this.reporting = true;
    let sent = false;
    try {
      await this.channel.progress({ token: this.config.token, agentName: this.config.name, holdings: this.holdings() });
      sent = true;
      // The controller answers again: the sync loop need not sleep out its backoff.
      if (this.lastChannelError !== '') this.wake?.();
    } catch (err) {
      this.reportDirty = true;
      this.reportChannelError(err as Error);
    } finally {
      this.reporting = false;
    }
    // A change while this report was on its way (a copy published) is told now, not at
    // the next tick: `publish --wait` hears of the last node as soon as it is done.
    if (sent && this.reportDirty && !this.stopping) void this.report();
  }
}

/**
 * The post-publish command's environment: the agent's own, without its secrets. The
 * command is the operator's, but it runs beside release content and its output is logged,
 * so a token there would end up in the log of anything that prints its environment.
 */
export function hookEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (k !== 'SWARMSHIP_AGENT_TOKEN' && k !== 'SWARMSHIP_TOKEN') out[k] = v;
  return out;
}

function signedOf(d: DesiredRelease): SignedRelease | undefined {
  if (typeof d.manifest !== 'string' || typeof d.signature !== 'string') return undefined;
  return { manifest: d.manifest, signature: d.signature, keyId: typeof d.signingKey === 'string' ? d.signingKey : undefined };
}

/** Exponential backoff with full jitter in the upper half, so a fleet does not retry in step. */
function backoff(failures: number, min: number, max: number): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(20, failures - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Bytes actually on disk below `dir` (sparse files count what is written, not their length). */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += await allocatedBytes(p);
    else if (entry.isFile()) total += ((await stat(p).catch(() => undefined))?.blocks ?? 0) * 512;
  }
  return total;
}
