import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentProgressReport, AgentSyncRequest, AgentSyncResponse, DesiredRelease, Holding } from '../../contracts/src/agent-channel.js';
import { Engine } from '../../engine/src/engine.js';
import { createTorrent } from '../../metainfo/src/create.js';
import { resolveAgentConfig } from '../src/config.js';
import { ReleaseAgent, type AgentLog, type ControllerChannel } from '../src/release-agent.js';
import { ReleaseStore } from '../src/release-store.js';

/** The controller's side of the channel, in process: desired state in, holdings out. */
class ChannelDouble implements ControllerChannel {
  revision = 1;
  desired: DesiredRelease[] = [];
  holdings: Holding[] = [];
  constructor(private readonly origin: { host: string; port: number }, private readonly grace: number) {}
  async sync(req: AgentSyncRequest): Promise<AgentSyncResponse> {
    this.holdings = req.holdings;
    if (req.waitMs > 0 && req.knownRevision === this.revision) await new Promise((r) => setTimeout(r, 50));
    return { revision: this.revision, desired: this.desired, announceUrl: '', origin: this.origin, retireGraceSeconds: this.grace };
  }
  async progress(r: AgentProgressReport): Promise<void> {
    this.holdings = r.holdings;
  }
  async close(): Promise<void> {}
  want(...d: DesiredRelease[]): void {
    this.desired = d;
    this.revision++;
  }
  async until(pred: (hs: Holding[]) => boolean, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (pred(this.holdings)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`never: ${what}; holdings ${JSON.stringify(this.holdings)}`);
  }
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const quiet: AgentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
const exists = (p: string) => stat(p).then(() => true, () => false);
const state = (hs: Holding[], version: string) => hs.find((h) => h.version === version)?.state;

describe('ReleaseAgent', () => {
  let dir: string;
  let origin: Engine;
  let agent: ReleaseAgent | undefined;
  const releases: DesiredRelease[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-release-agent-'));
    origin = new Engine({ host: '127.0.0.1', port: 0 });
    await origin.listen();
    releases.length = 0;
    for (const version of ['1', '2', '3']) {
      const file = join(dir, `tool-${version}.bin`);
      await writeFile(file, randomBytes(300_000));
      const { torrent, metainfo } = await createTorrent(file, { pieceLength: 32 * 1024, creationDate: false });
      await origin.addTorrent(metainfo, { contentPath: file, mode: 'seed', trustFiles: true });
      releases.push({ name: 'tool', version, infoHash: metainfo.infoHash.toString('hex'), torrent: torrent.toString('base64') });
    }
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  function startAgent(channel: ChannelDouble, store?: ReleaseStore): Promise<void> {
    // What is kept, stopped and reported is the subject here; signatures are tested in test/signing.test.ts.
    const config = resolveAgentConfig({ flags: { data: join(dir, 'agent'), peerPort: '0', listenHost: '127.0.0.1', name: 'unit', keepVersions: '2', allowUnsigned: true }, env: {} });
    agent = new ReleaseAgent(config, channel, quiet, Date.now, store);
    return agent.start();
  }

  it('keeps at most the configured versions of an artifact, dropping the oldest retired one first', async () => {
    const channel = new ChannelDouble({ host: '127.0.0.1', port: origin.port }, 3600);
    await startAgent(channel);
    const published = (v: string) => exists(join(dir, 'agent', 'releases', 'tool', v));
    for (const [i, r] of releases.entries()) {
      channel.want(r);
      await channel.until((hs) => state(hs, r.version) === 'complete', `${r.version} complete`);
      // Publication order decides age; make it unambiguous.
      if (i < releases.length - 1) await new Promise((res) => setTimeout(res, 20));
    }
    await channel.until((hs) => state(hs, '1') === undefined, 'version 1 removed');
    expect(await published('1')).toBe(false);
    expect(await published('2')).toBe(true);
    expect(await published('3')).toBe(true);
    expect(state(channel.holdings, '2')).toBe('complete');
  });

  it('keeps serving the peers it has through its own publish: a node that finishes does not drop those still downloading', async () => {
    // A slow origin keeps the agent downloading long enough for a slower leecher to join it.
    const file = join(dir, 'slow.bin');
    await writeFile(file, randomBytes(4 * 1024 * 1024));
    const made = await createTorrent(file, { pieceLength: 64 * 1024, creationDate: false });
    const slowOrigin = new Engine({ host: '127.0.0.1', port: 0, uploadRateLimit: 1024 * 1024 });
    await slowOrigin.listen();
    await slowOrigin.addTorrent(made.metainfo, { contentPath: file, mode: 'seed', trustFiles: true });
    const peerPort = await freePort();
    const config = resolveAgentConfig({ flags: { data: join(dir, 'agent'), peerPort: String(peerPort), listenHost: '127.0.0.1', name: 'unit', allowUnsigned: true }, env: {} });
    const channel = new ChannelDouble({ host: '127.0.0.1', port: slowOrigin.port }, 3600);
    agent = new ReleaseAgent(config, channel, quiet, Date.now);
    await agent.start();
    // The leecher knows only the agent, and takes its bytes slowly: it is still at it when the agent is done.
    const leecher = new Engine({ host: '127.0.0.1', port: 0, downloadRateLimit: 256 * 1024 });
    await leecher.listen();
    try {
      channel.want({ name: 'slow', version: '1', infoHash: made.metainfo.infoHashHex, torrent: made.torrent.toString('base64') });
      await channel.until((hs) => (hs.find((h) => h.version === '1')?.verifiedBytes ?? 0) > 0, 'first piece at the agent');
      const torrent = await leecher.addTorrent(made.metainfo, { dir: join(dir, 'leecher'), mode: 'download', peers: [{ host: '127.0.0.1', port: peerPort }] });
      const agentPeer = () => [...torrent.peers.values()].find((p) => p.listenPort === peerPort || p.key === `127.0.0.1:${peerPort}`);
      for (let i = 0; i < 250 && !agentPeer(); i++) await new Promise((r) => setTimeout(r, 20));
      const before = agentPeer();
      expect(before, 'the leecher connected to the agent').toBeDefined();
      await channel.until((hs) => state(hs, '1') === 'complete', 'published');
      await new Promise((r) => setTimeout(r, 300));
      expect(torrent.complete, 'the leecher is still downloading').toBe(false);
      expect(before!.conn.closed, 'the connection to the agent was dropped at its publish').toBe(false);
      expect(agentPeer()).toBe(before);
    } finally {
      await leecher.close();
      await slowOrigin.close();
    }
  });

  it('stops promptly when told to while a download is still being set up', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inSetup = new Promise<void>((r) => (entered = r));
    class SlowStore extends ReleaseStore {
      override async saveTorrent(t: Parameters<ReleaseStore['saveTorrent']>[0]): Promise<void> {
        entered();
        await held;
        return super.saveTorrent(t);
      }
    }
    // No origin listens: the download can never finish, so only the stop can end it.
    const channel = new ChannelDouble({ host: '127.0.0.1', port: 1 }, 3600);
    await startAgent(channel, new SlowStore(join(dir, 'agent')));
    channel.want(releases[0]!);
    await inSetup;
    const stopped = agent!.stop();
    release();
    await expect(Promise.race([stopped.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('hung'), 3000))])).resolves.toBe('stopped');
  });

  it('reports "no space left on device" when the volume cannot hold a release, and leaves no staging behind', async () => {
    class FullVolume extends ReleaseStore {
      override async freeBytes(): Promise<number> {
        return 4096;
      }
    }
    const channel = new ChannelDouble({ host: '127.0.0.1', port: origin.port }, 3600);
    await startAgent(channel, new FullVolume(join(dir, 'agent')));
    channel.want(releases[0]!);
    await channel.until((hs) => state(hs, '1') === 'failed', 'failed');
    expect(channel.holdings[0]).toMatchObject({ state: 'failed', error: 'no space left on device' });
    expect(await exists(join(dir, 'agent', 'staging', 'tool', '1'))).toBe(false);
    expect(await exists(join(dir, 'agent', 'releases', 'tool', '1'))).toBe(false);
  });
});
