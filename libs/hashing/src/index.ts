export { HashPool, HashReadError, type ReadSegment, type WriteSegment, type VerifyResult, type PieceDigests } from './hash-pool.js';
