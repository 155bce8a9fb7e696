/**
 * Calls that arrive at awkward moments, against a real `swarmship controller`: while it
 * is still loading its stored releases, and while the same release is being uploaded.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError, ReleaseStatus } from '../libs/contracts/src/rest.js';
import { startCli } from './helpers/cli.js';
import { AGENT_TOKEN, API_TOKEN, authHeaders, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';
import { commandAvailable, freePort } from './helpers/swarm.js';

let temp: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  temp = await tempDataDir();
});
afterAll(async () => {
  await temp?.remove();
});

async function publish(api: string, name: string, version: string, bytes = 100_000): Promise<Response> {
  return fetch(`${api}/releases?name=${name}&version=${version}`, { method: 'POST', headers: { ...authHeaders(), 'Content-Type': 'application/octet-stream' }, body: randomBytes(bytes) });
}

describe('controller start-up window', () => {
  // A named pipe as a stored release's record holds the load at that record until the
  // test writes it: the window between the HTTP port opening and the releases being
  // loaded, made as long as the test needs, with no timing involved.
  it.skipIf(!commandAvailable('mkfifo', ['--version']))('answers 503 with Retry-After to release calls until the stored releases are loaded, then serves them', async () => {
    const dataDir = join(temp.dir, 'startup');
    const first = await startControllerProcess(dataDir);
    expect((await publish(first.api, 'stored', '1')).status).toBe(201);
    expect(await first.stop()).toBe(0);
    const record = join(dataDir, 'releases', 'stored', '1', 'release.json');
    const text = await readFile(record, 'utf8');
    await rm(record);
    execFileSync('mkfifo', [record]);

    const port = await freePort('127.0.0.1');
    const cli = startCli(['controller', '--data', dataDir, '--host', '127.0.0.1', '--port', String(port), '--agent-port', '0', '--peer-port', '0', '--json'], {
      SWARMSHIP_TOKEN: API_TOKEN,
      SWARMSHIP_AGENT_TOKEN: AGENT_TOKEN,
      SWARMSHIP_CONFIG: '',
    });
    const base = `http://127.0.0.1:${port}`;
    try {
      let up = false;
      for (let i = 0; i < 200 && !up; i++) {
        up = await fetch(`${base}/healthz`).then((r) => r.status === 200, () => false);
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      expect(up, cli.stderr()).toBe(true);
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      const calls: [string, RequestInit][] = [
        ['/api/v1/releases?name=stored&version=1', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: randomBytes(50_000) }],
        ['/api/v1/releases?name=fresh&version=1', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: randomBytes(50_000) }],
        ['/api/v1/releases', { method: 'GET' }],
        ['/api/v1/releases/stored/1', { method: 'GET' }],
        ['/api/v1/releases/stored/1/torrent', { method: 'GET' }],
        ['/api/v1/releases/stored/1', { method: 'DELETE' }],
      ];
      for (const [path, init] of calls) {
        const res = await fetch(`${base}${path}`, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
        expect(res.status, `${init.method} ${path}`).toBe(503);
        expect(res.headers.get('retry-after'), path).toBe('2');
        expect(((await res.json()) as ApiError).message).toMatch(/starting/);
      }
      // Still without a token first: a caller without one learns nothing, not even that.
      expect((await fetch(`${base}/api/v1/releases`)).status).toBe(401);
      expect(cli.events.find((e) => e['event'] === 'listening')).toBeUndefined();

      // The command a CI job runs right after a controller restart waits the window out.
      const artifact = join(temp.dir, 'during-startup.bin');
      await writeFile(artifact, randomBytes(200_000));
      const cliEnv = { SWARMSHIP_TOKEN: API_TOKEN, SWARMSHIP_URL: base };
      const publishing = startCli(['publish', artifact, '--name', 'late', '--version', '1', '--json'], cliEnv);
      const listing = startCli(['releases', 'ls', '--json'], cliEnv);
      // Long enough for each to be refused at least once and wait out Retry-After (2 s).
      await new Promise((r) => setTimeout(r, 2500));
      expect(publishing.child.exitCode, publishing.stderr()).toBeNull();
      expect(listing.child.exitCode, listing.stderr()).toBeNull();

      await writeFile(record, text);
      await cli.waitFor((e) => e['event'] === 'listening', 30_000);
      expect(await publishing.exited, publishing.stderr()).toBe(0);
      expect(await listing.exited, listing.stderr()).toBe(0);
      expect(listing.stdout()).toContain('stored');
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const list = (await (await fetch(`${base}/api/v1/releases`, { headers: authHeaders() })).json()) as ReleaseStatus[];
      expect(list.map((r) => `${r.name}@${r.version}:${r.retiredAt ?? 'live'}`).sort()).toEqual(['late@1:live', 'stored@1:live']);
      expect((await publish(`${base}/api/v1`, 'stored', '1')).status).toBe(409);
      expect((await publish(`${base}/api/v1`, 'fresh', '1')).status).toBe(201);
    } finally {
      expect(await cli.stop(), cli.stderr()).toBe(0);
    }
  });
});

/** Resolves once a file with some bytes in it is in an upload's staging dir under `staging`. */
async function waitForStagedUpload(staging: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    for (const upload of await readdir(staging).catch(() => [])) {
      const content = join(staging, upload, 'content');
      for (const file of await readdir(content).catch(() => [])) {
        if (((await stat(join(content, file)).catch(() => undefined))?.size ?? 0) > 0) return;
      }
    }
    if (Date.now() > deadline) throw new Error(`no upload reached ${staging} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('retire while the same release is being published', () => {
  let ctl: ControllerUnderTest;
  beforeAll(async () => {
    ctl = await startControllerProcess(join(temp.dir, 'races'));
  });
  afterAll(async () => {
    await ctl?.stop();
  });

  it('is refused with 409 until the publish has answered; then it retires the release everywhere', async () => {
    const size = 2 * 1024 * 1024;
    const body = randomBytes(size);
    const socket = connect(Number(new URL(ctl.base).port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      `POST /api/v1/releases?name=racy&version=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${API_TOKEN}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
    );
    socket.write(body.subarray(0, size / 2));
    // The retire comes once the upload is on the controller's disk (<data>/staging/<random>/content/<file>):
    // before its handler started, it would be a 404, not the race under test.
    await waitForStagedUpload(join(temp.dir, 'races', 'staging'), 10_000);
    const early = await fetch(`${ctl.api}/releases/racy/1`, { method: 'DELETE', headers: authHeaders() });
    expect(early.status).toBe(409);
    expect(((await early.json()) as ApiError).message).toMatch(/being published right now/);
    // Not end(): a client that half-closes before the answer has its request aborted by Node.
    socket.write(body.subarray(size / 2));
    await closed;
    expect(answer, ctl.cli.stderr().slice(-3000)).toMatch(/^HTTP\/1\.1 201/);
    const published = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as ReleaseStatus;
    expect(published.retiredAt).toBeUndefined();

    const retired = await fetch(`${ctl.api}/releases/racy/1`, { method: 'DELETE', headers: authHeaders() });
    expect(retired.status).toBe(200);
    expect(((await retired.json()) as ReleaseStatus).retiredAt).toBeDefined();
    const hash = Buffer.from(published.infoHash, 'hex');
    const q = `info_hash=${[...hash].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}&peer_id=${'a'.repeat(20)}&port=6881&compact=1`;
    expect(Buffer.from(await (await fetch(`${ctl.announce}?${q}`)).arrayBuffer()).toString('latin1')).toMatch(/not served by this tracker/);
  });
});
