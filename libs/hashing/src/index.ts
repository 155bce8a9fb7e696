export { HashPool } from './hash-pool.js';
