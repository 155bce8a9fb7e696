import { createHash } from 'node:crypto';
import type { Holding } from '../../contracts/src/agent-channel.js';
import type { ReleaseStatus, RolloutNode, RolloutNodeState } from '../../contracts/src/rest.js';
import type { AgentRecord } from './fleet.js';
import { selectorMatches } from './labels.js';
import type { ReleaseRecord } from './release-store.js';

export interface RolloutInputs {
  release: ReleaseRecord;
  /** Agents that count (recently seen); those whose labels match the selector are targeted. */
  agents: AgentRecord[];
  originBytesSent: number;
  completedAt: (agent: string, holding: Holding) => number | undefined;
}

/** A release's rollout as the API reports it: a pure function of what agents last said. */
export function releaseStatus({ release, agents, originBytesSent, completedAt }: RolloutInputs): ReleaseStatus {
  const nodes: RolloutNode[] = [];
  const completions: number[] = [];
  for (const agent of agents) {
    const labels = agent.identity?.labels;
    const holding = agent.holdings.find((h) => h.infoHash === release.infoHash);
    // An agent that has not told us its labels yet still counts if it reports holding the release.
    if (labels ? !selectorMatches(release.selector, labels) : !holding) continue;
    const node: RolloutNode = {
      agent: agent.name,
      state: nodeState(holding),
      verifiedBytes: holding?.verifiedBytes ?? 0,
      bytesFromOrigin: holding?.bytesFromOrigin ?? 0,
      bytesFromPeers: holding?.bytesFromPeers ?? 0,
    };
    if (holding?.error !== undefined && node.state === 'failed') node.error = holding.error;
    nodes.push(node);
    if (holding && node.state === 'complete') {
      const at = completedAt(agent.name, holding);
      if (at !== undefined) completions.push(at);
    }
  }
  const count = (s: RolloutNodeState) => nodes.filter((n) => n.state === s).length;
  const created = Date.parse(release.createdAt);
  completions.sort((a, b) => a - b);
  const timeTo = (fraction: number): number | null => {
    if (nodes.length === 0) return null;
    const needed = Math.ceil(fraction * nodes.length);
    const at = completions[needed - 1];
    return at === undefined ? null : Math.max(0, (at - created) / 1000);
  };
  const status: ReleaseStatus = {
    name: release.name,
    version: release.version,
    infoHash: release.infoHash,
    bytes: release.bytes,
    createdAt: release.createdAt,
    selector: release.selector,
    metadata: release.metadata,
    rollout: {
      targeted: nodes.length,
      pending: count('pending'),
      downloading: count('downloading'),
      complete: count('complete'),
      failed: count('failed'),
      timeTo50: timeTo(0.5),
      timeTo90: timeTo(0.9),
      timeTo100: timeTo(1),
      originBytesSent,
      nodes,
    },
  };
  if (release.retiredAt !== undefined) status.retiredAt = release.retiredAt;
  if (release.sha256 !== undefined) status.sha256 = release.sha256;
  return status;
}

function nodeState(holding: Holding | undefined): RolloutNodeState {
  switch (holding?.state) {
    case 'complete':
      return 'complete';
    case 'failed':
      return 'failed';
    case 'downloading':
    case 'verifying':
    case 'publishing':
      return 'downloading';
    default:
      return 'pending';
  }
}

/**
 * A weak validator (HTTP ETag) of a release's rollout: it changes when any targeted
 * node's state or bytes change, or the release is retired. The origin's bytes sent are
 * left out: they move with every piece the origin sends, and a reader waiting for the
 * rollout to change would otherwise never wait.
 */
export function rolloutTag(status: ReleaseStatus): string {
  const { originBytesSent: _origin, ...rollout } = status.rollout;
  const digest = createHash('sha1').update(JSON.stringify([status.infoHash, status.retiredAt ?? null, rollout])).digest('base64url');
  return `W/"${digest.slice(0, 20)}"`;
}

/** Share of targeted nodes complete, 0 to 1 (0 while no node is targeted: nothing has arrived anywhere). */
export function completeRatio(status: ReleaseStatus): number {
  return status.rollout.targeted === 0 ? 0 : status.rollout.complete / status.rollout.targeted;
}
