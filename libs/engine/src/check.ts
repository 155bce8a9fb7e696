import type { HashPool } from '../../hashing/src/hash-pool.js';
import { Bitfield } from './bitfield.js';
import type { PieceStorage } from './storage.js';
import { expectedDigest, pieceDigest, type TorrentInfo } from './torrent.js';

const PIECES_IN_FLIGHT = 8;

/**
 * Which pieces on disk match their hashes: resume after a crash or restart, and the
 * proof a seeder's files are what the torrent says. Reads run ahead of hashing so both
 * the disk and the hash workers stay busy; memory is PIECES_IN_FLIGHT pieces.
 */
export async function checkPieces(
  info: TorrentInfo,
  storage: PieceStorage,
  hashPool: HashPool,
  onProgress?: (checkedPieces: number, total: number) => void,
): Promise<Bitfield> {
  const have = new Bitfield(info.pieceCount);
  let next = 0;
  let checked = 0;
  const worker = async () => {
    const buffer = Buffer.from(new SharedArrayBuffer(info.pieceLength));
    for (;;) {
      const index = next++;
      if (index >= info.pieceCount) return;
      const size = index === info.pieceCount - 1 ? info.length - index * info.pieceLength : info.pieceLength;
      const view = buffer.subarray(0, size);
      await storage.read(index * info.pieceLength, view);
      const digest = await pieceDigest(hashPool, info, view);
      if (digest.equals(expectedDigest(info, index))) have.set(index);
      onProgress?.(++checked, info.pieceCount);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PIECES_IN_FLIGHT, info.pieceCount) }, worker));
  return have;
}
