import type { AgentSummary, ReleaseStatus } from '../../../../libs/contracts/src/rest.js';
import { UsageError, type Command, type CommandIo, type ParsedValues } from '../command.js';
import { CONTROLLER_OPTIONS_HELP, ControllerClient, controllerOptions, parseReleaseRef, releasePath, table } from '../controller-client.js';
import { formatBytes } from '../progress.js';

const seconds = (s: number | null) => (s === null ? '-' : `${s.toFixed(1)} s`);

function printStatus(io: CommandIo, s: ReleaseStatus): void {
  const r = s.rollout;
  io.stdout.write(
    [
      `${s.name}@${s.version}  ${formatBytes(s.bytes)}  ${s.infoHash}${s.retiredAt ? `  retired ${s.retiredAt}` : ''}`,
      `created ${s.createdAt}  selector ${Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(',') || '(all agents)'}`,
      `rollout: ${r.complete}/${r.targeted} complete, ${r.downloading} downloading, ${r.pending} pending, ${r.failed} failed`,
      `time to 50% ${seconds(r.timeTo50)}, 90% ${seconds(r.timeTo90)}, 100% ${seconds(r.timeTo100)}; origin sent ${(r.originBytesSent / Math.max(1, s.bytes)).toFixed(2)} copies`,
      '',
    ].join('\n'),
  );
  table(
    io,
    ['NODE', 'STATE', 'VERIFIED', 'FROM ORIGIN', 'FROM PEERS', 'ERROR'],
    r.nodes.map((n) => [n.agent, n.state, formatBytes(n.verifiedBytes), formatBytes(n.bytesFromOrigin), formatBytes(n.bytesFromPeers), n.error ?? '']),
  );
}

export const statusCommand: Command = {
  name: 'status',
  help: `Usage: swarmship status NAME[@VERSION] [--json]

Show the rollout of a release: how many targeted nodes hold a verified copy, which are
still downloading or failed (and why), bytes each got from the origin and from peers,
and the time to 50 %, 90 % and 100 %. Without @VERSION, the newest version of NAME.

Options:
${CONTROLLER_OPTIONS_HELP}
  -h, --help            Show this help.

Example:
  swarmship status app@1f2e3d4
`,
  options: { ...controllerOptions },
  positionals: [1, 1],
  async run(values: ParsedValues, [ref]: string[], io: CommandIo): Promise<number> {
    const { name, version } = parseReleaseRef(ref!, true);
    const client = await ControllerClient.fromOptions(values, io);
    let status: ReleaseStatus;
    if (version) status = await client.get<ReleaseStatus>(releasePath(name, version));
    else {
      const all = (await client.get<ReleaseStatus[]>('/releases')).filter((r) => r.name === name);
      const newest = all.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
      if (!newest) throw new UsageError(`no release named ${name}`);
      status = await client.get<ReleaseStatus>(releasePath(name, newest.version));
    }
    if (values.json === true) io.stdout.write(JSON.stringify(status) + '\n');
    else printStatus(io, status);
    return 0;
  },
};

export const releasesCommand: Command = {
  name: 'releases',
  help: `Usage: swarmship releases ls [--json]

List every release the controller holds, newest first, with its rollout progress.

Options:
${CONTROLLER_OPTIONS_HELP}
  -h, --help            Show this help.
`,
  options: { ...controllerOptions },
  positionals: [1, 1],
  async run(values: ParsedValues, [verb]: string[], io: CommandIo): Promise<number> {
    if (verb !== 'ls') throw new UsageError(`unknown action '${verb}': expected 'swarmship releases ls'`);
    const client = await ControllerClient.fromOptions(values, io);
    const all = (await client.get<ReleaseStatus[]>('/releases')).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    if (values.json === true) {
      io.stdout.write(JSON.stringify(all) + '\n');
      return 0;
    }
    table(
      io,
      ['RELEASE', 'SIZE', 'COMPLETE', 'FAILED', 'CREATED', 'STATE'],
      all.map((r) => [`${r.name}@${r.version}`, formatBytes(r.bytes), `${r.rollout.complete}/${r.rollout.targeted}`, String(r.rollout.failed), r.createdAt, r.retiredAt ? 'retired' : 'live']),
    );
    return 0;
  },
};

export const agentsCommand: Command = {
  name: 'agents',
  help: `Usage: swarmship agents ls [--json]

List the agents that have synced with the controller: whether each is active or lost
(silent past the controller's --agent-timeout; lost ones are forgotten after its
--agent-forget), labels, addresses, free disk, when each was last seen, and the releases
it holds.

Options:
${CONTROLLER_OPTIONS_HELP}
  -h, --help            Show this help.
`,
  options: { ...controllerOptions },
  positionals: [1, 1],
  async run(values: ParsedValues, [verb]: string[], io: CommandIo): Promise<number> {
    if (verb !== 'ls') throw new UsageError(`unknown action '${verb}': expected 'swarmship agents ls'`);
    const client = await ControllerClient.fromOptions(values, io);
    const agents = await client.get<AgentSummary[]>('/agents');
    if (values.json === true) {
      io.stdout.write(JSON.stringify(agents) + '\n');
      return 0;
    }
    table(
      io,
      ['AGENT', 'STATE', 'LABELS', 'ADDRESS', 'FREE DISK', 'LAST SEEN', 'RELEASES'],
      agents.map((a) => [
        a.name,
        a.state ?? 'active',
        Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(','),
        `${a.addresses[0] ?? '?'}:${a.peerPort}`,
        formatBytes(a.diskFreeBytes),
        a.lastSeen,
        a.releases.map((r) => `${r.name}@${r.version}:${r.state}`).join(' '),
      ]),
    );
    return 0;
  },
};

export const retireCommand: Command = {
  name: 'retire',
  help: `Usage: swarmship retire NAME@VERSION [--json]

Retire a release. The controller stops seeding it and refuses it on its tracker; agents
stop seeding it and delete their copy after the controller's grace period.

Options:
${CONTROLLER_OPTIONS_HELP}
  -h, --help            Show this help.

Example:
  swarmship retire app@1f2e3d4
`,
  options: { ...controllerOptions },
  positionals: [1, 1],
  async run(values: ParsedValues, [ref]: string[], io: CommandIo): Promise<number> {
    const { name, version } = parseReleaseRef(ref!, false);
    const client = await ControllerClient.fromOptions(values, io);
    const result = await client.delete<unknown>(releasePath(name, version!));
    if (values.json === true) io.stdout.write(JSON.stringify(result ?? { retired: `${name}@${version}` }) + '\n');
    else io.stderr.write(`retired ${name}@${version}\n`);
    return 0;
  },
};
