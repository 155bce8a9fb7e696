import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStrict as decode } from '../libs/bencode/src/index.js';
import { parseTorrent } from '../libs/metainfo/src/parse.js';
import { percentEncodeBytes } from '../libs/tracker/src/query.js';
import type { ApiError, ReleaseStatus } from '../libs/contracts/src/rest.js';
import { startCli } from './helpers/cli.js';
import { authHeaders, parsePrometheusText, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';

let temp: { dir: string; remove: () => Promise<void> };
let ctl: ControllerUnderTest;
const artifact = randomBytes(3 * 1024 * 1024 + 123);

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${ctl.api}${path}`, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
}

async function publishStream(name: string, version: string, body: Buffer, extra = ''): Promise<Response> {
  return api(`/releases?name=${name}&version=${version}&filename=app.bin${extra}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body });
}

function announceUrl(infoHash: Buffer): string {
  const q = `info_hash=${percentEncodeBytes(infoHash)}&peer_id=${percentEncodeBytes(Buffer.from('-XX0001-abcdefghijkl'))}&port=51413&uploaded=0&downloaded=0&left=100&compact=1`;
  return `${ctl.announce}?${q}`;
}

async function announce(infoHash: Buffer): Promise<Record<string, unknown>> {
  const res = await fetch(announceUrl(infoHash));
  return decode(Buffer.from(await res.arrayBuffer())) as Record<string, unknown>;
}

beforeAll(async () => {
  temp = await tempDataDir();
  ctl = await startControllerProcess(join(temp.dir, 'data'), ['--path-roots', temp.dir]);
});

afterAll(async () => {
  await ctl?.stop();
  await temp?.remove();
});

