import type { Command } from '../command.js';

/** A command as the command list knows it: its module is loaded only when it runs. */
export interface CommandEntry {
  name: string;
  /** One line for the command list. */
  summary: string;
  load(): Promise<Command>;
}

// Loading every command's module up front (the engine, the tracker, YAML…) cost each
// run of the CLI about 50 ms before it did anything, `swarmship publish` in CI included.
/** Every command of `swarmship`, in the order `--help` lists them. */
export const commands: CommandEntry[] = [
  { name: 'publish', summary: 'Publish an artifact as a release and (with --wait) follow its rollout to the fleet.', load: async () => (await import('./publish.js')).publishCommand },
  { name: 'status', summary: "Show a release's rollout: nodes complete, downloading, failed, and why.", load: async () => (await import('./fleet-queries.js')).statusCommand },
  { name: 'releases', summary: 'List releases (`swarmship releases ls`).', load: async () => (await import('./fleet-queries.js')).releasesCommand },
  { name: 'agents', summary: 'List the agents the controller knows (`swarmship agents ls`).', load: async () => (await import('./fleet-queries.js')).agentsCommand },
  { name: 'retire', summary: 'Retire a release: agents delete it after a grace period.', load: async () => (await import('./fleet-queries.js')).retireCommand },
  { name: 'controller', summary: 'Run the controller: release API, private tracker, origin seeder, agent channel.', load: async () => (await import('./controller.js')).controllerCommand },
  { name: 'agent', summary: 'Run a node agent: sync releases from the controller, download, publish, seed.', load: async () => (await import('./agent.js')).agentCommand },
  { name: 'create', summary: 'Make a .torrent of a file or directory (same info hash as mktorrent).', load: async () => (await import('./create.js')).createCommand },
  { name: 'info', summary: 'Show and check what a .torrent holds.', load: async () => (await import('./info.js')).infoCommand },
  { name: 'seed', summary: 'Serve a torrent from its data (optionally BEP 16 super-seeding).', load: async () => (await import('./seed.js')).seedCommand },
  { name: 'download', summary: 'Download a torrent, verifying every piece; resumes what is already on disk.', load: async () => (await import('./download.js')).downloadCommand },
  { name: 'tracker', summary: 'Run a standalone BitTorrent tracker (optionally private to given info hashes).', load: async () => (await import('./tracker.js')).trackerCommand },
];
