import type { AgentSyncResponse, DesiredRelease } from '../../contracts/src/agent-channel.js';

/** A sync answer that is not the contract's shape; `field` names what is wrong. */
export class SyncResponseError extends Error {
  override name = 'SyncResponseError';
  constructor(readonly field: string, message: string) {
    super(`the controller's sync answer is malformed: ${field}: ${message}`);
  }
}

/** More releases than any fleet runs at once; a longer list is not an answer to act on. */
const MAX_DESIRED = 10_000;

/**
 * Checks the controller's answer to a sync field by field before the agent acts on it,
 * as the controller checks what agents send (controller-core/agent-messages.ts): the
 * channel carries plain JSON from a process of another version. Without it one
 * malformed entry (`desired: [null]`) threw a TypeError in the reconcile timer, which
 * ends the agent process.
 */
export function parseSyncResponse(msg: unknown): AgentSyncResponse {
  const o = object(msg, 'response');
  const origin = object(o['origin'], 'origin');
  const desired = o['desired'];
  if (!Array.isArray(desired)) throw new SyncResponseError('desired', 'must be a list');
  if (desired.length > MAX_DESIRED) throw new SyncResponseError('desired', `at most ${MAX_DESIRED} entries`);
  const port = origin['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new SyncResponseError('origin.port', 'must be a port number');
  return {
    revision: count(o['revision'], 'revision'),
    desired: desired.map((d, i) => parseDesired(d, `desired[${i}]`)),
    announceUrl: string(o['announceUrl'], 'announceUrl'),
    origin: { host: string(origin['host'], 'origin.host'), port },
    retireGraceSeconds: count(o['retireGraceSeconds'], 'retireGraceSeconds'),
  };
}

function parseDesired(v: unknown, field: string): DesiredRelease {
  const o = object(v, field);
  const d: DesiredRelease = {
    name: string(o['name'], `${field}.name`),
    version: string(o['version'], `${field}.version`),
    infoHash: string(o['infoHash'], `${field}.infoHash`),
    torrent: string(o['torrent'], `${field}.torrent`),
  };
  if (o['unpack'] !== undefined) {
    if (typeof o['unpack'] !== 'boolean') throw new SyncResponseError(`${field}.unpack`, 'must be true or false');
    d.unpack = o['unpack'];
  }
  if (o['metadata'] !== undefined) {
    const m = object(o['metadata'], `${field}.metadata`);
    for (const [k, value] of Object.entries(m)) if (typeof value !== 'string') throw new SyncResponseError(`${field}.metadata.${k}`, 'must be a string');
    d.metadata = m as Record<string, string>;
  }
  for (const key of ['manifest', 'signature', 'signingKey'] as const) {
    if (o[key] !== undefined) d[key] = string(o[key], `${field}.${key}`);
  }
  return d;
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SyncResponseError(field, 'must be an object');
  return v as Record<string, unknown>;
}

function string(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new SyncResponseError(field, 'must be a string');
  return v;
}

function count(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SyncResponseError(field, 'must be a number ≥ 0');
  return v;
}
