/**
 * Agents that disappear: a real controller with short timeouts marks a silent agent lost,
 * then forgets it, and its metrics follow; an agent waiting on a held sync stays active.
 */
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentPatterns, type AgentSyncRequest, type AgentSyncResponse } from '../libs/contracts/src/agent-channel.js';
import type { AgentSummary } from '../libs/contracts/src/rest.js';
import { startControllerWithChannel, type ControllerWithChannel } from './helpers/controller-channel.js';
import { AGENT_TOKEN, authHeaders, type ControllerUnderTest } from './helpers/controller-process.js';

let under: ControllerWithChannel | undefined;
let ctl: ControllerUnderTest;
let client: ClientProxy;

function sync(name: string, knownRevision = 0, waitMs = 0): Promise<AgentSyncResponse> {
  const req: AgentSyncRequest = {
    token: AGENT_TOKEN,
    agent: { name, labels: {}, addresses: ['127.0.0.1'], peerPort: 1, diskFreeBytes: 0, version: 'test' },
    holdings: [],
    knownRevision,
    waitMs,
  };
  return firstValueFrom(client.send<AgentSyncResponse, AgentSyncRequest>(AgentPatterns.sync, req));
}

const agents = async () => ((await (await fetch(`${ctl.api}/agents`, { headers: authHeaders() })).json()) as AgentSummary[]).map((a) => `${a.name}:${a.state}`);
const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`${ctl.base}/metrics`)).text())?.[1]);
/** The agent list and both gauges, read together so each poll sees one state. */
const fleet = async () => ({ agents: await agents(), counted: await gauge('swarmship_controller_agents'), lost: await gauge('swarmship_controller_agents_lost') });

/** Polls `read` until it equals `expected`, for at most `ms`; then it must equal it. */
async function until<T>(read: () => Promise<T>, expected: T, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = await read();
  while (JSON.stringify(last) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
  expect(last).toEqual(expected);
}

beforeAll(async () => {
  under = await startControllerWithChannel(['--agent-timeout', '2', '--agent-forget', '4']);
  ({ ctl, client } = under);
});

afterAll(async () => {
  await under?.stop();
});

describe('controller: agents that go silent', () => {
  it('lists a silent agent as lost after --agent-timeout and drops it after --agent-forget; one in a held sync stays active', async () => {
    const { revision } = await sync('gone');
    await sync('waiting');
    // Held for 10 s: well past both timeouts, and the agent is alive all the while.
    const held = sync('waiting', revision, 10_000);
    expect(await fleet()).toEqual({ agents: ['gone:active', 'waiting:active'], counted: 2, lost: 0 });

    // Lost from 2 s after its last sync, forgotten from 4 s: each state is waited for,
    // not slept into, and lost must be seen before it is forgotten.
    await until(fleet, { agents: ['gone:lost', 'waiting:active'], counted: 1, lost: 1 }, 4_000);
    await until(fleet, { agents: ['waiting:active'], counted: 1, lost: 0 }, 6_000);

    await held;
    // A forgotten agent that comes back is simply known again.
    await sync('gone');
    expect(await agents()).toEqual(['gone:active', 'waiting:active']);
  }, 30_000);
});
