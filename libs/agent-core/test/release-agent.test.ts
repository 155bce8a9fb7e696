import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
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
