/**
 * Agents that disappear: a real controller with short timeouts marks a silent agent lost,
 * then forgets it, and its metrics follow; an agent waiting on a held sync stays active.
 */
import { join } from 'node:path';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentPatterns, type AgentSyncRequest, type AgentSyncResponse } from '../libs/contracts/src/agent-channel.js';
import type { AgentSummary } from '../libs/contracts/src/rest.js';
import { AGENT_TOKEN, authHeaders, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';

let temp: { dir: string; remove: () => Promise<void> };
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

beforeAll(async () => {
  temp = await tempDataDir();
  ctl = await startControllerProcess(join(temp.dir, 'data'), ['--agent-timeout', '2', '--agent-forget', '4']);
  client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: ctl.channel.host, port: ctl.channel.port } }) as ClientProxy;
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await ctl?.stop();
  await temp?.remove();
});

describe('controller: agents that go silent', () => {
  it('lists a silent agent as lost after --agent-timeout and drops it after --agent-forget; one in a held sync stays active', async () => {
    const { revision } = await sync('gone');
    await sync('waiting');
    // Held for 6 s: longer than both timeouts, and the agent is alive all the while.
    const held = sync('waiting', revision, 6_000);
    expect(await agents()).toEqual(['gone:active', 'waiting:active']);
    expect(await gauge('swarmship_controller_agents')).toBe(2);
    expect(await gauge('swarmship_controller_agents_lost')).toBe(0);

    await new Promise((r) => setTimeout(r, 2_600));
    expect(await agents()).toEqual(['gone:lost', 'waiting:active']);
    expect(await gauge('swarmship_controller_agents')).toBe(1);
    expect(await gauge('swarmship_controller_agents_lost')).toBe(1);

    await new Promise((r) => setTimeout(r, 2_400));
    expect(await agents()).toEqual(['waiting:active']);
    expect(await gauge('swarmship_controller_agents')).toBe(1);
    expect(await gauge('swarmship_controller_agents_lost')).toBe(0);

    await held;
    // A forgotten agent that comes back is simply known again.
    await sync('gone');
    expect(await agents()).toEqual(['gone:active', 'waiting:active']);
  }, 20_000);
});
