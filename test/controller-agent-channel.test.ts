import { randomBytes } from 'node:crypto';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentPatterns, type AgentIdentity, type AgentSyncRequest, type AgentSyncResponse, type Holding } from '../libs/contracts/src/agent-channel.js';
import type { AgentSummary, ReleaseStatus } from '../libs/contracts/src/rest.js';
import { parseTorrent } from '../libs/metainfo/src/parse.js';
import { startControllerWithChannel, type ControllerWithChannel } from './helpers/controller-channel.js';
import { AGENT_TOKEN, authHeaders, type ControllerUnderTest } from './helpers/controller-process.js';

let under: ControllerWithChannel | undefined;
let ctl: ControllerUnderTest;
let client: ClientProxy;

const agent: AgentIdentity = { name: 'node-a', labels: { zone: 'a' }, addresses: ['127.0.0.1'], peerPort: 50001, diskFreeBytes: 10 ** 10, version: 'test' };

function sync(overrides: Partial<AgentSyncRequest> = {}): Promise<AgentSyncResponse> {
  const req: AgentSyncRequest = { token: AGENT_TOKEN, agent, holdings: [], knownRevision: 0, waitMs: 0, ...overrides };
  return firstValueFrom(client.send<AgentSyncResponse, AgentSyncRequest>(AgentPatterns.sync, req));
}

async function publish(name: string, version: string, selector?: string): Promise<ReleaseStatus> {
  const q = `name=${name}&version=${version}${selector ? `&selector=${selector}` : ''}`;
  const res = await fetch(`${ctl.api}/releases?${q}`, { method: 'POST', headers: { ...authHeaders(), 'Content-Type': 'application/octet-stream' }, body: randomBytes(200_000) });
  expect(res.status).toBe(201);
  return (await res.json()) as ReleaseStatus;
}

beforeAll(async () => {
  under = await startControllerWithChannel();
  ({ ctl, client } = under);
});

afterAll(async () => {
  await under?.stop();
});

