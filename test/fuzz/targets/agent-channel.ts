/**
 * The agent channel, both ways: `parseSyncRequest`, `parseProgressReport` and `tokenOf`
 * on what an agent of any version (or anyone who reaches the port) sends the controller,
 * and `parseSyncResponse` on what the controller answers an agent. The transport carries
 * JSON, so inputs are JSON texts broken and parsed again, JSON trees with fields dropped,
 * retyped or nested, and arbitrary values.
 */
import fc from 'fast-check';
import { SyncResponseError, parseSyncResponse } from '../../../libs/agent-core/src/sync-response.js';
import type { AgentProgressReport, AgentSyncRequest, AgentSyncResponse, DesiredRelease, Holding, HoldingState } from '../../../libs/contracts/src/agent-channel.js';
import { AgentMessageError, parseProgressReport, parseSyncRequest, tokenOf } from '../../../libs/controller-core/src/agent-messages.js';
import { PROTOTYPE_KEYS, awkwardJsonLeaf, mutatedText, mutatedTree, type Tree } from '../mutate.js';
import { check, expectTyped, violation, type FuzzTarget, type Outcome } from '../runner.js';

const STATES: HoldingState[] = ['pending', 'downloading', 'verifying', 'publishing', 'complete', 'failed', 'removing'];
const count = fc.oneof(fc.nat(), fc.constantFrom(0, Number.MAX_SAFE_INTEGER, 1.5));

const holding: fc.Arbitrary<Holding> = fc.record(
  {
    name: fc.stringMatching(/^[a-z][a-z0-9.-]{0,10}$/),
    version: fc.stringMatching(/^[0-9][0-9a-z.+-]{0,8}$/),
    infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u).toString('hex')),
    state: fc.constantFrom(...STATES),
    verifiedBytes: count,
    totalBytes: count,
    bytesFromOrigin: count,
    bytesFromPeers: count,
    bytesSent: count,
    error: fc.string({ maxLength: 30 }),
    completedAt: fc.nat(),
  },
  { requiredKeys: ['name', 'version', 'infoHash', 'state', 'verifiedBytes', 'totalBytes', 'bytesFromOrigin', 'bytesFromPeers', 'bytesSent'] },
);

const token = fc.oneof(fc.constantFrom('s3cret-agent-token-0123456789'), fc.string({ maxLength: 40 }));

const syncRequest: fc.Arbitrary<AgentSyncRequest> = fc.record({
  token,
  agent: fc.record({
    name: fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
    labels: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.stringMatching(/^[a-z0-9]{0,6}$/), { maxKeys: 3 }),
    addresses: fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { maxLength: 3 }),
    peerPort: fc.integer({ min: 0, max: 65535 }),
    diskFreeBytes: count,
    version: fc.constantFrom('0.1.0', '0.2.0-dev'),
  }),
  holdings: fc.array(holding, { maxLength: 4 }),
  knownRevision: fc.nat(),
  waitMs: fc.nat({ max: 30_000 }),
});

const progressReport: fc.Arbitrary<AgentProgressReport> = fc.record({
  token,
  agentName: fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
  holdings: fc.array(holding, { maxLength: 4 }),
});

const desiredRelease: fc.Arbitrary<DesiredRelease> = fc.record(
  {
    name: fc.stringMatching(/^[a-z][a-z0-9.-]{0,10}$/),
    version: fc.stringMatching(/^[0-9][0-9a-z.+-]{0,8}$/),
    infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u).toString('hex')),
    torrent: fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u).toString('base64')),
    unpack: fc.boolean(),
    metadata: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
    manifest: fc.base64String({ maxLength: 40 }),
    signature: fc.base64String({ maxLength: 88 }),
    signingKey: fc.stringMatching(/^[0-9a-f]{16}$/),
  },
  { requiredKeys: ['name', 'version', 'infoHash', 'torrent'] },
);

