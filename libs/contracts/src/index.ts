export { SWARMSHIP_VERSION } from './version.js';