describe('controller agent channel', () => {
  it('answers a sync with the releases whose selector matches the agent', async () => {
    const all = await publish('base', '1');
    const zoneA = await publish('web', '1', 'zone=a');
    await publish('db', '1', 'zone=b');
    const res = await sync();
    expect(res.desired.map((d) => `${d.name}@${d.version}`).sort()).toEqual(['base@1', 'web@1']);
    const web = res.desired.find((d) => d.name === 'web')!;
    expect(web.infoHash).toBe(zoneA.infoHash);
    expect(parseTorrent(Buffer.from(web.torrent, 'base64')).infoHashHex).toBe(zoneA.infoHash);
    expect(res.announceUrl).toBe(ctl.announce);
    expect(res.origin.host).toBe('127.0.0.1');
    expect(res.origin.port).toBeGreaterThan(0);
    expect(res.retireGraceSeconds).toBeGreaterThanOrEqual(0);
    expect(all.infoHash).toMatch(/^[0-9a-f]{40}$/);
  });

  it('holds a long-poll until a release is published, then answers at once', async () => {
    const { revision } = await sync();
    const started = Date.now();
    const polled = sync({ knownRevision: revision, waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    const publishedAt = Date.now();
    await publish('api', '7');
    const res = await polled;
    expect(Date.now() - publishedAt).toBeLessThan(2_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(res.revision).not.toBe(revision);
    expect(res.desired.map((d) => d.name)).toContain('api');
  });

  it('answers a long-poll with no news after waitMs', async () => {
    const { revision } = await sync();
    const started = Date.now();
    const res = await sync({ knownRevision: revision, waitMs: 400 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(res.revision).toBe(revision);
  });

  it('refuses a wrong or missing agent token, and a malformed request', async () => {
    await expect(sync({ token: 'not-the-agent-token' })).rejects.toMatchObject({ error: 'unauthorized' });
    await expect(firstValueFrom(client.send(AgentPatterns.sync, { agent }))).rejects.toMatchObject({ error: 'unauthorized' });
    await expect(firstValueFrom(client.send(AgentPatterns.progress, { token: 'x'.repeat(20), agentName: 'n', holdings: [] }))).rejects.toMatchObject({ error: 'unauthorized' });
    await expect(sync({ agent: { ...agent, name: 42 as unknown as string } })).rejects.toMatchObject({ error: 'bad-request', message: expect.stringMatching(/agent.name/) });
  });

  it('turns agent reports into rollout status and the agent list', async () => {
    const web = (await (await fetch(`${ctl.api}/releases/web/1`, { headers: authHeaders() })).json()) as ReleaseStatus;
    const holding: Holding = {
      name: 'web', version: '1', infoHash: web.infoHash, state: 'complete', verifiedBytes: web.bytes, totalBytes: web.bytes,
      bytesFromOrigin: 50_000, bytesFromPeers: web.bytes - 50_000, bytesSent: 0, completedAt: Date.now(),
    };
    await sync({ holdings: [{ ...holding, state: 'downloading', verifiedBytes: 0, completedAt: undefined }] });
    const ack = await firstValueFrom(client.send(AgentPatterns.progress, { token: AGENT_TOKEN, agentName: agent.name, holdings: [holding] }));
    expect(ack).toEqual({ ok: true });

    const status = (await (await fetch(`${ctl.api}/releases/web/1`, { headers: authHeaders() })).json()) as ReleaseStatus;
    expect(status.rollout).toMatchObject({ targeted: 1, complete: 1, failed: 0 });
    expect(status.rollout.nodes).toEqual([{ agent: 'node-a', state: 'complete', verifiedBytes: web.bytes, bytesFromOrigin: 50_000, bytesFromPeers: web.bytes - 50_000 }]);
    expect(status.rollout.timeTo100).not.toBeNull();
    // The zone=b release does not target this agent.
    const db = (await (await fetch(`${ctl.api}/releases/db/1`, { headers: authHeaders() })).json()) as ReleaseStatus;
    expect(db.rollout.targeted).toBe(0);

    const agents = (await (await fetch(`${ctl.api}/agents`, { headers: authHeaders() })).json()) as AgentSummary[];
    expect(agents).toHaveLength(1);
    expect(agents[0]).toMatchObject({ name: 'node-a', labels: { zone: 'a' }, peerPort: 50001, releases: [{ name: 'web', version: '1', state: 'complete' }] });
    expect(Date.now() - Date.parse(agents[0]!.lastSeen)).toBeLessThan(10_000);

    const metrics = await (await fetch(`${ctl.base}/metrics`)).text();
    expect(metrics).toMatch(/^swarmship_controller_agents 1$/m);
    expect(metrics).toMatch(/^swarmship_controller_rollout_complete_ratio\{release="web@1"\} 1$/m);
  });

  it('holds a read of a rollout (If-None-Match, Prefer: wait) until an agent report changes it', async () => {
    const watched = await publish('watch', '1');
    const holding: Holding = {
      name: 'watch', version: '1', infoHash: watched.infoHash, state: 'downloading', verifiedBytes: 0, totalBytes: watched.bytes,
      bytesFromOrigin: 0, bytesFromPeers: 0, bytesSent: 0,
    };
    await sync({ holdings: [holding] });
    const first = await fetch(`${ctl.api}/releases/watch/1`, { headers: authHeaders() });
    expect(first.status).toBe(200);
    const tag = first.headers.get('etag')!;
    expect(tag).toMatch(/^W\/"[\w-]+"$/);

    // Nothing changes: 304 once the wait is over.
    let started = Date.now();
    const unchanged = await fetch(`${ctl.api}/releases/watch/1`, { headers: { ...authHeaders(), 'If-None-Match': tag, Prefer: 'wait=1' } });
    expect(unchanged.status).toBe(304);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(unchanged.headers.get('preference-applied')).toBe('wait=1');
    expect(unchanged.headers.get('etag')).toBe(tag);

    // A report that leaves this rollout as it was does not answer; one that moves it does, at once.
    started = Date.now();
    const held = fetch(`${ctl.api}/releases/watch/1`, { headers: { ...authHeaders(), 'If-None-Match': tag, Prefer: 'wait=20' } });
    await new Promise((r) => setTimeout(r, 300));
    await firstValueFrom(client.send(AgentPatterns.progress, { token: AGENT_TOKEN, agentName: agent.name, holdings: [holding] }));
    await new Promise((r) => setTimeout(r, 300));
    const reportedAt = Date.now();
    await firstValueFrom(client.send(AgentPatterns.progress, { token: AGENT_TOKEN, agentName: agent.name, holdings: [{ ...holding, verifiedBytes: 100_000, bytesFromOrigin: 100_000 }] }));
    const changed = await held;
    expect(changed.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    expect(Date.now() - reportedAt).toBeLessThan(2_000);
    expect(changed.headers.get('etag')).not.toBe(tag);
    const status = (await changed.json()) as ReleaseStatus;
    expect(status.rollout.nodes).toEqual([expect.objectContaining({ agent: 'node-a', verifiedBytes: 100_000 })]);
  });

  it('stops offering a retired release', async () => {
    const { revision } = await sync();
    const polled = sync({ knownRevision: revision, waitMs: 20_000 });
    expect((await fetch(`${ctl.api}/releases/api/7`, { method: 'DELETE', headers: authHeaders() })).status).toBe(200);
    const res = await polled;
    expect(res.desired.map((d) => d.name)).not.toContain('api');
  });
});
