/**
 * The security model of docs/SECURITY.md, held against a real `swarmship controller`
 * process on loopback: what answers without a token, what a client without one can make
 * the controller buffer, and what never reaches its output.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStrict } from '../libs/bencode/src/index.js';
import { AgentPatterns, type AgentSyncRequest, type AgentSyncResponse } from '../libs/contracts/src/agent-channel.js';
import type { ReleaseStatus } from '../libs/contracts/src/rest.js';
import { percentEncodeBytes } from '../libs/tracker/src/query.js';
import { AGENT_TOKEN, API_TOKEN, authHeaders, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';
import { parsePrometheus, startAgentProcess } from './helpers/agent-process.js';
import { startCli, type RunningCli } from './helpers/cli.js';
import { freePort } from './helpers/swarm.js';

const MIB = 1024 * 1024;

let temp: { dir: string; remove: () => Promise<void> };
let ctl: ControllerUnderTest;

beforeAll(async () => {
  temp = await tempDataDir();
  // Short HTTP timeouts, so slow clients are seen dropped within a test's time.
  // SWARMSHIP_DEBUG=1 makes it log its route table as registered.
  ctl = await startControllerProcess(join(temp.dir, 'data'), ['--http-headers-timeout', '2', '--http-idle-timeout', '6'], {
    SWARMSHIP_TOKEN: API_TOKEN,
    SWARMSHIP_AGENT_TOKEN: AGENT_TOKEN,
    SWARMSHIP_DEBUG: '1',
  });
});

afterAll(async () => {
  await ctl?.stop();
  await temp?.remove();
});

async function residentBytes(): Promise<number> {
  const text = await (await fetch(`${ctl.base}/metrics`)).text();
  const m = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  if (!m) throw new Error('no process_resident_memory_bytes in /metrics');
  return Number(m[1]);
}

/**
 * Sends `head`, then up to `total` bytes of `fill`, on a connected socket as fast as the
 * peer reads them, until the peer closes the connection; resolves with what was written by then.
 */
function pump(socket: Socket, head: Buffer, total: number, fill: number, timeoutMs = 20_000): Promise<{ written: number; closed: boolean }> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(MIB, fill);
    let written = 0;
    let closed = socket.destroyed;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ written, closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(head);
    const more = () => {
      while (!closed && written < total) {
        written += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', more);
      }
      // Everything is out: give the peer a moment to close before calling it open.
      if (!closed) setTimeout(finish, 2000);
    };
    more();
  });
}

/** `pump` on a new connection to `port`. */
function flood(port: number, head: Buffer, total: number, fill: number): Promise<{ written: number; closed: boolean }> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(pump(socket, head, total, fill)));
    socket.once('close', () => resolve({ written: 0, closed: true }));
  });
}

