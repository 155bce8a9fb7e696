import { AnnounceLoop, trackerTiers } from '../../tracker/src/announce-loop.js';
import type { Clock, Random } from './clock.js';
import type { Torrent } from './torrent.js';

export interface Announcing {
  stop(): Promise<void>;
}

/**
 * Keeps a torrent announced to its trackers: peers they return are dialled, the
 * `completed` event goes out when the download completes, `stopped` on stop().
 */
export function announceTorrent(
  torrent: Torrent,
  announceList: string[][],
  options: { peerId: Buffer; port: number; clock: Clock; random: Random; onError?: (err: Error) => void },
): Announcing | undefined {
  const tiers = trackerTiers(announceList);
  if (tiers.length === 0) return undefined;
  const loop = new AnnounceLoop({
    tiers,
    infoHash: torrent.info.infoHash,
    peerId: options.peerId,
    port: options.port,
    clock: options.clock,
    random: options.random,
    stats: () => {
      const s = torrent.stats();
      return { uploaded: s.uploadedBytes, downloaded: s.downloadedBytes, left: s.length - s.verifiedBytes };
    },
    onPeers: (peers) => torrent.addPeers(peers.map((p) => ({ host: p.host, port: p.port }))),
    onError: (err) => options.onError?.(err),
  });
  // A torrent complete from the start announces left=0: a seed, not a completion.
  if (!torrent.complete) torrent.once('complete', () => loop.markCompleted());
  loop.start();
  return { stop: () => loop.stop() };
}

/** The tiers of a torrent: announce-list if present, else the single announce URL (BEP 12). */
export function announceTiers(m: { announce?: string; announceList: string[][] }): string[][] {
  if (m.announceList.length > 0) return m.announceList;
  return m.announce ? [[m.announce]] : [];
}
