/**
 * Fault scenario 3: a hostile peer in the swarm. Real `swarmship agent` processes are
 * told to fetch a release; the only other peer the tracker knows at first is a hostile
 * one (test/helpers/hostile-peer.ts, on its own loopback address) that lies in one way:
 * corrupt blocks, wrong-length blocks, blocks of pieces it does not have, an
 * out-of-range piece index, a 4 GiB length prefix, a flood of requests, or silence after
 * taking requests. Every lie must be dealt with (dropped, banned where only a hostile
 * peer would do it, hash failures counted) while it is the only source, without a byte
 * being published; then an honest seeder joins the swarm (through the same tracker)
 * and each agent must end with a byte-identical copy.
 *
 * The agents learn every peer as in production: from the tracker the release's torrent
 * names. The controller side is the test's agent-channel stand-in, which gives no origin,
 * so nothing but the tracker's list brings peers.
 */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredRelease } from '../../libs/contracts/src/agent-channel.js';
import { createTorrent } from '../../libs/metainfo/src/index.js';
import { FakeController, makeSigner, signRelease, type TestSigner } from '../helpers/agent-fake-controller.js';
import { parsePrometheus, startAgentProcess, type AgentUnderTest } from '../helpers/agent-process.js';
import { HostilePeer, type HostileBehaviour } from '../helpers/hostile-peer.js';
import { CliProcesses, MIB, freePort, makeTempDir, removeDir, writeArtifact } from '../helpers/swarm.js';
import { compareCopy, until } from './checks.js';
import { faultRuns, recordFaultRun } from './record.js';

const TOKEN = 'hostile-fault-agent-token';
const BYTES = 16 * MIB;
const PIECE_LENGTH = 256 * 1024;
const RUNS = faultRuns(3, 1);
/** Announce interval of the tracker: agents learn a newly arrived honest seeder this soon. */
const TRACKER_INTERVAL_S = 2;

interface Case {
  behaviour: HostileBehaviour;
  title: string;
  /** Banned (not only dropped) by every agent. */
  banned: boolean;
  /** Words the agents' ban reason must contain. */
  reason?: RegExp;
}