describe('agent channel: what a client without a token can do', () => {
  let client: ClientProxy;
  const sync = (): Promise<AgentSyncResponse> => {
    const req: AgentSyncRequest = {
      token: AGENT_TOKEN,
      agent: { name: 'probe', labels: {}, addresses: ['127.0.0.1'], peerPort: 1, diskFreeBytes: 0, version: 'test' },
      holdings: [],
      knownRevision: 0,
      waitMs: 0,
    };
    return firstValueFrom(client.send<AgentSyncResponse, AgentSyncRequest>(AgentPatterns.sync, req));
  };

  beforeAll(async () => {
    client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: ctl.channel.host, port: ctl.channel.port } }) as ClientProxy;
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
  });

  it('cuts off a 100 MB frame, an endless header and garbage before buffering them, and keeps serving', async () => {
    const before = await residentBytes();
    const cases: [string, Buffer, number][] = [
      ['a frame that declares 100 MB', Buffer.from(`${100 * MIB}#{"pattern":"sync","data":"`), 0x61],
      ['a length header that never ends', Buffer.from('1'), 0x31],
      ['a frame that lies about its length, then garbage', Buffer.from('2#{}'), 0x7b],
      ['no header at all', Buffer.from('{"pattern":"sync"}'), 0x20],
    ];
    for (const [what, head, fill] of cases) {
      const { written, closed } = await flood(ctl.channel.port, head, 100 * MIB, fill);
      expect(closed, what).toBe(true);
      // Loopback socket buffers take a few MB; the controller itself read almost nothing.
      expect(written, what).toBeLessThan(32 * MIB);
    }
    const after = await residentBytes();
    expect(after - before).toBeLessThan(48 * MIB);
    // A real agent is still served.
    const res = await sync();
    expect(res.revision).toBeGreaterThan(0);
    expect((await fetch(`${ctl.base}/healthz`)).status).toBe(200);
    expect(ctl.cli.child.exitCode).toBeNull();
  });

  it('refuses a frame declared over the limit even when it is sent slowly', async () => {
    const socket = connect(ctl.channel.port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      socket.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    socket.write(`${8 * MIB + 1}#`);
    expect(await closed).toBe(true);
  });

  it('answers a frame of the largest size followed by a small one in the same write', async () => {
    // The transport checks everything it has buffered against its limit: the big frame
    // and the start of the next, which arrive in one read.
    const frame = (id: string, padTo?: number): string => {
      const data = { token: AGENT_TOKEN, agentName: 'probe', holdings: [] };
      let json = JSON.stringify({ pattern: AgentPatterns.progress, data, id });
      if (padTo !== undefined) json = `${json.slice(0, -1)},"pad":"${'a'.repeat(padTo - json.length - 9)}"}`;
      if (padTo !== undefined) expect(json.length).toBe(padTo);
      return `${json.length}#${json}`;
    };
    const socket = connect(ctl.channel.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    let closed = false;
    socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
    socket.on('close', () => (closed = true));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(frame('big', 8 * MIB) + frame('small'));
    const deadline = Date.now() + 15_000;
    while (!(received.includes('"big"') && received.includes('"small"')) && !closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    expect(closed, 'the controller dropped the connection').toBe(false);
    const answers = received.match(/\d+#\{[^#]*\}/g)?.map((f) => JSON.parse(f.slice(f.indexOf('#') + 1)) as { id: string; response: unknown }) ?? [];
    expect(answers.map((a) => [a.id, a.response])).toEqual([['big', { ok: true }], ['small', { ok: true }]]);
  });
});

describe("agent channel: what a fake controller can make an agent buffer", () => {
  it('drops an answer declared over its limit before buffering it, stays up with bounded memory, and reconnects', async () => {
    let connections = 0;
    const sockets = new Set<Socket>();
    let flooded: Promise<{ written: number; closed: boolean }> | undefined;
    const server: Server = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.on('error', () => undefined);
      if (connections > 1) return;
      // Answer the agent's first call with a frame that declares 100 MB and keeps coming.
      flooded = new Promise((resolve) => {
        socket.once('data', () => resolve(pump(socket, Buffer.from(`${100 * MIB}#{"id":"`), 100 * MIB, 0x61)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = await tempDataDir();
    const agent = await startAgentProcess({ name: 'probe', dataDir: join(dir.dir, 'agent'), controllerPort: (server.address() as AddressInfo).port, token: AGENT_TOKEN, allowUnsigned: true });
    try {
      const rss = async () => parsePrometheus(await agent.metrics()).get('process_resident_memory_bytes') ?? NaN;
      const before = await rss();
      const deadline = Date.now() + 15_000;
      while (flooded === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const { written, closed } = await flooded!;
      expect(closed).toBe(true);
      expect(written).toBeLessThan(32 * MIB);
      while (connections < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(connections, 'the agent called again').toBeGreaterThanOrEqual(2);
      expect((await rss()) - before).toBeLessThan(48 * MIB);
      expect((await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(200);
      expect(agent.cli.child.exitCode).toBeNull();
    } finally {
      await agent.cli.stop();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dir.remove();
    }
  }, 40_000);
});

const portOf = (base: string) => Number(new URL(base).port);

interface RawAnswer {
  /** Status of the first response, if one came. */
  status: number | undefined;
  head: string;
  /** Milliseconds from connecting until the server closed the connection (or the timeout). */
  closedAfterMs: number;
  closed: boolean;
}

/**
 * Writes `parts` on a fresh connection, each after waiting `gapMs`, and reads until the
 * server closes it (or `timeoutMs`). What a browser or fetch would never send.
 */
function rawExchange(port: number, parts: (string | Buffer)[], opts: { gapMs?: number; timeoutMs?: number } = {}): Promise<RawAnswer> {
  const { gapMs = 0, timeoutMs = 10_000 } = opts;
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(received);
      resolve({ status: m ? Number(m[1]) : undefined, head: received.split('\r\n\r\n')[0] ?? '', closedAfterMs: Date.now() - started, closed });
    };
    timers.push(setTimeout(() => finish(false), timeoutMs));
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      parts.forEach((part, i) => {
        timers.push(
          setTimeout(() => {
            if (!done && !socket.destroyed) socket.write(part);
          }, i * gapMs),
        );
      });
    });
  });
}

const request = (method: string, path: string, headers: Record<string, string> = {}, body = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;

describe('controller HTTP: bounds on what a client may send', () => {
  it('answers 431 to headers over 16 KiB, on the API and on the tracker, and keeps serving', async () => {
    const port = portOf(ctl.base);
    const big = await rawExchange(port, [request('GET', '/healthz', { 'X-Pad': 'a'.repeat(20_000), Connection: 'close' })]);
    expect(big.status).toBe(431);
    const longAnnounce = await rawExchange(port, [request('GET', `/announce?info_hash=${'%41'.repeat(20)}&pad=${'b'.repeat(20_000)}`, { Connection: 'close' })]);
    expect(longAnnounce.status).toBe(431);
    const fine = await rawExchange(port, [request('GET', '/healthz', { 'X-Pad': 'a'.repeat(8_000), Connection: 'close' })]);
    expect(fine.status).toBe(200);
  });

  it('drops a client that trickles its headers (slow loris) within the headers timeout', async () => {
    // One byte every 200 ms: never silent, never done. The limit is 2 s here (20 s by default).
    const line = request('GET', '/healthz', { 'X-Slow': 'x'.repeat(200) });
    const answer = await rawExchange(portOf(ctl.base), [...line], { gapMs: 200, timeoutMs: 15_000 });
    expect(answer.closed).toBe(true);
    expect(answer.status === undefined || answer.status === 408, answer.head).toBe(true);
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(1_800);
    expect(answer.closedAfterMs).toBeLessThan(5_000);
  });

  it('closes an idle keep-alive connection after its answer', async () => {
    const answer = await rawExchange(portOf(ctl.base), [request('GET', '/healthz')], { timeoutMs: 15_000 });
    expect(answer.status).toBe(200);
    expect(answer.head).toMatch(/^Keep-Alive: timeout=5$/im);
    expect(answer.closed).toBe(true);
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(4_500);
    expect(answer.closedAfterMs).toBeLessThan(8_000);
  });

  it('closes an upload that stalls, and registers nothing', async () => {
    const head = request('POST', '/api/v1/releases?name=stalled&version=1', { ...authHeaders(), 'Content-Type': 'application/octet-stream', 'Content-Length': String(MIB) });
    const answer = await rawExchange(portOf(ctl.base), [head, Buffer.alloc(100_000, 1)], { timeoutMs: 20_000 });
    expect(answer.closed).toBe(true);
    // The idle timeout is 6 s here (120 s by default).
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(5_500);
    expect(answer.closedAfterMs).toBeLessThan(12_000);
    expect((await fetch(`${ctl.api}/releases/stalled/1`, { headers: authHeaders() })).status).toBe(404);
  });

  it('answers 413 to a JSON body over 64 KiB, declared or chunked, and closes the connection', async () => {
    const body = JSON.stringify({ name: 'a', version: '1', path: '/x', pad: 'p'.repeat(70_000) });
    const declared = await rawExchange(portOf(ctl.base), [request('POST', '/api/v1/releases', { ...authHeaders(), 'Content-Type': 'application/json', 'Content-Length': String(body.length) }), body.slice(0, 1000)]);
    expect(declared.status).toBe(413);
    expect(declared.closed).toBe(true);
    const chunked = await fetch(`${ctl.api}/releases`, {
      method: 'POST',
      headers: { ...authHeaders(), 'Content-Type': 'application/json' },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(body));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject({ statusCode: 413, field: 'body' });
    // A streamed artifact has no such limit: only the free space bounds it.
    const upload = await fetch(`${ctl.api}/releases?name=big-enough&version=1`, { method: 'POST', headers: { ...authHeaders(), 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(2 * MIB, 7) });
    expect(upload.status).toBe(201);
  });
});

/** `swarmship agent` on loopback; releases are not what these tests are about, so unsigned ones are accepted. */
async function startAgent(name: string, dataDir: string, controllerPort: number, token: string, extra: string[] = []): Promise<{ cli: RunningCli; httpPort: number }> {
  const httpPort = await freePort('127.0.0.1');
  const cli = startCli(
    ['agent', '--controller', `tcp://127.0.0.1:${controllerPort}`, '--name', name, '--data', dataDir, '--peer-port', '0', '--http-port', String(httpPort), '--listen-host', '127.0.0.1', '--json', ...extra],
    { SWARMSHIP_AGENT_TOKEN: token, SWARMSHIP_ALLOW_UNSIGNED: 'true', SWARMSHIP_CONFIG: '', SWARMSHIP_CONTROLLER: '' },
  );
  await cli.waitFor((e) => e['event'] === 'http-listening', 20_000);
  return { cli, httpPort };
}

/** JSON lines of a process's output. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').flatMap((l) => {
    try {
      const v = JSON.parse(l) as unknown;
      return typeof v === 'object' && v !== null ? [v as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** A registered route's path made concrete: parameters filled in, the fallback given a path nothing serves. */
const concrete = (path: string) => path.replace(/:(\w+)/g, (_m, p: string) => (p === 'version' ? '1.0.0' : 'web')).replace(/\*\w+/, 'no-such-route');

describe('route table: only health, metrics, the tracker and the docs answer without a token', () => {
  /** What may answer without the API token; every other registered route must refuse. */
  const PUBLIC = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /announce', 'GET /scrape']);
  const isDocs = (path: string) => path === '/api/docs' || path.startsWith('/api/docs/') || path === '/api/docs-json' || path === '/api/docs-yaml';

  it('walks every route the controller registered: /api/v1 answers 401 without a valid token, nothing else is open', async () => {
    const logged = jsonLines(ctl.cli.stderr()).find((e) => e['msg'] === 'http routes');
    expect(logged, 'the controller logs its route table with SWARMSHIP_DEBUG=1').toBeDefined();
    const routes = (logged!['routes'] as string[]).map((r) => {
      const [method, path] = r.split(' ') as [string, string];
      return { method, path };
    });
    expect(routes.length).toBeGreaterThan(10);
    const port = portOf(ctl.base);
    const api = routes.filter((r) => r.path.startsWith('/api/v1/'));
    // The Nest routes under /api/v1 (a fallback for unknown paths aside) are exactly the documented ones.
    const doc = (await (await fetch(`${ctl.base}/api/docs-json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)).filter((r) => r.includes(' /api/v1/'));
    const registered = api.filter((r) => !r.path.includes('*')).map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
    expect([...new Set(registered)].sort()).toEqual([...new Set(documented)].sort());

    const walked: string[] = [];
    for (const { method, path } of routes) {
      const key = `${method} ${path}`;
      // HEAD is GET without the body: public wherever GET is.
      if (PUBLIC.has(key) || PUBLIC.has(`GET ${path}`) && method === 'HEAD' || (isDocs(path) && ['GET', 'HEAD', 'USE'].includes(method))) continue;
      const methods = method === 'USE' || method === 'ALL' ? ['GET', 'POST'] : [method];
      for (const m of methods) {
        if (m === 'CONNECT') continue; // not a request to a path
        for (const auth of [{}, authHeaders('wrong-token-0123456789abcdef'), { Authorization: 'Basic dXNlcjpwYXNz' }, { Authorization: `Bearer ${API_TOKEN}x` }]) {
          const answer = await rawExchange(port, [request(m, concrete(path), { ...auth, Connection: 'close', 'Content-Type': 'application/octet-stream', 'Content-Length': '1' }, 'x')]);
          walked.push(`${m} ${path}`);
          if (path.startsWith('/api/v1/') && !path.includes('*')) expect(answer.status, `${m} ${path} ${JSON.stringify(auth)}`).toBe(401);
          // Anything else registered (the methods Nest maps beside the health routes, the
          // fallback): refused or not found, never served.
          else expect([401, 404, 405, undefined], `${m} ${path} ${JSON.stringify(auth)}`).toContain(answer.status);
        }
      }
    }
    expect(walked.filter((w) => w.startsWith('POST /api/v1/releases')).length).toBeGreaterThan(0);
    // Nothing was changed by the walk: no release exists under the names it used.
    expect((await fetch(`${ctl.api}/releases/web/1.0.0`, { headers: authHeaders() })).status).toBe(404);
    for (const open of PUBLIC) {
      const [m, path] = open.split(' ') as [string, string];
      const answer = await rawExchange(port, [request(m, path, { Connection: 'close' })]);
      expect(answer.status, open).toBe(200);
    }
  });

  it("walks the agent's port: GET and HEAD of /metrics, /healthz and /readyz, nothing else", async () => {
    const dir = join(temp.dir, 'route-agent');
    // No controller at this port: the agent serves its HTTP port regardless.
    const agent = await startAgent('walker', dir, await freePort('127.0.0.1'), AGENT_TOKEN);
    try {
      const listening = agent.cli.events.find((e) => e['event'] === 'http-listening')!;
      const endpoints = listening['endpoints'] as string[];
      expect([...endpoints].sort()).toEqual(['GET /healthz', 'GET /metrics', 'GET /readyz']);
      for (const e of endpoints) {
        const path = e.split(' ')[1]!;
        expect((await rawExchange(agent.httpPort, [request('GET', path, { Connection: 'close' })])).status, e).toBeLessThan(600);
        expect((await rawExchange(agent.httpPort, [request('HEAD', path, { Connection: 'close' })])).status, e).toBeLessThan(600);
        for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
          // With a body the agent must not read: refused before routing, connection closed.
          const answer = await rawExchange(agent.httpPort, [request(m, path, { 'Content-Length': String(10 * MIB) }, 'x'.repeat(1000))]);
          expect(answer.status, `${m} ${path}`).toBe(405);
          expect(answer.closed && answer.closedAfterMs < 3000, `${m} ${path} closed`).toBe(true);
        }
      }
      expect((await rawExchange(agent.httpPort, [request('GET', '/api/v1/releases', { Connection: 'close' })])).status).toBe(404);
      // The agent's own bounds: headers over 16 KiB, and a slow client dropped within 10 s.
      expect((await rawExchange(agent.httpPort, [request('GET', '/healthz', { 'X-Pad': 'a'.repeat(20_000), Connection: 'close' })])).status).toBe(431);
      const slow = await rawExchange(agent.httpPort, [...request('GET', '/healthz', { 'X-Slow': 'x'.repeat(200) })], { gapMs: 200, timeoutMs: 20_000 });
      expect(slow.closed).toBe(true);
      expect(slow.closedAfterMs).toBeGreaterThanOrEqual(9_000);
      expect(slow.closedAfterMs).toBeLessThan(13_000);
    } finally {
      expect(await agent.cli.stop()).toBe(0);
    }
  }, 40_000);
});

/** Every regular file below `dir`, as paths. */
async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesBelow(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('tokens never reach an output', () => {
  it('the controller, agents and CLI print no token, right or wrong, through successes, refusals and a post-publish hook that dumps its environment', async () => {
    const secret = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;
    const apiToken = secret('api-token');
    const agentToken = secret('agent-token');
    const wrongApi = secret('wrong-api-token');
    const wrongAgent = secret('wrong-agent-token');
    const secrets = [apiToken, agentToken, wrongApi, wrongAgent];
    const dir = join(temp.dir, 'tokens');
    const outputs: (() => string)[] = [];
    const own = await startControllerProcess(join(dir, 'controller'), ['--log-format', 'json'], { SWARMSHIP_TOKEN: apiToken, SWARMSHIP_AGENT_TOKEN: agentToken, SWARMSHIP_DEBUG: '1' });
    outputs.push(own.cli.stdout, own.cli.stderr);
    const agents: RunningCli[] = [];
    try {
      // The hook prints its whole environment, which the agent logs: the token must not be in it.
      const good = await startAgent('good', join(dir, 'good'), own.channel.port, agentToken, ['--on-publish', 'env | grep SWARMSHIP_ | sort; echo "token=[$SWARMSHIP_AGENT_TOKEN]"']);
      const bad = await startAgent('bad', join(dir, 'bad'), own.channel.port, wrongAgent);
      agents.push(good.cli, bad.cli);
      outputs.push(good.cli.stdout, good.cli.stderr, bad.cli.stdout, bad.cli.stderr);
      await bad.cli.waitFor((e) => e['event'] === 'controller-refused', 15_000);
      await good.cli.waitFor((e) => e['event'] === 'controller-connected', 15_000);

      for (const token of [wrongApi, `${apiToken}x`, apiToken.slice(0, -1)]) {
        expect((await fetch(`${own.api}/releases`, { headers: authHeaders(token) })).status).toBe(401);
        expect((await fetch(`${own.api}/releases?name=x&version=1`, { method: 'POST', headers: { ...authHeaders(token), 'Content-Type': 'application/octet-stream' }, body: 'x' })).status).toBe(401);
      }
      const artifact = join(dir, 'app.bin');
      await writeFile(artifact, randomBytes(200_000));
      const env = { SWARMSHIP_URL: own.api.replace(/\/api\/v1$/, '') };
      const refused = startCli(['releases', 'ls'], { ...env, SWARMSHIP_TOKEN: wrongApi });
      expect(await refused.exited).not.toBe(0);
      const publish = startCli(['publish', artifact, '--name', 'app', '--version', '1'], { ...env, SWARMSHIP_TOKEN: apiToken });
      expect(await publish.exited, publish.stderr()).toBe(0);
      const list = startCli(['agents', 'ls'], { ...env, SWARMSHIP_TOKEN: apiToken });
      expect(await list.exited, list.stderr()).toBe(0);
      outputs.push(refused.stdout, refused.stderr, publish.stdout, publish.stderr, list.stdout, list.stderr);

      const hook = await good.cli.waitFor((e) => e['event'] === 'on-publish-finished', 30_000);
      // The hook did run and print its environment: the check below looks at real output.
      expect(String(hook['output'])).toMatch(/SWARMSHIP_RELEASE_NAME=app/);
      expect(String(hook['output'])).toContain('token=[]');
    } finally {
      for (const a of agents) await a.stop();
      await own.stop();
    }
    const files = (await filesBelow(dir)).filter((f) => !f.endsWith('app.bin'));
    expect(files.length).toBeGreaterThan(3);
    const texts = [...outputs.map((o) => o()), ...(await Promise.all(files.map((f) => readFile(f, 'latin1'))))];
    expect(texts.join('').length).toBeGreaterThan(1000);
    for (const s of secrets) {
      texts.forEach((t, i) => expect(t.includes(s), `${s.split('-').slice(0, -1).join('-')} in ${i < outputs.length ? `output ${i}` : files[i - outputs.length]}`).toBe(false));
    }
  }, 60_000);
});

describe('embedded tracker: malformed announces', () => {
  it('answers each with a bencoded failure reason naming the fault, never an error page, and keeps serving', async () => {
    const res = await fetch(`${ctl.api}/releases?name=tracked&version=1`, { method: 'POST', headers: { ...authHeaders(), 'Content-Type': 'application/octet-stream' }, body: randomBytes(100_000) });
    expect(res.status).toBe(201);
    const known = percentEncodeBytes(Buffer.from(((await res.json()) as ReleaseStatus).infoHash, 'hex'));
    const peer = percentEncodeBytes(Buffer.from('-XX0001-abcdefghijkl'));
    const base = `info_hash=${known}&peer_id=${peer}&port=51413&uploaded=0&downloaded=0&left=100&compact=1`;
    const announce = async (query: string) => {
      const r = await fetch(`${ctl.base}/announce?${query}`);
      expect(r.status, query.slice(0, 80)).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain');
      return decodeStrict(Buffer.from(await r.arrayBuffer())) as Record<string, unknown>;
    };
    const cases: [string, string, RegExp][] = [
      ['no info_hash', `peer_id=${peer}&port=1`, /info_hash is missing/],
      ['a short info_hash', base.replace(known, 'short'), /info_hash must be 20 bytes, got 5/],
      ['a long info_hash', base.replace(known, `${known}%00`), /info_hash must be 20 bytes, got 21/],
      ['a broken escape', base.replace(known, `${known.slice(0, -3)}%G`), /info_hash has a malformed percent-escape/],
      ['an unknown info_hash', base.replace(known, percentEncodeBytes(randomBytes(20))), /not served by this tracker/],
      ['no peer_id', base.replace(`peer_id=${peer}`, ''), /peer_id is missing/],
      ['port 0', base.replace('port=51413', 'port=0'), /port must be 1 to 65535/],
      ['port 70000', base.replace('port=51413', 'port=70000'), /port must be 1 to 65535/],
      ['a negative port', base.replace('port=51413', 'port=-1'), /port must not be negative/],
      ['a port that is no number', base.replace('port=51413', 'port=http'), /port must be a non-negative integer/],
      ['no port', base.replace('port=51413', ''), /port is missing/],
      ['a negative numwant', `${base}&numwant=-5`, /numwant must not be negative/],
      ['a numwant past 2^53', `${base}&numwant=${'9'.repeat(30)}`, /numwant is too large/],
      ['a numwant that is no number', `${base}&numwant=lots`, /numwant must be a non-negative integer/],
      ['a bogus event', `${base}&event=exploded`, /event must be started, completed, stopped or empty/],
      ['a left past 2^53', base.replace('left=100', `left=${'9'.repeat(400)}`), /left is too large/],
      ['14 KB of parameters', `${base}&${'k=v&'.repeat(3500)}`.replace('port=51413', 'port=x'), /port must be a non-negative integer/],
    ];
    for (const [what, query, reason] of cases) {
      const answer = await announce(query);
      expect(String(answer['failure reason']), what).toMatch(reason);
    }
    // A burst of faults at once changes nothing either.
    const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(`${ctl.base}/announce?info_hash=${'%00'.repeat(i % 25)}`).then((r) => r.status)));
    expect(new Set(burst)).toEqual(new Set([200]));
    // A huge numwant is served, capped; the tracker still answers a good announce.
    const ok = await announce(`${base}&numwant=100000`);
    expect(ok['failure reason']).toBeUndefined();
    expect(typeof ok['interval']).toBe('number');
    const scrape = decodeStrict(Buffer.from(await (await fetch(`${ctl.base}/scrape?info_hash=${percentEncodeBytes(randomBytes(20))}`)).arrayBuffer())) as Record<string, unknown>;
    expect(scrape['files']).toEqual({});
    expect(ctl.cli.child.exitCode).toBeNull();
    expect(ctl.cli.stderr()).not.toMatch(/internal tracker error|"level":"error".*announce/);
  });
});
