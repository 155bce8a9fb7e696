import type { Command } from '../command.js';
import { trackerCommand } from './tracker.js';

/** Every command of `swarmship`, in the order `--help` lists them. */
export const commands: Command[] = [
  trackerCommand,
];
