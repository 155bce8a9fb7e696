/**
 * Agents as they run on nodes: real `swarmship agent` processes on loopback, a
 * controller that speaks the real agent channel, a `swarmship seed` origin and a
 * tracker. Proves download from the swarm, atomic publication, unpacking, retirement,
 * token refusal and the metrics, end to end.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredRelease } from '../libs/contracts/src/agent-channel.js';
import { createTorrent } from '../libs/metainfo/src/index.js';
import { FakeController, makeSigner, signRelease, type TestSigner } from './helpers/agent-fake-controller.js';
import { parsePrometheus, startAgentProcess, type AgentUnderTest } from './helpers/agent-process.js';
import { CliProcesses, MIB, freePort, makeTempDir, removeDir, sha256OfFile, writeArtifact } from './helpers/swarm.js';

const TOKEN = 'agent-test-token';
const APP_BYTES = 24 * MIB;

async function release(content: string, name: string, version: string, announce: string, signer: TestSigner, unpack = false): Promise<{ desired: DesiredRelease; torrentPath: string }> {
  const { torrent, metainfo } = await createTorrent(content, { pieceLength: 256 * 1024, announce: [announce], creationDate: false });
  const torrentPath = `${content}.torrent`;
  await writeFile(torrentPath, torrent);
  const desired = await signRelease({ name, version, infoHash: metainfo.infoHash.toString('hex'), torrent: torrent.toString('base64'), unpack }, content, signer);
  return { desired, torrentPath };
}

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('swarmship agent with a controller, an origin and a tracker on loopback', () => {
  const procs = new CliProcesses();
  let dir: string;
  let controller: FakeController;
  let app: DesiredRelease;
  let site: DesiredRelease;
  let signer: TestSigner;
  const agents: AgentUnderTest[] = [];

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-agent-');
    const { announce } = await procs.tracker();
    const appFile = join(dir, 'app.bin');
    await writeArtifact(appFile, APP_BYTES, 'agent-app');
    const siteSrc = join(dir, 'site');
    await mkdir(join(siteSrc, 'assets'), { recursive: true });
    await writeFile(join(siteSrc, 'index.html'), '<h1>hello fleet</h1>\n');
    await writeArtifact(join(siteSrc, 'assets', 'blob.bin'), 3 * MIB, 'agent-site');
    const siteFile = join(dir, 'site.tar.gz');
    execFileSync('tar', ['-czf', siteFile, '-C', siteSrc, '.']);
    signer = await makeSigner(dir);
    const a = await release(appFile, 'app', '1.0.0', announce, signer);
    const s = await release(siteFile, 'site', '7', announce, signer, true);
    app = a.desired;
    site = s.desired;
    const origin = await procs.seeder(a.torrentPath, appFile);
    await procs.seeder(s.torrentPath, siteFile);
    controller = new FakeController(TOKEN, { origin: { host: '127.0.0.1', port: origin.port }, announceUrl: announce, retireGraceSeconds: 1 });
    await controller.start(await freePort('127.0.0.1'));
    for (const name of ['node-a', 'node-b']) {
      agents.push(await startAgentProcess({ name, dataDir: join(dir, name), controllerPort: controller.port, token: TOKEN, trustKeys: [signer.publicKeyFile] }));
    }
  }, 40_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cli.stop()));
    await procs.stopAll();
    await controller?.close();
    await removeDir(dir);
  });

  it('two agents each publish a bit-identical copy and report it complete', async () => {
    controller.setDesired([app]);
    const expected = await sha256OfFile(join(dir, 'app.bin'));
    for (const agent of agents) {
      const h = await controller.waitForHolding(agent.name, 'app', '1.0.0', (x) => x?.state === 'complete', 30_000);
      expect(h).toMatchObject({ verifiedBytes: APP_BYTES, totalBytes: APP_BYTES, infoHash: app.infoHash });
      expect(h!.bytesFromOrigin + h!.bytesFromPeers).toBe(APP_BYTES);
      expect(await sha256OfFile(join(agent.releaseDir('app', '1.0.0'), 'app.bin'))).toBe(expected);
      expect(await readdir(join(agent.dataDir, 'staging', 'app')).catch(() => [])).toEqual([]);
    }
    // Progress went out while downloading, not only at the end.
    expect(controller.progressReports.some((r) => r.holdings.some((h) => h.state === 'downloading'))).toBe(true);
  }, 35_000);

  it('serves /metrics as Prometheus text whose received bytes add up to the artifact, and health', async () => {
    const agent = agents[0]!;
    const samples = parsePrometheus(await agent.metrics());
    const origin = samples.get('swarmship_agent_received_bytes_total{source="origin"}') ?? NaN;
    const peer = samples.get('swarmship_agent_received_bytes_total{source="peer"}') ?? NaN;
    expect(origin + peer).toBe(APP_BYTES);
    const h = controller.holding(agent.name, 'app', '1.0.0')!;
    expect(origin).toBe(h.bytesFromOrigin);
    expect(samples.get('swarmship_agent_pieces_verified_total')).toBe(APP_BYTES / (256 * 1024));
    expect(samples.get('swarmship_agent_release_state{state="complete"}')).toBe(1);
    expect(samples.get('swarmship_agent_download_duration_seconds_count')).toBe(1);
    // Nothing left half-fetched once the copy is published.
    expect(samples.get('swarmship_agent_pieces_in_flight')).toBe(0);
    for (const name of ['swarmship_agent_sent_bytes_total', 'swarmship_agent_hash_failures_total', 'swarmship_agent_peers', 'process_cpu_seconds_total']) {
      expect(samples.has(name), name).toBe(true);
    }
    expect((await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${agent.httpPort}/readyz`)).json()).toEqual({ status: 'ready', controller: 'connected' });
  });

  it('unpacks a tarball release beside the artifact, then removes a retired release after the grace period', async () => {
    controller.setDesired([app, site]);
    const agent = agents[0]!;
    await controller.waitForHolding(agent.name, 'site', '7', (x) => x?.state === 'complete', 20_000);
    const unpacked = join(agent.releaseDir('site', '7'), 'unpacked');
    expect(await readFile(join(unpacked, 'index.html'), 'utf8')).toBe('<h1>hello fleet</h1>\n');
    expect(await sha256OfFile(join(unpacked, 'assets', 'blob.bin'))).toBe(await sha256OfFile(join(dir, 'site', 'assets', 'blob.bin')));

    controller.setDesired([site]);
    const retiredAt = Date.now();
    for (const a of agents) {
      await controller.waitForHolding(a.name, 'app', '1.0.0', (x) => x === undefined, 15_000);
      expect(await exists(a.releaseDir('app', '1.0.0'))).toBe(false);
    }
    // Not before the grace period (1 s) was over.
    expect(Date.now() - retiredAt).toBeGreaterThanOrEqual(1000);
    expect(await exists(agent.releaseDir('site', '7'))).toBe(true);
  }, 35_000);

  it('keeps serving while the controller is away, and follows it when it is back', async () => {
    const agent = agents[0]!;
    const port = controller.port;
    const settings = { origin: { host: '127.0.0.1', port: 1 }, announceUrl: '', retireGraceSeconds: 1 };
    await controller.close();
    await agent.cli.waitFor((e) => e.event === 'controller-unreachable', 10_000);
    expect(await exists(join(agent.releaseDir('site', '7'), 'site.tar.gz'))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(200);

    controller = new FakeController(TOKEN, settings);
    controller.setDesired([site]);
    await controller.start(port);
    const h = await controller.waitForHolding(agent.name, 'site', '7', (x) => x?.state === 'complete', 15_000);
    expect(h?.verifiedBytes).toBe(h?.totalBytes);
  }, 25_000);

  it('an agent with a wrong token is refused by the controller and says so', async () => {
    const intruder = await startAgentProcess({ name: 'node-x', dataDir: join(dir, 'node-x'), controllerPort: controller.port, token: 'not-the-token', trustKeys: [signer.publicKeyFile] });
    const output = () => intruder.cli.stdout() + intruder.cli.stderr();
    try {
      const e = await intruder.cli.waitFor((ev) => ev.event === 'controller-refused', 10_000);
      expect(e, output()).toMatchObject({ level: 'error', code: 'unauthorized' });
      expect(String(e.message)).toMatch(/refused this agent.*wrong agent token/);
      expect(controller.refused).toContain('node-x');
      expect(controller.holdings.has('node-x')).toBe(false);
    } finally {
      expect(await intruder.cli.stop(), output()).toBe(0);
    }
  });
});
