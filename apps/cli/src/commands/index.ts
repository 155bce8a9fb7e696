import type { Command } from '../command.js';
import { trackerCommand } from './tracker.js';
import { seedCommand } from './seed.js';
import { downloadCommand } from './download.js';
import { createCommand } from './create.js';
import { infoCommand } from './info.js';

/** Every command of `swarmship`, in the order `--help` lists them. */
export const commands: Command[] = [
  createCommand,
  infoCommand,
  seedCommand,
  downloadCommand,
  trackerCommand,
];
