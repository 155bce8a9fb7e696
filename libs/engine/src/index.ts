export { Engine, type EngineOptions, type AddTorrentOptions, type TorrentDescriptor } from './engine.js';
export { DigestListError, Torrent, type TorrentInfo, type TorrentStats, type PeerStats } from './torrent.js';
export { Bitfield } from './bitfield.js';
export { PiecePicker } from './piece-picker.js';
export { FileStorage, StorageError, layoutFiles, type PieceStorage, type StoredFile } from './storage.js';
export { checkPieces } from './check.js';
export { systemClock, ManualClock, type Clock, type Random } from './clock.js';
export type { PeerAddress } from './peer-book.js';
export { announceTorrent, announceTiers, type Announcing } from './announce.js';
