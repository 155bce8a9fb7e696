export { HashPool, HashReadError, type ReadSegment, type WriteSegment, type VerifyResult, type PieceDigests, type DigestWriteResult } from './hash-pool.js';
export { fileDigests, type FileDigests } from './file-digests.js';