const syncResponse: fc.Arbitrary<AgentSyncResponse> = fc.record({
  revision: fc.nat(),
  desired: fc.array(desiredRelease, { maxLength: 3 }),
  announceUrl: fc.constantFrom('http://10.0.0.5:7070/announce', 'http://[fd00::5]:7070/announce'),
  origin: fc.record({ host: fc.oneof(fc.ipV4(), fc.constantFrom('ctl.example.com')), port: fc.integer({ min: 0, max: 65535 }) }),
  retireGraceSeconds: fc.nat({ max: 30 * 86_400 }),
});

const MESSAGE_KEYS = [
  'token', 'agent', 'holdings', 'knownRevision', 'waitMs', 'agentName', 'name', 'labels', 'addresses', 'peerPort', 'diskFreeBytes', 'version',
  'state', 'infoHash', 'verifiedBytes', 'totalBytes', 'error', 'completedAt', 'revision', 'desired', 'announceUrl', 'origin', 'host', 'port',
  'retireGraceSeconds', 'torrent', 'unpack', 'metadata', 'manifest', 'signature', 'signingKey', ...PROTOTYPE_KEYS,
];
const messageKey = fc.oneof(fc.constantFrom(...MESSAGE_KEYS), fc.string({ maxLength: 6 }));
const messageLeaf = fc.oneof(
  { weight: 20, arbitrary: awkwardJsonLeaf() },
  { weight: 10, arbitrary: fc.constantFrom<Tree>(...STATES, 'Complete', -1, Infinity, NaN, 'x'.repeat(300)) },
  // One over the limit of holdings a message may carry.
  { weight: 1, arbitrary: fc.constant(new Array(10_001).fill({ name: 'a', version: '1', infoHash: 'ab', state: 'pending' })) },
);
const JSON_TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', 'null', 'true', '-1', '1e400', '"__proto__":{}', '"state":"bogus"', '[]', '{}'];

type Message = AgentSyncRequest | AgentProgressReport | AgentSyncResponse;
type ChannelInput = { kind: 'sync' | 'progress' | 'response'; message: unknown; valid?: Message };

function inputsOf(kind: ChannelInput['kind'], valid: fc.Arbitrary<Message>): fc.Arbitrary<ChannelInput> {
  return fc.oneof(
    { weight: 1, arbitrary: valid.map((m) => ({ kind, message: JSON.parse(JSON.stringify(m)) as unknown, valid: m })) },
    { weight: 4, arbitrary: mutatedTree(valid as fc.Arbitrary<Tree>, messageLeaf, messageKey).map((message) => ({ kind, message })) },
    {
      weight: 3,
      arbitrary: mutatedText(valid.map((m) => JSON.stringify(m)), JSON_TOKENS).map((text) => {
        // The transport would drop a frame that is not JSON; what still parses arrives.
        let message: unknown;
        try {
          message = JSON.parse(text);
        } catch {
          message = text;
        }
        return { kind, message };
      }),
    },
    { weight: 1, arbitrary: fc.anything({ withNullPrototype: true, withBoxedValues: true, withSparseArray: true, maxDepth: 3 }).map((message) => ({ kind, message })) },
  );
}

const channelInput: fc.Arbitrary<ChannelInput> = fc.oneof(inputsOf('sync', syncRequest), inputsOf('progress', progressReport), inputsOf('response', syncResponse));

function checkHoldings(hs: Holding[]): void {
  check(Array.isArray(hs) && hs.length <= 10_000, 'holdings is not a bounded list');
  for (const h of hs) {
    check(typeof h.name === 'string' && typeof h.version === 'string' && typeof h.infoHash === 'string', 'holding name, version or infoHash not text');
    check(STATES.includes(h.state), `holding state ${String(h.state)}`);
    for (const n of [h.verifiedBytes, h.totalBytes, h.bytesFromOrigin, h.bytesFromPeers, h.bytesSent]) check(typeof n === 'number' && Number.isFinite(n) && n >= 0, `holding count ${n}`);
    check(h.error === undefined || (typeof h.error === 'string' && h.error.length <= 1000), 'holding error');
    check(h.completedAt === undefined || (Number.isFinite(h.completedAt) && h.completedAt >= 0), 'completedAt');
  }
}

