export { SWARMSHIP_VERSION } from './version.js';
export * from './agent-channel.js';
export * from './rest.js';
export * from './rate.js';