describe('controller REST API', () => {
  it('publishes a streamed artifact and serves its status and torrent', async () => {
    const res = await publishStream('web', '1.0.0', artifact, '&selector=zone=a,tier=web&metadata=commit=abc123');
    expect(res.status).toBe(201);
    const status = (await res.json()) as ReleaseStatus;
    expect(status).toMatchObject({ name: 'web', version: '1.0.0', bytes: artifact.length, selector: { zone: 'a', tier: 'web' }, metadata: { commit: 'abc123' } });
    expect(status.rollout).toMatchObject({ targeted: 0, complete: 0, timeTo100: null });

    const got = (await (await api('/releases/web/1.0.0')).json()) as ReleaseStatus;
    expect(got.infoHash).toBe(status.infoHash);

    const t = await api('/releases/web/1.0.0/torrent');
    expect(t.status).toBe(200);
    expect(t.headers.get('content-type')).toBe('application/x-bittorrent');
    const metainfo = parseTorrent(Buffer.from(await t.arrayBuffer()));
    expect(metainfo.infoHashHex).toBe(status.infoHash);
    expect(metainfo.private).toBe(true);
    expect(metainfo.name).toBe('app.bin');
    expect(metainfo.length).toBe(artifact.length);
    expect(metainfo.announce).toBe(ctl.announce);
  });

  it('publishes a directory already on the controller by its path', async () => {
    const dir = join(temp.dir, 'site');
    await mkdir(join(dir, 'assets'), { recursive: true });
    await writeFile(join(dir, 'index.html'), '<h1>hello</h1>');
    await writeFile(join(dir, 'assets', 'app.js'), randomBytes(100_000));
    const res = await api('/releases', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ path: dir, name: 'site', version: '2.1', metadata: { by: 'ci' } }) });
    expect(res.status).toBe(201);
    const status = (await res.json()) as ReleaseStatus;
    expect(status).toMatchObject({ name: 'site', version: '2.1', bytes: 100_000 + 14, selector: {}, metadata: { by: 'ci' } });
  });

  it('publishes a multipart upload, fields before the file part', async () => {
    const form = new FormData();
    form.set('name', 'tool');
    form.set('version', '0.9');
    form.set('selector', 'zone=b');
    // Bytes that look like a boundary's start must pass through untouched.
    const data = Buffer.concat([randomBytes(70_000), Buffer.from('\r\n--\r\n-'), randomBytes(70_000)]);
    form.set('file', new Blob([data]), 'tool.tar.gz');
    const res = await api('/releases', { method: 'POST', body: form });
    expect(res.status, await res.clone().text()).toBe(201);
    const status = (await res.json()) as ReleaseStatus;
    expect(status).toMatchObject({ name: 'tool', version: '0.9', bytes: data.length, selector: { zone: 'b' } });
    const metainfo = parseTorrent(Buffer.from(await (await api('/releases/tool/0.9/torrent')).arrayBuffer()));
    expect(metainfo.name).toBe('tool.tar.gz');
    expect(await readFile(join(ctl.dataDir, 'releases', 'tool', '0.9', 'content', 'tool.tar.gz'))).toEqual(data);

    const noFile = new FormData();
    noFile.set('name', 'tool');
    noFile.set('version', '1.0');
    const refused = await api('/releases', { method: 'POST', body: noFile });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as ApiError).field).toBe('file');
  });

  it('lists every release', async () => {
    const list = (await (await api('/releases')).json()) as ReleaseStatus[];
    expect(list.map((r) => `${r.name}@${r.version}`)).toEqual(['web@1.0.0', 'site@2.1', 'tool@0.9']);
  });

  it('refuses a duplicate with 409, an unknown release with 404, a bad field with 400 naming it', async () => {
    const dup = await publishStream('web', '1.0.0', Buffer.from('other bytes'));
    expect(dup.status).toBe(409);
    expect(((await dup.json()) as ApiError).message).toMatch(/web@1.0.0 already exists/);

    for (const path of ['/releases/nope/1', '/releases/nope/1/torrent']) {
      const res = await api(path);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as ApiError).statusCode).toBe(404);
    }
    expect((await api('/releases/nope/1', { method: 'DELETE' })).status).toBe(404);

    const cases: [string, RequestInit, string][] = [
      ['/releases?version=1', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'x' }, 'name'],
      ['/releases?name=a&version=..', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'x' }, 'version'],
      ['/releases?name=a&version=1&selector=zone', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'x' }, 'selector'],
      ['/releases?name=a&version=1&filename=../x', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'x' }, 'filename'],
      ['/releases?name=a&version=1', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: '' }, 'body'],
      ['/releases', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'a', version: '1' }) }, 'path'],
      ['/releases', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'a', version: '1', path: join(temp.dir, 'missing') }) }, 'path'],
      ['/releases', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'x' }, 'Content-Type'],
      ['/releases', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"path": ' }, 'body'],
      ['/releases', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '[1]' }, 'body'],
    ];
    for (const [path, init, field] of cases) {
      const res = await api(path, init);
      const body = (await res.json()) as ApiError;
      expect(res.status, `${path} ${String(init.body)}`).toBe(400);
      expect(body.field, body.message).toBe(field);
    }
    // Nothing refused was registered, nothing left half-written.
    const list = (await (await api('/releases')).json()) as ReleaseStatus[];
    expect(list).toHaveLength(3);
    expect(await readdir(join(ctl.dataDir, 'staging'))).toEqual([]);
  });

  it('answers 507 to an upload larger than the free space and registers nothing', async () => {
    const huge = 2 ** 52;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${ctl.api}/releases?name=huge&version=1`, { method: 'POST', headers: { ...authHeaders(), 'Content-Type': 'application/octet-stream', 'Content-Length': String(huge) } }, (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024));
    });
    expect(res.status).toBe(507);
    expect((JSON.parse(res.body) as ApiError).message).toMatch(/only \d+ bytes are free/);
    expect((await api('/releases/huge/1')).status).toBe(404);
    await expect(stat(join(ctl.dataDir, 'releases', 'huge', '1'))).rejects.toThrow();
  });

  it('makes the same pieces from an upload of unknown length (chunked) as from one of declared length', async () => {
    // Declared length: hashed piece by piece while it arrives. Chunked: hashed from disk after.
    const declared = parseTorrent(Buffer.from(await (await api('/releases/web/1.0.0/torrent')).arrayBuffer()));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < artifact.length; at += 1_000_000) controller.enqueue(artifact.subarray(at, at + 1_000_000));
        controller.close();
      },
    });
    const res = await api('/releases?name=web-chunked&version=1&filename=app.bin', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(201);
    const chunked = parseTorrent(Buffer.from(await (await api('/releases/web-chunked/1/torrent')).arrayBuffer()));
    expect(chunked.pieceLength).toBe(declared.pieceLength);
    expect(chunked.pieceHashes.equals(declared.pieceHashes)).toBe(true);
    expect(chunked.pieceSha256!.equals(declared.pieceSha256!)).toBe(true);
    for (let i = 0; i < declared.pieceCount; i++) {
      const bytes = artifact.subarray(i * declared.pieceLength, (i + 1) * declared.pieceLength);
      expect(declared.pieceHashes.subarray(i * 20, i * 20 + 20).equals(createHash('sha1').update(bytes).digest()), `piece ${i}`).toBe(true);
    }
    const stored = await readFile(join(ctl.dataDir, 'releases', 'web', '1.0.0', 'content', 'app.bin'));
    expect(stored.equals(artifact)).toBe(true);
  });

  it('registers nothing when an upload of declared length is cut off, and takes the same release again after', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${ctl.api}/releases?name=cut&version=1&filename=app.bin`, {
        method: 'POST',
        headers: { ...authHeaders(), 'Content-Type': 'application/octet-stream', 'Content-Length': String(artifact.length) },
      });
      req.on('error', () => resolve());
      req.write(artifact.subarray(0, 1_500_000), () => setTimeout(() => req.destroy(), 200));
    });
    const deadline = Date.now() + 5000;
    while ((await readdir(join(ctl.dataDir, 'staging'))).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await readdir(join(ctl.dataDir, 'staging'))).toEqual([]);
    expect((await api('/releases/cut/1')).status).toBe(404);
    expect((await publishStream('cut', '1', artifact)).status).toBe(201);
  });

  it('answers 401 on every documented route but health and metrics, without a token or with a wrong one', async () => {
    const doc = (await (await fetch(`${ctl.base}/api/docs-json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const open = new Set(['/healthz', '/readyz', '/metrics']);
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => ({ path, method: m.toUpperCase() })));
    const guarded = routes.filter((r) => !open.has(r.path));
    expect(guarded.map((r) => `${r.method} ${r.path}`).sort()).toEqual(
      ['DELETE /api/v1/releases/{name}/{version}', 'GET /api/v1/agents', 'GET /api/v1/releases', 'GET /api/v1/releases/{name}/{version}', 'GET /api/v1/releases/{name}/{version}/torrent', 'GET /api/v1/signing-key', 'POST /api/v1/releases'].sort(),
    );
    for (const { path, method } of guarded) {
      const url = `${ctl.base}${path.replace('{name}', 'web').replace('{version}', '1.0.0')}`;
      for (const headers of [{}, authHeaders('wrong-token-0123456789abcdef'), { Authorization: 'Basic dXNlcjpwYXNz' }]) {
        const res = await fetch(url, { method, headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: method === 'POST' ? 'x' : undefined });
        expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(((await res.json()) as ApiError).statusCode).toBe(401);
      }
    }
    // Auth comes before any reading of the body: a malformed one gets 401 too.
    const bad = await fetch(`${ctl.api}/releases`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{bad' });
    expect(bad.status).toBe(401);
    // Nothing changed: the DELETE without a token did not retire anything.
    expect(((await (await api('/releases/web/1.0.0')).json()) as ReleaseStatus).retiredAt).toBeUndefined();
    for (const path of open) expect((await fetch(`${ctl.base}${path}`)).status, path).toBe(200);
  });

  it('serves the tracker privately: known info hashes only', async () => {
    const known = (await (await api('/releases/web/1.0.0')).json()) as ReleaseStatus;
    const ok = await announce(Buffer.from(known.infoHash, 'hex'));
    expect(ok['failure reason']).toBeUndefined();
    expect(typeof ok['interval']).toBe('number');
    // The origin seeder lists itself, so a peer that knows only the torrent finds it.
    expect((ok['peers'] as Buffer).length).toBeGreaterThanOrEqual(6);

    const refused = await announce(randomBytes(20));
    expect(String(refused['failure reason'])).toMatch(/not served by this tracker/);
  });

  it('exposes Prometheus metrics', async () => {
    const res = await fetch(`${ctl.base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const names = parsePrometheusText(text);
    for (const n of ['swarmship_controller_releases', 'swarmship_controller_agents', 'swarmship_controller_rollout_complete_ratio', 'swarmship_controller_origin_sent_bytes_total', 'swarmship_tracker_announces_total', 'process_cpu_seconds_total']) {
      expect(names, n).toContain(n);
    }
    expect(text).toMatch(/^swarmship_controller_releases\{state="live"\} 5$/m);
    expect(text).toMatch(/^swarmship_tracker_announces_total [1-9]/m);
    expect(text).toMatch(/^swarmship_controller_rollout_complete_ratio\{release="web@1.0.0"\} 0$/m);
  });

  it("keeps V8's young generation at its initial size through start-up and uploads (full collections otherwise follow every half second of seeding)", async () => {
    // Left alone, NestJS's start-up grows it to 32 MiB (two 16 MiB semi-spaces). Kept
    // small, V8 still doubles its 1 MiB semi-spaces now and then under load (4-8 MiB
    // seen here after the uploads above).
    const text = await (await fetch(`${ctl.base}/metrics`)).text();
    const newSpace = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
    expect(newSpace, 'the new space in /metrics').not.toBeNull();
    expect(Number(newSpace![1])).toBeLessThanOrEqual(8 * 1024 * 1024);
  });

  it('seeds from the origin: a client that knows only the torrent downloads a verified copy through the tracker', async () => {
    const torrentPath = join(temp.dir, 'web.torrent');
    await writeFile(torrentPath, Buffer.from(await (await api('/releases/web/1.0.0/torrent')).arrayBuffer()));
    const out = join(temp.dir, 'download');
    const cli = startCli(['download', torrentPath, '--dir', out, '--host', '127.0.0.1', '--json']);
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (code !== 0) await cli.stop();
    expect(code, cli.stderr()).toBe(0);
    expect((await readFile(join(out, 'app.bin'))).equals(artifact)).toBe(true);
    const status = (await (await api('/releases/web/1.0.0')).json()) as ReleaseStatus;
    expect(status.rollout.originBytesSent).toBeGreaterThanOrEqual(artifact.length);
    const sent = /^swarmship_controller_origin_sent_bytes_total (\d+)/m.exec(await (await fetch(`${ctl.base}/metrics`)).text());
    expect(Number(sent?.[1])).toBeGreaterThanOrEqual(artifact.length);
  });

  it('retires a release: listed as retired, dropped from the tracker', async () => {
    const res = await api('/releases/site/2.1', { method: 'DELETE' });
    expect(res.status).toBe(200);
    const status = (await res.json()) as ReleaseStatus;
    expect(status.retiredAt).toBeDefined();
    expect(String((await announce(Buffer.from(status.infoHash, 'hex')))['failure reason'])).toMatch(/not served/);
  });

  it('keeps every release across a restart and seeds the live ones again', async () => {
    const before = (await (await api('/releases')).json()) as ReleaseStatus[];
    expect(await ctl.stop()).toBe(0);
    ctl = await startControllerProcess(ctl.dataDir, ['--path-roots', temp.dir]);
    expect((await fetch(`${ctl.base}/readyz`)).status).toBe(200);
    const after = (await (await api('/releases')).json()) as ReleaseStatus[];
    expect(after.map((r) => [r.name, r.version, r.infoHash, r.retiredAt])).toEqual(before.map((r) => [r.name, r.version, r.infoHash, r.retiredAt]));
    const live = before.find((r) => r.retiredAt === undefined)!;
    expect((await announce(Buffer.from(live.infoHash, 'hex')))['failure reason']).toBeUndefined();
    const retired = before.find((r) => r.retiredAt !== undefined)!;
    expect(String((await announce(Buffer.from(retired.infoHash, 'hex')))['failure reason'])).toMatch(/not served/);
  });
});

describe('controller tokens', () => {
  it('generates tokens at first start, stores them 0600, says where and never prints them', async () => {
    const dataDir = join(temp.dir, 'fresh');
    const fresh = await startControllerProcess(dataDir, [], {});
    try {
      const listening = fresh.cli.events.find((e) => e['event'] === 'listening')!;
      expect(listening['tokensFile']).toBe(join(dataDir, 'tokens.yaml'));
      expect((await stat(join(dataDir, 'tokens.yaml'))).mode & 0o777).toBe(0o600);
      const tokens = (await readFile(join(dataDir, 'tokens.yaml'), 'utf8')).match(/: (\S+)/g)!.map((m) => m.slice(2));
      expect(tokens).toHaveLength(2);
      expect((await fetch(`${fresh.api}/releases`, { headers: authHeaders(tokens[0]) })).status).toBe(200);
      expect((await fetch(`${fresh.api}/releases`, { headers: authHeaders(tokens[1]) })).status).toBe(401);
      for (const t of tokens) {
        expect(fresh.cli.stdout()).not.toContain(t);
        expect(fresh.cli.stderr()).not.toContain(t);
      }
    } finally {
      expect(await fresh.stop()).toBe(0);
    }
  });
});
