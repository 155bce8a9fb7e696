/**
 * Every fuzz target, in the order the fuzz script runs them. Each one mixes random input
 * with structure-aware mutations of valid input (test/fuzz/mutate.ts) and checks that a
 * call returns a valid value or throws its module's own error type, quickly.
 */
import type { FuzzTarget } from './runner.js';
import { agentChannelTarget } from './targets/agent-channel.js';
import { bencodeTarget } from './targets/bencode.js';
import { agentConfigTarget, controllerConfigTarget } from './targets/config.js';
import { manifestTarget } from './targets/manifest.js';
import { magnetTarget, metainfoTarget } from './targets/metainfo.js';
import { multipartTarget, publishTarget } from './targets/rest.js';
import { announceTarget, scrapeTarget } from './targets/tracker.js';
import { extensionTarget, wireTarget } from './targets/wire.js';

export const TARGETS: FuzzTarget<never>[] = [
  bencodeTarget,
  metainfoTarget,
  magnetTarget,
  wireTarget,
  extensionTarget,
  announceTarget,
  scrapeTarget,
  publishTarget,
  multipartTarget,
  agentChannelTarget,
  manifestTarget,
  agentConfigTarget,
  controllerConfigTarget,
] as FuzzTarget<never>[];

export function targetNamed(name: string): FuzzTarget<never> | undefined {
  return TARGETS.find((t) => t.name === name);
}
