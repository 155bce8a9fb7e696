import { isIP } from 'node:net';
import { Engine } from '../../engine/src/engine.js';
import type { Torrent } from '../../engine/src/torrent.js';
import type { HashPool } from '../../hashing/src/hash-pool.js';
import type { TrackerCore } from '../../tracker/src/core.js';
import type { Release } from './release-store.js';

export interface OriginOptions {
  host: string;
  peerPort: number;
  /** Bytes per second over all releases. */
  uploadRateLimit: number;
  superSeed: boolean;
  hashPool: HashPool;
  /** The embedded tracker: the origin lists itself there under `publicHost`. */
  tracker: TrackerCore;
  publicHost: string;
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

/** How often the origin re-lists itself with the tracker; well inside the tracker's expiry. */
const RELIST_MS = 20_000;

/**
 * The controller's own seeder: one engine seeding every live release. A new release is
 * super-seeded, so the origin sends each piece about once and the fleet trades the rest;
 * the engine switches to plain seeding by itself once a full copy exists outside.
 */
export class OriginSeeder {
  readonly engine: Engine;
  private readonly torrents = new Map<string, Torrent>();
  /** Bytes sent for torrents no longer seeded, so the total never goes backwards. */
  private retiredSent = 0;
  private relist: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: OriginOptions) {
    this.engine = new Engine({ host: options.host, port: options.peerPort, uploadRateLimit: options.uploadRateLimit, hashPool: options.hashPool });
  }

  get port(): number {
    return this.engine.port;
  }

  async start(): Promise<void> {
    await this.engine.listen();
    this.relist = setInterval(() => this.listAll(), RELIST_MS);
    this.relist.unref();
  }

  /** Seeds a release; content outside the data dir is checked against its hashes first. */
  async seed(release: Release): Promise<void> {
    const key = release.record.infoHash;
    if (this.torrents.has(key)) return;
    const torrent = await this.engine.addTorrent(release.metainfo, {
      contentPath: release.contentPath,
      mode: 'seed',
      superSeed: this.options.superSeed,
      trustFiles: !release.external,
      // The controller wrote its own copy past the page cache (PieceIngest); reads follow.
      directIo: !release.external,
    });
    if (!torrent.complete) {
      await this.engine.removeTorrent(key);
      throw new Error(`${release.contentPath} no longer matches the release's torrent (${torrent.stats().verifiedPieces} of ${release.metainfo.pieceCount} pieces verify)`);
    }
    this.track(release, torrent);
  }

  /**
   * Seeds a release whose upload is still arriving: each piece from when pieceLanded()
   * says it is on disk and verified, so the fleet starts before the last byte is in.
   */
  async seedGrowing(release: Release): Promise<void> {
    const key = release.record.infoHash;
    if (this.torrents.has(key)) throw new Error(`release ${key} is seeded already`);
    const torrent = await this.engine.addTorrent(release.metainfo, { contentPath: release.contentPath, mode: 'growing', superSeed: this.options.superSeed, directIo: true });
    this.track(release, torrent);
  }

  pieceLanded(infoHash: string, index: number): void {
    this.torrents.get(infoHash)?.pieceLanded(index);
  }

  private track(release: Release, torrent: Torrent): void {
    const key = release.record.infoHash;
    const fields = { release: `${release.record.name}@${release.record.version}`, infoHash: key };
    torrent.on('super-seed-ended', () => this.options.onEvent?.('super-seed-ended', fields));
    torrent.on('error', (err: Error) => this.options.onEvent?.('seed-error', { ...fields, error: err.message }));
    this.torrents.set(key, torrent);
    this.list(torrent, undefined);
  }

  async unseed(infoHash: string): Promise<void> {
    const torrent = this.torrents.get(infoHash);
    if (!torrent) return;
    this.retiredSent += torrent.stats().uploadedBytes;
    this.list(torrent, 'stopped');
    this.torrents.delete(infoHash);
    await this.engine.removeTorrent(infoHash);
  }

  sentBytes(infoHash: string): number {
    return this.torrents.get(infoHash)?.stats().uploadedBytes ?? 0;
  }

  totalSentBytes(): number {
    let sum = this.retiredSent;
    for (const t of this.torrents.values()) sum += t.stats().uploadedBytes;
    return sum;
  }

  superSeeding(infoHash: string): boolean {
    return this.torrents.get(infoHash)?.superSeeding ?? false;
  }

  private listAll(): void {
    for (const t of this.torrents.values()) this.list(t, undefined);
  }

  /**
   * Puts the origin in its tracker's peer list directly (no HTTP to itself), so a client
   * that knows only the torrent, libtorrent or another agent, finds the origin too.
   * Needs an IP: a tracker's compact peer list cannot carry a DNS name.
   */
  private list(torrent: Torrent, event: 'stopped' | undefined): void {
    const family = isIP(this.options.publicHost);
    if (family === 0) return;
    this.options.tracker.announce(
      {
        infoHash: torrent.info.infoHash,
        peerId: this.engine.peerId,
        port: this.engine.port,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event,
        numwant: 0,
        compact: true,
        noPeerId: true,
        ip: undefined,
      },
      { address: this.options.publicHost, family: family as 4 | 6 },
    );
  }

  async close(): Promise<void> {
    if (this.relist) clearInterval(this.relist);
    for (const t of this.torrents.values()) this.list(t, 'stopped');
    this.torrents.clear();
    await this.engine.close();
  }
}
