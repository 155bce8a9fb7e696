export * from './messages.js';
export * from './encode.js';
export * from './decode.js';
