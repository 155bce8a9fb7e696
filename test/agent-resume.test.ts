/**
 * An agent killed with SIGKILL in the middle of a download, then started again on the
 * same data dir: it keeps the verified pieces, fetches only the rest, and publishes a
 * whole copy; nothing partial ever appears at the published path. Then a SIGTERM
 * stops it cleanly (exit 0).
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredRelease } from '../libs/contracts/src/agent-channel.js';
import { createTorrent } from '../libs/metainfo/src/index.js';
import { FakeController, makeSigner, signRelease, type TestSigner } from './helpers/agent-fake-controller.js';
import { startAgentProcess, type AgentUnderTest } from './helpers/agent-process.js';
import { CliProcesses, MIB, freePort, makeTempDir, removeDir, sha256OfFile, writeArtifact } from './helpers/swarm.js';

const TOKEN = 'agent-resume-token';
const BYTES = 24 * MIB;

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('an agent killed mid-download', () => {
  const procs = new CliProcesses();
  let dir: string;
  let controller: FakeController;
  let release: DesiredRelease;
  let signer: TestSigner;
  const agents: AgentUnderTest[] = [];

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-agent-resume-');
    const content = join(dir, 'big.bin');
    await writeArtifact(content, BYTES, 'agent-resume');
    const { torrent, metainfo } = await createTorrent(content, { pieceLength: 256 * 1024, creationDate: false });
    await writeFile(join(dir, 'big.torrent'), torrent);
    signer = await makeSigner(dir);
    release = await signRelease({ name: 'big', version: '2', infoHash: metainfo.infoHash.toString('hex'), torrent: torrent.toString('base64') }, content, signer);
    // A slow origin, so the download is still under way when the agent is killed.
    const origin = await procs.seeder(join(dir, 'big.torrent'), content, ['--upload-limit', '6MB']);
    controller = new FakeController(TOKEN, { origin: { host: '127.0.0.1', port: origin.port }, announceUrl: '', retireGraceSeconds: 60 });
    await controller.start(await freePort('127.0.0.1'));
    controller.setDesired([release]);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cli.stop()));
    await procs.stopAll();
    await controller?.close();
    await removeDir(dir);
  });

  it('resumes from the verified pieces on restart and publishes a whole copy', async () => {
    const dataDir = join(dir, 'node');
    const first = await startAgentProcess({ name: 'node', dataDir, controllerPort: controller.port, token: TOKEN, trustKeys: [signer.publicKeyFile] });
    agents.push(first);
    const partial = await controller.waitForHolding('node', 'big', '2', (h) => h?.state === 'downloading' && h.verifiedBytes >= BYTES / 4, 20_000);
    first.cli.child.kill('SIGKILL');
    await first.cli.exited;
    expect(partial!.verifiedBytes).toBeLessThan(BYTES);
    expect(await exists(join(dataDir, 'releases', 'big', '2'))).toBe(false);

    const second = await startAgentProcess({ name: 'node', dataDir, controllerPort: controller.port, token: TOKEN, trustKeys: [signer.publicKeyFile], httpPort: first.httpPort, peerPort: first.peerPort });
    agents.push(second);
    const started = await second.cli.waitFor((e) => e.event === 'download-started', 15_000);
    expect(started.resumedBytes).toBeGreaterThanOrEqual(partial!.verifiedBytes);
    const done = await controller.waitForHolding('node', 'big', '2', (h) => h?.state === 'complete', 25_000);
    // Only what was missing came over the wire the second time.
    expect(done!.bytesFromOrigin + done!.bytesFromPeers).toBe(BYTES - Number(started.resumedBytes));
    expect(await sha256OfFile(join(second.releaseDir('big', '2'), 'big.bin'))).toBe(await sha256OfFile(join(dir, 'big.bin')));

    expect(await second.cli.stop()).toBe(0);
    expect(second.cli.stdout()).toContain('"event":"agent-stopped"');
  }, 40_000);
});