const CASES: Case[] = [
  { behaviour: 'flip-bytes', title: 'Hostile peer: corrupt blocks', banned: true, reason: /failed its hash/ },
  { behaviour: 'wrong-length', title: 'Hostile peer: wrong-length blocks', banned: true, reason: /wrong length/ },
  { behaviour: 'unadvertised', title: 'Hostile peer: blocks of pieces it does not have', banned: true, reason: /never said it had/ },
  { behaviour: 'bad-index', title: 'Hostile peer: out-of-range piece index', banned: true, reason: /out of range/ },
  { behaviour: 'huge-length', title: 'Hostile peer: 4 GiB length prefix', banned: true, reason: /4294967295 bytes/ },
  { behaviour: 'request-flood', title: 'Hostile peer: flood of requests', banned: true, reason: /requests we had to refuse/ },
  // Silence may be overload rather than malice: dropped, its requests given to others, not banned.
  { behaviour: 'stall', title: 'Hostile peer: takes requests, never answers', banned: false },
];

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('fault 3: a hostile peer in the swarm', () => {
  const procs = new CliProcesses();
  const agents: AgentUnderTest[] = [];
  let dir: string;
  let announce: string;
  let controller: FakeController | undefined;
  let signer: TestSigner;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-fault-hostile-');
    const tracker = procs.start(['tracker', '--host', '127.0.0.1', '--port', '0', '--interval', String(TRACKER_INTERVAL_S), '--json']);
    announce = String((await tracker.waitFor((e) => typeof e.announce === 'string', 20_000)).announce);
    // No origin: the tracker's list is the agents' only way to find peers.
    controller = new FakeController(TOKEN, { origin: { host: '127.0.0.1', port: 0 }, announceUrl: announce, retireGraceSeconds: 1 });
    await controller.start(await freePort('127.0.0.1'));
    // Releases signed as the controller would: the agents check them as in production.
    signer = await makeSigner(dir);
    for (const name of ['hostile-node-a', 'hostile-node-b']) {
      agents.push(await startAgentProcess({ name, dataDir: join(dir, name), controllerPort: controller.port, token: TOKEN, trustKeys: [signer.publicKeyFile] }));
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cli.stop()));
    await procs.stopAll();
    await controller?.close();
    await removeDir(dir);
  });

  async function metric(agent: AgentUnderTest, name: string): Promise<number> {
    return parsePrometheus(await agent.metrics()).get(name) ?? 0;
  }

  for (let run = 1; run <= RUNS; run++) {
    it(`run ${run}: every lie is dealt with while it is the only source, then each agent publishes an intact copy`, async () => {
      const fc = controller!;
      const version = `r${run}`;
      const hostiles: HostilePeer[] = [];
      const seeders = new CliProcesses();
      const keepAnnounced: NodeJS.Timeout[] = [];
      const hashFailuresBefore = await Promise.all(agents.map((a) => metric(a, 'swarmship_agent_hash_failures_total')));
      try {
        // One release per lie, each with its hostile peer on an address of its own.
        const prepared = await Promise.all(
          CASES.map(async (c, i) => {
            const name = `hostile-${c.behaviour}`;
            const content = join(dir, `${name}-${version}.bin`);
            await writeArtifact(content, BYTES, `${name}-${version}`);
            const { torrent, metainfo } = await createTorrent(content, { pieceLength: PIECE_LENGTH, announce: [announce], creationDate: false });
            const torrentPath = `${content}.torrent`;
            await writeFile(torrentPath, torrent);
            const hostile = await HostilePeer.start({
              behaviour: c.behaviour,
              host: `127.0.0.${20 + i}`,
              infoHash: metainfo.infoHash,
              pieceLength: metainfo.pieceLength,
              pieceCount: metainfo.pieceCount,
              contentPath: content,
            });
            hostiles.push(hostile);
            await hostile.announce(announce);
            // It stays in the swarm like any peer: re-announced within the tracker's expiry.
            keepAnnounced.push(setInterval(() => void hostile.announce(announce).catch(() => undefined), 1500));
            const desired: DesiredRelease = await signRelease({ name, version, infoHash: metainfo.infoHash.toString('hex'), torrent: torrent.toString('base64') }, content, signer);
            return { c, name, content, torrentPath, fileName: metainfo.name, hostile, desired };
          }),
        );
        fc.setDesired(prepared.map((p) => p.desired));

        const outcomes = await Promise.all(
          prepared.map(async (p) => {
            const { c, hostile } = p;
            const host = hostile.address.split(':')[0]!;
            const banEvent = (agent: AgentUnderTest) =>
              agent.cli.events.find((e) => e.event === 'peer-banned' && e.release === `${p.name}/${version}` && String(e.address).replace(/^::ffff:/, '') === host);
            // 1. Only the hostile peer can serve it: every agent must deal with it.
            await until(
              `every agent to ${c.banned ? 'ban' : 'drop'} the ${c.behaviour} peer (its stats: ${JSON.stringify(hostile.stats)})`,
              async () => (hostile.stats.peersDropped.size >= agents.length && (!c.banned || agents.every((a) => banEvent(a))) ? true : undefined),
              c.behaviour === 'stall' ? 60_000 : 30_000,
              100,
            );
            for (const agent of agents) {
              expect(await exists(agent.releaseDir(p.name, version)), `${agent.name} published ${p.name} with only a hostile peer to fetch from`).toBe(false);
              const h = fc.holding(agent.name, p.name, version);
              expect(h?.state, `${agent.name}'s report of ${p.name}`).not.toBe('complete');
              const ban = banEvent(agent);
              if (c.banned) expect(String(ban?.reason), `${agent.name}'s ban reason`).toMatch(c.reason!);
              else expect(ban, `${agent.name} banned a merely silent peer`).toBeUndefined();
            }
            if (c.behaviour === 'request-flood') expect(hostile.stats.floodsFinished, 'a flood ran to its end: nobody cut it off').toBe(0);
            if (c.behaviour === 'unadvertised') expect(hostile.stats.unsolicitedSent).toBeGreaterThan(0);
            if (c.behaviour === 'stall') expect(hostile.stats.requests).toBeGreaterThan(0);

            // 2. An honest seeder joins through the tracker; the agents find it on their next announce.
            const honestAt = Date.now();
            await seeders.seeder(p.torrentPath, p.content, [], '127.0.0.1');
            let lost = 0;
            let corrupted = 0;
            for (const agent of agents) {
              await fc.waitForHolding(agent.name, p.name, version, (h) => h?.state === 'complete', 60_000).catch(() => undefined);
              const copy = await compareCopy(p.content, join(agent.releaseDir(p.name, version), p.fileName));
              lost += copy.lost;
              corrupted += copy.corrupted;
            }
            const recoveryMs = Date.now() - honestAt;
            return { p, lost, corrupted, recoveryMs };
          }),
        );

        // Hash failures are the corrupt blocks' alone: the other lies never reach a hash.
        const hashFailures = await Promise.all(agents.map(async (a, i) => (await metric(a, 'swarmship_agent_hash_failures_total')) - hashFailuresBefore[i]!));
        for (const [i, n] of hashFailures.entries()) expect(n, `${agents[i]!.name}'s swarmship_agent_hash_failures_total grew by`).toBeGreaterThanOrEqual(2);
        for (const agent of agents) expect(await metric(agent, 'swarmship_agent_peers_banned_total')).toBeGreaterThanOrEqual(CASES.filter((c) => c.banned).length * run);

        for (const o of outcomes) {
          const { c, hostile } = o.p;
          const detail =
            c.behaviour === 'flip-bytes' ? `hash failures per agent: ${hashFailures.join(', ')}`
            : c.behaviour === 'request-flood' ? `${hostile.stats.floodRequests} requests over ${hostile.stats.connections} connections, each cut off`
            : c.behaviour === 'unadvertised' ? `${hostile.stats.unsolicitedSent} unsolicited blocks pushed`
            : `${hostile.stats.peersSeen.size} peers met it, ${hostile.stats.dropped} connections dropped`;
          await recordFaultRun({
            scenario: `3-hostile-peer-${c.behaviour}`,
            title: c.title,
            run,
            ok: o.lost === 0 && o.corrupted === 0,
            bytesLost: o.lost,
            bytesCorrupted: o.corrupted,
            recoveryMs: o.recoveryMs,
            detail,
          });
        }
        for (const o of outcomes) {
          expect(o.corrupted, `${o.p.name}: published bytes differing from the artifact`).toBe(0);
          expect(o.lost, `${o.p.name}: bytes an agent should hold and does not`).toBe(0);
        }
        for (const agent of agents) {
          for (const p of prepared) expect(await readdir(join(agent.dataDir, 'staging', p.name)).catch(() => []), `${agent.name} staging of ${p.name}`).toEqual([]);
        }
      } finally {
        for (const t of keepAnnounced) clearInterval(t);
        await Promise.all(hostiles.map((h) => h.close()));
        await seeders.stopAll();
      }
    }, 240_000);
  }
});
