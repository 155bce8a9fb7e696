export { HashPool, HashReadError, type ReadSegment, type WriteSegment, type VerifyResult } from './hash-pool.js';
