/**
 * Signed releases, end to end with real processes: the controller signs each release's
 * manifest, agents verify it before downloading and check the whole artifact's SHA-256
 * before publishing. Forged releases are delivered through a fake controller that speaks
 * the real agent channel, each with an origin that would serve it, so an agent that did
 * not check would download and publish it.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash, sign } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredRelease, Holding } from '../libs/contracts/src/agent-channel.js';
import type { ReleaseStatus, SigningKeyInfo } from '../libs/contracts/src/rest.js';
import { createTorrent, parseTorrent } from '../libs/metainfo/src/index.js';
import { encode } from '../libs/bencode/src/encode.js';
import { generateSigningKey, parsePrivateKey, parsePublicKeys } from '../libs/signing/src/keys.js';
import { decodeManifest, verifyManifest } from '../libs/signing/src/manifest.js';
import { FakeController, makeSigner, signRelease, type TestSigner } from './helpers/agent-fake-controller.js';
import { startAgentProcess, type AgentUnderTest } from './helpers/agent-process.js';
import { startCli } from './helpers/cli.js';
import { AGENT_TOKEN, API_TOKEN, authHeaders, startControllerProcess, type ControllerUnderTest } from './helpers/controller-process.js';
import { CliProcesses, MIB, freePort, makeTempDir, removeDir, sha256OfFile, writeArtifact } from './helpers/swarm.js';

const exists = (p: string) => stat(p).then(() => true, () => false);
const entries = (p: string) => readdir(p).catch(() => [] as string[]);

describe('signed releases through the product controller', () => {
  let dir: string;
  let ctl: ControllerUnderTest | undefined;
  const agents: AgentUnderTest[] = [];
  let artifact: string;
  let artifactSha: string;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-signing-');
    artifact = join(dir, 'app.bin');
    await writeArtifact(artifact, 3 * MIB, 'signing-app');
    artifactSha = await sha256OfFile(artifact);
    ctl = await startControllerProcess(join(dir, 'controller'));
    for (const name of ['node-a', 'node-b']) {
      agents.push(await startAgentProcess({ name, dataDir: join(dir, name), controllerPort: ctl.channel.port, token: AGENT_TOKEN, trustKeys: [ctl.publicKeyFile] }));
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cli.stop()));
    await ctl?.stop();
    await removeDir(dir);
  });

  it('serves its public key to token holders only, the same key it wrote beside its data', async () => {
    const res = await fetch(`${ctl!.api}/signing-key`, { headers: authHeaders() });
    expect(res.status).toBe(200);
    const info = (await res.json()) as SigningKeyInfo;
    expect(info.algorithm).toBe('ed25519');
    expect(info.publicKey).toBe(await readFile(ctl!.publicKeyFile, 'utf8'));
    expect(info.keyId).toBe(parsePublicKeys(info.publicKey, 'api')[0]!.keyId);
    expect((await fetch(`${ctl!.api}/signing-key`)).status).toBe(401);
    const doc = (await (await fetch(`${ctl!.base}/api/docs-json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/api/v1/signing-key');
    // The private key is the controller's alone.
    expect((await stat(join(ctl!.dataDir, 'signing-key.pem'))).mode & 0o077).toBe(0);
  });

  it('signs a published release; every agent verifies it and the SHA-256 of what it publishes', async () => {
    const publish = startCli(['publish', artifact, '--name', 'app', '--version', '1', '--wait', '--timeout', '60s', '--url', ctl!.base, '--token', API_TOKEN, '--json']);
    expect(await publish.exited, publish.stderr()).toBe(0);
    const status = (await (await fetch(`${ctl!.api}/releases/app/1`, { headers: authHeaders() })).json()) as ReleaseStatus;
    expect(status.sha256).toBe(artifactSha);
    expect(status.rollout).toMatchObject({ targeted: 2, complete: 2, failed: 0 });
    for (const agent of agents) {
      const published = await agent.cli.waitFor((e) => e.event === 'published' && e.release === 'app/1', 10_000);
      expect(published.sha256).toBe(artifactSha);
      expect(await sha256OfFile(join(agent.releaseDir('app', '1'), 'app.bin'))).toBe(artifactSha);
    }
    const record = JSON.parse(await readFile(join(ctl!.dataDir, 'releases', 'app', '1', 'release.json'), 'utf8')) as Record<string, string>;
    const trusted = parsePublicKeys(await readFile(ctl!.publicKeyFile, 'utf8'), 'controller');
    const { manifest } = verifyManifest(Buffer.from(record.manifest!, 'base64'), Buffer.from(record.signature!, 'base64'), trusted);
    expect(manifest).toMatchObject({ name: 'app', version: '1', infoHash: status.infoHash, sha256: artifactSha, size: 3 * MIB, created: status.createdAt });
    // The torrent carries each piece's SHA-256, and the manifest vouches for the list: agents verify pieces by it.
    expect(manifest.piecesSha256).toMatch(/^[0-9a-f]{64}$/);
  }, 90_000);

  it('signs whether a release is unpacked, and re-signs at start-up an unpacked release signed before manifests said so', async () => {
    const tree = join(dir, 'site');
    await mkdir(tree);
    await writeFile(join(tree, 'index.html'), '<h1>signed</h1>\n');
    const tarball = join(dir, 'site.tar.gz');
    execFileSync('tar', ['-czf', tarball, '-C', tree, '.']);
    const form = new FormData();
    form.set('name', 'site');
    form.set('version', '1');
    form.set('unpack', 'true');
    form.set('file', new Blob([await readFile(tarball)]), 'site.tar.gz');
    const res = await fetch(`${ctl!.api}/releases`, { method: 'POST', headers: authHeaders(), body: form });
    expect(res.status, await res.clone().text()).toBe(201);
    const trusted = parsePublicKeys(await readFile(ctl!.publicKeyFile, 'utf8'), 'controller');
    const recordPath = join(ctl!.dataDir, 'releases', 'site', '1', 'release.json');
    const record = JSON.parse(await readFile(recordPath, 'utf8')) as Record<string, unknown>;
    expect(verifyManifest(Buffer.from(record.manifest as string, 'base64'), Buffer.from(record.signature as string, 'base64'), trusted).manifest.unpack).toBe(true);
    for (const agent of agents) {
      await agent.cli.waitFor((e) => e.event === 'published' && e.release === 'site/1', 20_000);
      expect(await readFile(join(agent.releaseDir('site', '1'), 'unpacked', 'index.html'), 'utf8')).toBe('<h1>signed</h1>\n');
    }

    // As a controller signed it before manifests carried unpack: the same key, no such field.
    const appRecordPath = join(ctl!.dataDir, 'releases', 'app', '1', 'release.json');
    const appManifest = (JSON.parse(await readFile(appRecordPath, 'utf8')) as Record<string, string>).manifest;
    expect(await ctl!.stop()).toBe(0);
    ctl = undefined;
    const { unpack: _unpack, ...fields } = decodeManifest(Buffer.from(record.manifest as string, 'base64'));
    const legacy = encode({ type: 'swarmship-release/1', ...fields });
    const key = parsePrivateKey(await readFile(join(dir, 'controller', 'signing-key.pem'), 'utf8'), 'signing-key.pem');
    await writeFile(recordPath, JSON.stringify({ ...record, manifest: legacy.toString('base64'), signature: sign(null, legacy, key.privateKey).toString('base64') }, null, 2));
    expect(verifyManifest(legacy, sign(null, legacy, key.privateKey), trusted).manifest.unpack).toBe(false);

    ctl = await startControllerProcess(join(dir, 'controller'));
    const resigned = JSON.parse(await readFile(recordPath, 'utf8')) as Record<string, string>;
    expect(resigned.manifest).not.toBe(legacy.toString('base64'));
    expect(verifyManifest(Buffer.from(resigned.manifest!, 'base64'), Buffer.from(resigned.signature!, 'base64'), trusted).manifest).toMatchObject({ name: 'site', version: '1', unpack: true });
    // A release that is not unpacked reads the same either way: its manifest is left as it was.
    expect((JSON.parse(await readFile(appRecordPath, 'utf8')) as Record<string, string>).manifest).toBe(appManifest);
  }, 90_000);

  it('signs releases stored before signing at start-up, and re-signs all of them when its key is rotated', async () => {
    const recordPath = join(ctl!.dataDir, 'releases', 'app', '1', 'release.json');
    const oldKeyFile = join(dir, 'old.pub.pem');
    await writeFile(oldKeyFile, await readFile(ctl!.publicKeyFile));
    expect(await ctl!.stop()).toBe(0);
    ctl = undefined;
    // As a release written before releases were signed: no SHA-256, no manifest.
    const { sha256: _sha, manifest: _m, signature: _s, signingKey: _k, ...legacy } = JSON.parse(await readFile(recordPath, 'utf8')) as Record<string, unknown>;
    await writeFile(recordPath, JSON.stringify(legacy, null, 2));

    ctl = await startControllerProcess(join(dir, 'controller'));
    const signedOnLoad = JSON.parse(await readFile(recordPath, 'utf8')) as Record<string, string>;
    expect(signedOnLoad.sha256).toBe(artifactSha);
    const oldKeys = parsePublicKeys(await readFile(oldKeyFile, 'utf8'), 'old');
    expect(verifyManifest(Buffer.from(signedOnLoad.manifest!, 'base64'), Buffer.from(signedOnLoad.signature!, 'base64'), oldKeys).manifest.sha256).toBe(artifactSha);
    expect(await ctl.stop()).toBe(0);
    ctl = undefined;

    // The operator rotates to a key of their own.
    const next = generateSigningKey();
    const nextKeyFile = join(dir, 'next-signing-key.pem');
    await writeFile(nextKeyFile, next.privatePem, { mode: 0o600 });
    ctl = await startControllerProcess(join(dir, 'controller'), ['--signing-key', nextKeyFile]);
    expect(await readFile(ctl.publicKeyFile, 'utf8')).toBe(next.key.publicPem);
    const rotated = JSON.parse(await readFile(recordPath, 'utf8')) as Record<string, string>;
    expect(rotated.signingKey).toBe(next.key.keyId);
    expect(decodeManifest(Buffer.from(rotated.manifest!, 'base64')).sha256).toBe(artifactSha);

    // An agent that trusts only the old key refuses the re-signed release; one that trusts both takes it.
    const stale = await startAgentProcess({ name: 'node-stale', dataDir: join(dir, 'node-stale'), controllerPort: ctl.channel.port, token: AGENT_TOKEN, trustKeys: [oldKeyFile] });
    agents.push(stale);
    const both = await startAgentProcess({ name: 'node-both', dataDir: join(dir, 'node-both'), controllerPort: ctl.channel.port, token: AGENT_TOKEN, trustKeys: [oldKeyFile, ctl.publicKeyFile] });
    agents.push(both);
    const refused = await stale.cli.waitFor((e) => e.event === 'release-refused' && e.release === 'app/1', 20_000);
    expect(String(refused.error)).toContain(`it names key ${next.key.keyId}, which is not trusted here`);
    await both.cli.waitFor((e) => e.event === 'published' && e.release === 'app/1', 30_000);
    expect(await sha256OfFile(join(both.releaseDir('app', '1'), 'app.bin'))).toBe(artifactSha);
    expect(await exists(stale.releaseDir('app', '1'))).toBe(false);
    expect(await entries(join(stale.dataDir, 'staging', 'app'))).toEqual([]);
  }, 120_000);
});

describe('forged releases delivered to an agent', () => {
  const TOKEN = 'signing-test-agent-token';
  const BYTES = 2 * MIB;
  const procs = new CliProcesses();
  let dir: string;
  let trusted: TestSigner;
  let stranger: TestSigner;
  let controller: FakeController;
  let agent: AgentUnderTest;
  let good: string;
  let evil: string;
  /** A tarball, for the cases about unpacking. */
  let tarball: string;
  /** A torrent of `evil` (or `tarball`) per case (distinct source tags), each seeded, so every forgery could be downloaded. */
  const torrents = new Map<string, DesiredRelease>();

  async function seeded(tag: string, announce: string, content = evil, pieceSha256 = false): Promise<DesiredRelease> {
    const { torrent, metainfo } = await createTorrent(content, { pieceLength: 256 * 1024, announce: [announce], source: tag, creationDate: false, pieceSha256 });
    const path = join(dir, `${tag}.torrent`);
    await writeFile(path, torrent);
    await procs.seeder(path, content);
    return { name: 'app', version: tag, infoHash: metainfo.infoHashHex, torrent: torrent.toString('base64') };
  }

  /** Serves only `d`, then waits for the agent to report it in a final state. */
  async function deliver(d: DesiredRelease): Promise<Holding> {
    controller.setDesired([d]);
    return (await controller.waitForHolding(agent.name, d.name, d.version, (h) => h?.state === 'failed' || h?.state === 'complete', 30_000))!;
  }

  async function expectNothingPublished(version: string): Promise<void> {
    expect(await exists(agent.releaseDir('app', version))).toBe(false);
    expect(await entries(join(agent.dataDir, 'staging', 'app', version))).toEqual([]);
  }

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-forged-');
    good = join(dir, 'good.bin');
    evil = join(dir, 'evil.bin');
    await writeArtifact(good, BYTES, 'signing-good');
    await writeArtifact(evil, BYTES, 'signing-evil');
    await mkdir(join(dir, 'tree'));
    await writeFile(join(dir, 'tree', 'run.sh'), '#!/bin/sh\necho hello\n');
    tarball = join(dir, 'bundle.tar');
    execFileSync('tar', ['-cf', tarball, '-C', join(dir, 'tree'), '.']);
    trusted = await makeSigner(dir, 'trusted');
    stranger = await makeSigner(dir, 'stranger');
    const { announce } = await procs.tracker();
    for (const tag of ['swapped', 'stranger', 'tampered', 'wrong-sha', 'unsigned', 'genuine']) torrents.set(tag, await seeded(tag, announce));
    for (const tag of ['unpack-added', 'unpack-stripped']) torrents.set(tag, await seeded(tag, announce, tarball));
    for (const tag of ['pieces-sha256', 'pieces-sha256-other']) torrents.set(tag, await seeded(tag, announce, evil, true));
    controller = new FakeController(TOKEN, { origin: { host: '127.0.0.1', port: 1 }, announceUrl: announce, retireGraceSeconds: 0 });
    await controller.start(await freePort('127.0.0.1'));
    agent = await startAgentProcess({ name: 'node', dataDir: join(dir, 'node'), controllerPort: controller.port, token: TOKEN, trustKeys: [trusted.publicKeyFile] });
  }, 90_000);

  afterAll(async () => {
    await agent?.cli.stop();
    await procs.stopAll();
    await controller?.close();
    await removeDir(dir);
  });

  it('publishes a release signed by the trusted key (the forgeries below differ from it in one thing each)', async () => {
    const d = await signRelease(torrents.get('genuine')!, evil, trusted);
    const h = await deliver(d);
    expect(h).toMatchObject({ state: 'complete', verifiedBytes: BYTES });
    expect(await sha256OfFile(join(agent.releaseDir('app', 'genuine'), 'evil.bin'))).toBe(await sha256OfFile(evil));
  });

  it('refuses a release whose torrent was swapped for another, and downloads nothing', async () => {
    // The manifest is genuine: signed for a torrent of good.bin. The torrent delivered is another one, seeded and ready.
    const { metainfo } = await createTorrent(good, { pieceLength: 256 * 1024, source: 'swapped', creationDate: false });
    const genuine = await signRelease({ ...torrents.get('swapped')!, infoHash: metainfo.infoHashHex }, good, trusted);
    const forged = { ...genuine, infoHash: torrents.get('swapped')!.infoHash, torrent: torrents.get('swapped')!.torrent };
    const h = await deliver(forged);
    expect(h.state).toBe('failed');
    expect(h.error).toMatch(new RegExp(`^refused: the torrent's info hash ${forged.infoHash} is not the signed manifest's ${metainfo.infoHashHex}; nothing downloaded$`));
    expect(h.bytesFromOrigin + h.bytesFromPeers + h.verifiedBytes).toBe(0);
    await expectNothingPublished('swapped');
  });

  it('refuses a release signed by a key it does not trust, naming both', async () => {
    const h = await deliver(await signRelease(torrents.get('stranger')!, evil, stranger));
    expect(h.state).toBe('failed');
    expect(h.error).toBe(`refused: the release's manifest signature does not verify: it names key ${stranger.key.keyId}, which is not trusted here; trusted keys: ${trusted.key.keyId}; nothing downloaded`);
    expect(h.bytesFromOrigin + h.bytesFromPeers).toBe(0);
    await expectNothingPublished('stranger');
  });

  it('refuses a manifest changed after it was signed, and one with no signature at all', async () => {
    const d = await signRelease(torrents.get('tampered')!, evil, trusted);
    const other = await signRelease(torrents.get('tampered')!, evil, trusted, { created: '2031-01-01T00:00:00.000Z' });
    const tampered = { ...d, manifest: other.manifest };
    const h = await deliver(tampered);
    expect(h.error).toMatch(/^refused: the release's manifest signature does not verify: trusted keys: /);
    await expectNothingPublished('tampered');

    const { manifest: _m, signature: _s, signingKey: _k, ...bare } = await signRelease(torrents.get('unsigned')!, evil, trusted);
    const u = await deliver(bare);
    expect(u.error).toMatch(/^refused: the controller sent no signed manifest for this release/);
    expect(u.bytesFromOrigin + u.bytesFromPeers).toBe(0);
    await expectNothingPublished('unsigned');
  });

  it('refuses unpack added to a release signed as an opaque file, or stripped from one signed to be unpacked, and downloads nothing', async () => {
    // Signed as a file to publish as it is; delivered with unpack, which would extract it on the node.
    const opaque = await signRelease(torrents.get('unpack-added')!, tarball, trusted);
    const added = await deliver({ ...opaque, unpack: true });
    expect(added.state).toBe('failed');
    expect(added.error).toBe('refused: the release says to unpack the artifact, the signed manifest does not; nothing downloaded');
    expect(added.bytesFromOrigin + added.bytesFromPeers + added.verifiedBytes).toBe(0);
    await expectNothingPublished('unpack-added');

    // Signed to be unpacked; delivered without, which would leave what runs from unpacked/ stale or missing.
    const { unpack: _unpack, ...stripped } = await signRelease({ ...torrents.get('unpack-stripped')!, unpack: true }, tarball, trusted);
    const h = await deliver(stripped);
    expect(h.state).toBe('failed');
    expect(h.error).toBe('refused: the signed manifest says to unpack the artifact, the release does not; nothing downloaded');
    expect(h.bytesFromOrigin + h.bytesFromPeers + h.verifiedBytes).toBe(0);
    await expectNothingPublished('unpack-stripped');
  });

  it("publishes a release whose manifest vouches for its torrent's piece SHA-256s, and refuses, before a byte, one whose list is not the signed one", async () => {
    const listHash = (d: DesiredRelease) => createHash('sha256').update(parseTorrent(Buffer.from(d.torrent, 'base64')).pieceSha256!).digest('hex');
    const ok = await deliver(await signRelease(torrents.get('pieces-sha256')!, evil, trusted, { piecesSha256: listHash(torrents.get('pieces-sha256')!) }));
    expect(ok.state, ok.error).toBe('complete');
    expect(await sha256OfFile(join(agent.releaseDir('app', 'pieces-sha256'), 'evil.bin'))).toBe(await sha256OfFile(evil));
    // Signed for this torrent, but vouching for another list of piece digests.
    const h = await deliver(await signRelease(torrents.get('pieces-sha256-other')!, evil, trusted, { piecesSha256: 'ab'.repeat(32) }));
    expect(h.state).toBe('failed');
    expect(h.error).toBe(`refused: the torrent's piece SHA-256s (${listHash(torrents.get('pieces-sha256-other')!)}) are not the signed manifest's (${'ab'.repeat(32)}); nothing downloaded`);
    expect(h.bytesFromOrigin + h.bytesFromPeers + h.verifiedBytes).toBe(0);
    await expectNothingPublished('pieces-sha256-other');
  });

  it('publishes nothing when every piece verifies but the artifact is not the one the manifest names (SHA-256)', async () => {
    // Signed by the trusted key for this very torrent, but vouching for other bytes:
    // what a SHA-1 collision in the pieces would look like.
    const goodSha = await sha256OfFile(good);
    const d = await signRelease(torrents.get('wrong-sha')!, evil, trusted, { sha256: goodSha });
    const h = await deliver(d);
    expect(h.state).toBe('failed');
    const evilSha = createHash('sha256').update(await readFile(evil)).digest('hex');
    expect(h.error).toBe(
      `refused: the downloaded artifact's SHA-256 ${evilSha} is not the signed manifest's ${goodSha}; nothing published, the download was discarded; not downloaded again until the controller sends another manifest (a re-publish or a re-sign)`,
    );
    // It was downloaded and every piece verified; then thrown away.
    expect(h.bytesFromOrigin + h.bytesFromPeers).toBe(BYTES);
    await expectNothingPublished('wrong-sha');
    const refused = await agent.cli.waitFor((e) => e.event === 'release-refused' && e.release === 'app/wrong-sha', 5_000);
    expect(refused.level).toBe('error');
  });

  it('does not download an artifact that failed its SHA-256 again until the controller sends another manifest', async () => {
    // Continues the case above: app/wrong-sha failed its SHA-256 once, with one download.
    const downloads = () => agent.cli.events.filter((e) => e.event === 'download-started' && e.release === 'app/wrong-sha').length;
    const received = () => {
      const h = controller.holding(agent.name, 'app', 'wrong-sha')!;
      return h.bytesFromOrigin + h.bytesFromPeers;
    };
    expect(downloads()).toBe(1);
    const wrong = controller.desired[0]!;
    // Past the first retry of an ordinary failure (5 s at most), with the same manifest
    // answered again on the way: still one download, and nothing more received.
    await new Promise((r) => setTimeout(r, 4_000));
    controller.setDesired([{ ...wrong }]);
    await new Promise((r) => setTimeout(r, 4_000));
    expect(downloads()).toBe(1);
    expect(received()).toBe(BYTES);
    const held = controller.holding(agent.name, 'app', 'wrong-sha')!;
    expect(held.state).toBe('failed');
    expect(held.error).toMatch(/^refused: the downloaded artifact's SHA-256 /);

    // The controller sends a corrected manifest: downloaded again, at once, and published.
    controller.setDesired([await signRelease(torrents.get('wrong-sha')!, evil, trusted)]);
    const h = await controller.waitForHolding(agent.name, 'app', 'wrong-sha', (x) => x?.state === 'complete', 20_000);
    expect(downloads()).toBe(2);
    expect(h!.bytesFromOrigin + h!.bytesFromPeers).toBe(2 * BYTES);
    expect(await sha256OfFile(join(agent.releaseDir('app', 'wrong-sha'), 'evil.bin'))).toBe(await sha256OfFile(evil));
  }, 40_000);
});

