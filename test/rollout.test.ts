import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReleaseStatus } from '../libs/contracts/src/rest.js';
import { startCli, type RunningCli } from './helpers/cli.js';
import { freePort } from '../bench/lib/net.js';

/**
 * The product as a CI job and a fleet meet it: one controller, six agents (four
 * labelled tier=web, two tier=db), `swarmship publish --wait`, every copy checked byte
 * for byte, the origin's share measured, and a controller killed mid-rollout.
 */
const AGENTS = 6;
const SIZE = 128 * 1024 * 1024;
const TOKEN = 'rollout-test-api-token';
const AGENT_TOKEN = 'rollout-test-agent-token';

let dir: string;
let artifact: string;
let artifactSha: string;
let httpPort: number;
let agentPort: number;
let peerPort: number;
let controller: RunningCli;
const agents: { name: string; data: string; proc: RunningCli }[] = [];
const others: RunningCli[] = [];


async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (let done = 0; done < size; done += chunk.length) {
    randomFillSync(chunk);
    const part = chunk.subarray(0, Math.min(chunk.length, size - done));
    hash.update(part);
    if (!out.write(part)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  return hash.digest('hex');
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function startController(): RunningCli {
  const args = ['controller', '--data', join(dir, 'controller'), '--host', '127.0.0.1', '--port', String(httpPort), '--agent-port', String(agentPort), '--peer-port', String(peerPort), '--json'];
  return startCli(args, { SWARMSHIP_TOKEN: TOKEN, SWARMSHIP_AGENT_TOKEN: AGENT_TOKEN });
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function publish(args: string[]): RunningCli {
  const p = startCli(['publish', ...args, '--url', `http://127.0.0.1:${httpPort}`, '--token', TOKEN, '--json']);
  others.push(p);
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmship-rollout-'));
  artifact = join(dir, 'app.bin');
  artifactSha = await writeRandomFile(artifact, SIZE);
  // Fixed ports, as in production: a restarted controller is found where it was.
  [httpPort, agentPort, peerPort] = [await freePort(), await freePort(), await freePort()];
  controller = startController();
  const listening = await controller.waitFor((e) => e.event === 'listening');
  const publicKeyFile = String((listening.signingKey as { publicKeyFile: string }).publicKeyFile);
  for (let i = 0; i < AGENTS; i++) {
    const name = `node-${i + 1}`;
    const data = join(dir, name);
    const tier = i < 4 ? 'web' : 'db';
    const proc = startCli(
      ['agent', '--controller', `tcp://127.0.0.1:${agentPort}`, '--data', data, '--name', name, '--labels', `tier=${tier}`, '--peer-port', '0', '--listen-host', '127.0.0.1', '--http-port', '0', '--trust-key', publicKeyFile, '--json'],
      { SWARMSHIP_AGENT_TOKEN: AGENT_TOKEN },
    );
    agents.push({ name, data, proc });
  }
  await until('every agent to sync', async () => ((await api<unknown[]>('/agents')).length === AGENTS ? true : undefined), 30_000);
}, 120_000);

afterAll(async () => {
  await Promise.all([...agents.map((a) => a.proc.stop()), ...others.map((p) => p.stop()), controller?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a release rolled out to a fleet of agents', () => {
  it('reaches every agent bit-identical, the origin sending at most 1.5 copies, and publish --wait exits 0', async () => {
    const p = publish([artifact, '--name', 'app', '--version', '1', '--wait', '--timeout', '120s']);
    expect(await p.exited, p.stderr()).toBe(0);
    for (const a of agents) expect(await sha256(join(a.data, 'releases', 'app', '1', 'app.bin'))).toBe(artifactSha);
    const status = await api<ReleaseStatus>('/releases/app/1');
    expect(status.rollout).toMatchObject({ targeted: AGENTS, complete: AGENTS, failed: 0 });
    expect(status.rollout.originBytesSent).toBeLessThanOrEqual(1.5 * SIZE);
    expect(status.rollout.timeTo100).not.toBeNull();
  }, 180_000);

  it('reaches only the agents a selector matches', async () => {
    const p = publish([artifact, '--name', 'db-tools', '--version', '1', '--selector', 'tier=db', '--wait', '--timeout', '120s']);
    expect(await p.exited, p.stderr()).toBe(0);
    const status = await api<ReleaseStatus>('/releases/db-tools/1');
    expect(status.rollout.targeted).toBe(2);
    for (const [i, a] of agents.entries()) {
      const held = await stat(join(a.data, 'releases', 'db-tools', '1', 'app.bin')).then(() => true, () => false);
      expect(held).toBe(i >= 4);
    }
  }, 180_000);

  it('completes a rollout whose controller is killed and restarted half-way, and forgets no release', async () => {
    const p = publish([artifact, '--name', 'app', '--version', '2']);
    expect(await p.exited, p.stderr()).toBe(0);
    await until(
      'the rollout to be under way',
      async () => {
        const s = await api<ReleaseStatus>('/releases/app/2');
        return s.rollout.nodes.some((n) => n.verifiedBytes > 0) ? true : undefined;
      },
      60_000,
    );
    controller.child.kill('SIGKILL');
    await controller.exited;
    controller = startController();
    await controller.waitFor((e) => e.event === 'listening');
    const done = await until(
      'the rollout to complete after the restart',
      async () => {
        const s = await api<ReleaseStatus>('/releases/app/2');
        return s.rollout.complete === AGENTS ? s : undefined;
      },
      150_000,
    );
    expect(done.rollout.failed).toBe(0);
    for (const a of agents) expect(await sha256(join(a.data, 'releases', 'app', '2', 'app.bin'))).toBe(artifactSha);
    const names = (await api<ReleaseStatus[]>('/releases')).map((r) => `${r.name}@${r.version}`).sort();
    expect(names).toEqual(['app@1', 'app@2', 'db-tools@1']);
  }, 240_000);
});
