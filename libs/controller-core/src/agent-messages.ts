import type { AgentIdentity, AgentProgressReport, AgentSyncRequest, Holding, HoldingState } from '../../contracts/src/agent-channel.js';

/** A malformed agent message; `field` names what is wrong. */
export class AgentMessageError extends Error {
  override name = 'AgentMessageError';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

const HOLDING_STATES: ReadonlySet<HoldingState> = new Set(['pending', 'downloading', 'verifying', 'publishing', 'complete', 'failed', 'removing']);
const MAX_HOLDINGS = 10_000;

/**
 * Checks an agent's sync request field by field: the channel carries plain JSON from
 * processes of other versions, so nothing is trusted for its shape. The token is
 * checked separately (and first) by the caller.
 */
export function parseSyncRequest(msg: unknown): AgentSyncRequest {
  const o = object(msg, 'request');
  return {
    token: string(o['token'], 'token'),
    agent: parseIdentity(o['agent']),
    holdings: parseHoldings(o['holdings'], 'holdings'),
    knownRevision: number(o['knownRevision'] ?? 0, 'knownRevision'),
    waitMs: number(o['waitMs'] ?? 0, 'waitMs'),
  };
}

export function parseProgressReport(msg: unknown): AgentProgressReport {
  const o = object(msg, 'request');
  const agentName = string(o['agentName'], 'agentName');
  if (agentName === '') throw new AgentMessageError('agentName', 'must not be empty');
  return { token: string(o['token'], 'token'), agentName, holdings: parseHoldings(o['holdings'], 'holdings') };
}

/** The token field alone, for the check that comes before any other. */
export function tokenOf(msg: unknown): string | undefined {
  const t = typeof msg === 'object' && msg !== null ? (msg as Record<string, unknown>)['token'] : undefined;
  return typeof t === 'string' ? t : undefined;
}

function parseIdentity(v: unknown): AgentIdentity {
  const o = object(v, 'agent');
  const name = string(o['name'], 'agent.name');
  if (name === '' || name.length > 253) throw new AgentMessageError('agent.name', 'must be 1 to 253 characters');
  const labels = object(o['labels'] ?? {}, 'agent.labels');
  for (const [k, val] of Object.entries(labels)) if (typeof val !== 'string') throw new AgentMessageError(`agent.labels.${k}`, 'must be a string');
  const addresses = o['addresses'] ?? [];
  if (!Array.isArray(addresses) || addresses.some((a) => typeof a !== 'string')) throw new AgentMessageError('agent.addresses', 'must be a list of strings');
  return {
    name,
    labels: labels as Record<string, string>,
    addresses: addresses as string[],
    peerPort: number(o['peerPort'] ?? 0, 'agent.peerPort'),
    diskFreeBytes: number(o['diskFreeBytes'] ?? 0, 'agent.diskFreeBytes'),
    version: typeof o['version'] === 'string' ? o['version'] : 'unknown',
  };
}

function parseHoldings(v: unknown, field: string): Holding[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new AgentMessageError(field, 'must be a list');
  if (v.length > MAX_HOLDINGS) throw new AgentMessageError(field, `at most ${MAX_HOLDINGS} entries`);
  return v.map((item, i) => {
    const f = `${field}[${i}]`;
    const o = object(item, f);
    const state = o['state'];
    if (typeof state !== 'string' || !HOLDING_STATES.has(state as HoldingState)) throw new AgentMessageError(`${f}.state`, `must be one of ${[...HOLDING_STATES].join(', ')}`);
    const h: Holding = {
      name: string(o['name'], `${f}.name`),
      version: string(o['version'], `${f}.version`),
      infoHash: string(o['infoHash'], `${f}.infoHash`).toLowerCase(),
      state: state as HoldingState,
      verifiedBytes: number(o['verifiedBytes'] ?? 0, `${f}.verifiedBytes`),
      totalBytes: number(o['totalBytes'] ?? 0, `${f}.totalBytes`),
      bytesFromOrigin: number(o['bytesFromOrigin'] ?? 0, `${f}.bytesFromOrigin`),
      bytesFromPeers: number(o['bytesFromPeers'] ?? 0, `${f}.bytesFromPeers`),
      bytesSent: number(o['bytesSent'] ?? 0, `${f}.bytesSent`),
    };
    if (typeof o['error'] === 'string') h.error = o['error'].slice(0, 1000);
    if (o['completedAt'] !== undefined) h.completedAt = number(o['completedAt'], `${f}.completedAt`);
    return h;
  });
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AgentMessageError(field, 'must be an object');
  return v as Record<string, unknown>;
}

function string(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new AgentMessageError(field, 'must be a string');
  return v;
}

function number(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new AgentMessageError(field, 'must be a number ≥ 0');
  return v;
}