describe('an agent without a trusted key', () => {
  it('does not start, and says where to find the key', async () => {
    const dir = await makeTempDir('swarmship-nokey-');
    try {
      const cli = startCli(['agent', '--controller', 'tcp://10.255.255.1:7071', '--data', join(dir, 'agent'), '--json'], { SWARMSHIP_TRUST_KEY: '', SWARMSHIP_ALLOW_UNSIGNED: '', SWARMSHIP_CONFIG: '' });
      expect(await cli.exited).toBe(2);
      expect(cli.stderr()).toMatch(/^swarmship agent: --trust-key: no key to verify releases with\. .*signing-key\.pub\.pem.*swarmship controller --print-public-key.*GET \/api\/v1\/signing-key/);
      expect(await exists(join(dir, 'agent'))).toBe(false);
    } finally {
      await removeDir(dir);
    }
  });
});

describe('swarmship controller --print-public-key', () => {
  const env = { SWARMSHIP_DATA: '', SWARMSHIP_SIGNING_KEY: '', SWARMSHIP_CONFIG: '' };

  it('prints the key a controller signs with, and makes none when there is none', async () => {
    const dir = await makeTempDir('swarmship-printkey-');
    try {
      const data = join(dir, 'controller');
      const missing = startCli(['controller', '--data', data, '--print-public-key'], env);
      expect(await missing.exited).toBe(2);
      expect(missing.stdout()).toBe('');
      const message = missing.stderr();
      expect(message).toContain(`no signing key at ${join(data, 'signing-key.pem')}`);
      expect(message).toContain('--data (SWARMSHIP_DATA)');
      expect(message).toContain('--signing-key (SWARMSHIP_SIGNING_KEY)');
      expect(await exists(data)).toBe(false);

      const named = join(dir, 'ops-key.pem');
      const missingNamed = startCli(['controller', '--data', data, '--signing-key', named, '--print-public-key'], env);
      expect(await missingNamed.exited).toBe(2);
      expect(missingNamed.stderr()).toContain(`signing key ${named} (--signing-key, SWARMSHIP_SIGNING_KEY) does not exist`);
      expect(await exists(named)).toBe(false);
      expect(await exists(data)).toBe(false);

      // The key a controller made at its first start: printed, and nothing written beside it.
      const made = generateSigningKey();
      await mkdir(data);
      await writeFile(join(data, 'signing-key.pem'), made.privatePem, { mode: 0o600 });
      const printed = startCli(['controller', '--data', data, '--print-public-key'], env);
      const closed = once(printed.child, 'close');
      expect(await printed.exited, printed.stderr()).toBe(0);
      await closed;
      expect(printed.stdout()).toBe(made.key.publicPem);
      expect(await entries(data)).toEqual(['signing-key.pem']);
    } finally {
      await removeDir(dir);
    }
  });
});
