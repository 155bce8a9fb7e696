import type { Command } from '../command.js';
import { trackerCommand } from './tracker.js';
import { seedCommand } from './seed.js';
import { downloadCommand } from './download.js';
import { createCommand } from './create.js';
import { infoCommand } from './info.js';
import { agentCommand } from './agent.js';
import { controllerCommand } from './controller.js';
import { publishCommand } from './publish.js';
import { agentsCommand, releasesCommand, retireCommand, statusCommand } from './fleet-queries.js';

/** Every command of `swarmship`, in the order `--help` lists them. */
export const commands: Command[] = [
  publishCommand,
  statusCommand,
  releasesCommand,
  agentsCommand,
  retireCommand,
  controllerCommand,
  agentCommand,
  createCommand,
  infoCommand,
  seedCommand,
  downloadCommand,
  trackerCommand,
];
