export { HashPool, type WriteSegment, type VerifyResult } from './hash-pool.js';