function checkResponse(message: unknown, valid: AgentSyncResponse | undefined): Outcome {
  const parsed = expectTyped(() => parseSyncResponse(message), SyncResponseError);
  if ('rejected' in parsed) {
    check(valid === undefined, () => `a valid sync answer was refused: ${parsed.message}`);
    return parsed.rejected;
  }
  const r = parsed.value;
  for (const n of [r.revision, r.retireGraceSeconds]) check(Number.isFinite(n) && n >= 0, `count ${n}`);
  check(typeof r.announceUrl === 'string' && typeof r.origin.host === 'string' && Number.isInteger(r.origin.port) && r.origin.port >= 0 && r.origin.port <= 65535, 'announceUrl or origin');
  check(Array.isArray(r.desired), 'desired');
  for (const d of r.desired) {
    // What the agent does with each entry first: it must not throw.
    check(typeof d.name === 'string' && typeof d.version === 'string' && typeof d.infoHash.toLowerCase() === 'string' && typeof d.torrent === 'string', 'desired entry fields');
    check(d.unpack === undefined || typeof d.unpack === 'boolean', 'unpack');
    check(d.metadata === undefined || Object.values(d.metadata).every((v) => typeof v === 'string'), 'metadata');
    for (const k of ['manifest', 'signature', 'signingKey'] as const) check(d[k] === undefined || typeof d[k] === 'string', k);
  }
  if (valid) check(JSON.stringify(sortKeys(r)) === JSON.stringify(sortKeys(valid)), 'a valid sync answer came back changed');
  return 'accepted';
}

function checkChannel({ kind, message, valid }: ChannelInput): Outcome {
  if (kind === 'response') return checkResponse(message, valid as AgentSyncResponse | undefined);
  let t: string | undefined;
  try {
    t = tokenOf(message);
  } catch (err) {
    violation(`tokenOf threw ${(err as Error).name}: ${(err as Error).message}`, err);
  }
  check(t === undefined || typeof t === 'string', 'tokenOf gave something other than text');
  const parsed = expectTyped<AgentSyncRequest | AgentProgressReport>(() => (kind === 'sync' ? parseSyncRequest(message) : parseProgressReport(message)), AgentMessageError);
  const request = valid as AgentSyncRequest | AgentProgressReport | undefined;
  if ('rejected' in parsed) {
    check(valid === undefined, () => `a valid ${kind} message was refused: ${parsed.message}`);
    return parsed.rejected;
  }
  const v = parsed.value;
  check(typeof v.token === 'string' && v.token === t, 'token differs from tokenOf');
  checkHoldings(v.holdings);
  if (kind === 'sync') {
    const r = v as AgentSyncRequest;
    check(typeof r.agent.name === 'string' && r.agent.name.length >= 1 && r.agent.name.length <= 253, 'agent name');
    check(Object.values(r.agent.labels).every((x) => typeof x === 'string'), 'a label that is not text');
    check(Array.isArray(r.agent.addresses) && r.agent.addresses.every((a) => typeof a === 'string'), 'addresses');
    for (const n of [r.agent.peerPort, r.agent.diskFreeBytes, r.knownRevision, r.waitMs]) check(Number.isFinite(n) && n >= 0, `count ${n}`);
    check(typeof r.agent.version === 'string', 'version');
  } else {
    check(typeof (v as AgentProgressReport).agentName === 'string' && (v as AgentProgressReport).agentName !== '', 'agentName');
  }
  if (request) {
    const expected = JSON.parse(JSON.stringify(request)) as AgentSyncRequest | AgentProgressReport;
    for (const h of expected.holdings) h.infoHash = h.infoHash.toLowerCase();
    check(JSON.stringify(sortKeys(v)) === JSON.stringify(sortKeys(expected)), 'a valid message came back changed');
  }
  return 'accepted';
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

export const agentChannelTarget: FuzzTarget<ChannelInput> = {
  name: 'agent-channel',
  about: 'parseSyncRequest, parseProgressReport, tokenOf (controller); parseSyncResponse (agent)',
  arbitrary: channelInput,
  setup: () => ({ check: checkChannel }),
};
