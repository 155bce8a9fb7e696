export {
  infoHashOf,
  isValidPieceLength,
  MAX_PIECE_LENGTH,
  MetainfoError,
  MIN_PIECE_LENGTH,
  pieceHash,
  PIECES_SHA256_KEY,
  pieceSize,
  unsafePathElement,
  type Metainfo,
  type MetainfoErrorCode,
  type MetainfoFile,
} from './metainfo.js';
export { parseTorrent } from './parse.js';
export { choosePieceLength, createTorrent, CreateTorrentError, type CreateTorrentErrorCode, type CreateTorrentOptions } from './create.js';
export { MagnetError, parseMagnet, toMagnet, trackersOf, type MagnetErrorCode, type MagnetLink } from './magnet.js';
