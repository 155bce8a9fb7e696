import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentSyncResponse } from '../../contracts/src/agent-channel.js';
import { resolveAgentConfig, type RawSettings } from '../src/config.js';
import { ReleaseAgent, type AgentLog, type ControllerChannel } from '../src/release-agent.js';
import { SyncResponseError, parseSyncResponse } from '../src/sync-response.js';

const good: AgentSyncResponse = {
  revision: 3,
  desired: [{ name: 'app', version: '1.0.0', infoHash: 'ab'.repeat(20), torrent: 'ZGU=', unpack: true, metadata: { commit: 'abc' } }],
  announceUrl: 'http://ctl:7070/announce',
  origin: { host: '10.0.0.5', port: 6881 },
  retireGraceSeconds: 600,
};

describe('the controller sync answer, as the agent reads it', () => {
  it('takes a well-formed answer as it is', () => {
    expect(parseSyncResponse(JSON.parse(JSON.stringify(good)))).toEqual(good);
  });

  it.each([
    ['desired: [null]', { ...good, desired: [null] }, /desired\[0\]: must be an object/],
    ['no desired list', { ...good, desired: undefined }, /desired: must be a list/],
    ['a release without infoHash', { ...good, desired: [{ name: 'a', version: '1', torrent: '' }] }, /desired\[0\]\.infoHash: must be a string/],
    ['no origin', { ...good, origin: null }, /origin: must be an object/],
    ['a port out of range', { ...good, origin: { host: 'h', port: 70_000 } }, /origin\.port/],
    ['metadata that is not text', { ...good, desired: [{ ...good.desired[0], metadata: { a: 1 } }] }, /metadata\.a: must be a string/],
    ['a negative grace', { ...good, retireGraceSeconds: -1 }, /retireGraceSeconds/],
    ['not an object', 'ok', /response: must be an object/],
  ])('refuses %s with the field named', (_what, msg, message) => {
    expect(() => parseSyncResponse(msg)).toThrow(SyncResponseError);
    expect(() => parseSyncResponse(msg)).toThrow(message);
  });
});

describe('ReleaseAgent with a controller that answers nonsense', () => {
  let dir: string | undefined;
  let agent: ReleaseAgent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps running and says what is wrong instead of throwing in its reconcile timer', async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-sync-response-'));
    const warnings: string[] = [];
    const log: AgentLog = { info: () => undefined, warn: (_e, f) => warnings.push(String(f?.['message'])), error: () => undefined };
    const channel: ControllerChannel = {
      sync: async () => {
        await new Promise((r) => setTimeout(r, 20));
        return { ...good, desired: [null] } as unknown as AgentSyncResponse;
      },
      progress: async () => undefined,
      close: async () => undefined,
    };
    // Release signing is not the subject here: unsigned releases are allowed where the setting exists.
    const flags: RawSettings = { data: join(dir, 'agent'), peerPort: '0', listenHost: '127.0.0.1', name: 'unit', ...({ allowUnsigned: true } as RawSettings) };
    agent = new ReleaseAgent(resolveAgentConfig({ flags, env: {} }), channel, log, Date.now);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await agent.start();
      // The reconcile timer ticks every second.
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
    expect(agent.synced).toBe(false);
    expect(warnings.some((m) => m.includes('desired[0]: must be an object'))).toBe(true);
  });
});
