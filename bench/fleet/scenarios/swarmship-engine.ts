/**
 * swarmship's engine without the controller and agents, set up like the libtorrent
 * scenario: `swarmship tracker` and `swarmship seed --super-seed` on the origin,
 * `swarmship download --seed-after` on every node, the torrent made before the clock
 * starts. It separates what the engine does from what the control plane adds (upload,
 * torrent creation, sync). A node is done at the download's 'complete' (every piece
 * verified and flushed).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Child } from '../../lib/proc.js';
import { copiesFromLines, type Scenario, type ScenarioContext } from '../scenario.js';
import { waitForHttp } from './libtorrent.js';

const TRACKER_PORT = 6969;
const PEER_PORT = 6881;

export function swarmshipEngine(opts: { superSeed?: boolean } = {}): Scenario {
  const superSeed = opts.superSeed !== false;
  let torrent = '';
  const downloads = new Map<string, Child>();
  return {
    id: superSeed ? 'swarmship-engine' : 'swarmship-engine-plain',
    label: `swarmship engine (seed${superSeed ? ' --super-seed' : ''}/download)`,
    kind: 'swarm',
    notes: `swarmship tracker and swarmship seed${superSeed ? ' --super-seed' : ''} --trust on the origin, swarmship download --seed-after on every node; no controller or agent, torrent made before the clock starts`,
    async setup(ctx: ScenarioContext) {
      const origin = ctx.net.origin;
      torrent = join(ctx.dir, 'artifact.torrent');
      const announce = `http://${origin.address}:${TRACKER_PORT}/announce`;
      const made = spawnSync(process.execPath, [ctx.cli, 'create', ctx.artifact.path, '-o', torrent, '--piece-length', String(ctx.artifact.pieceLength), '--tracker', announce, '--private', '--json'], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`swarmship create: ${made.stderr}`);
      const infoHash = /"infoHash":"([0-9a-f]{40})"/.exec(made.stdout)?.[1];
      if (!infoHash) throw new Error(`swarmship create printed no info hash: ${made.stdout}`);
      ctx.spawn(origin, 'tracker', process.execPath, [ctx.cli, 'tracker', '--host', origin.address, '--port', String(TRACKER_PORT), '--allow', infoHash, '--json']);
      await waitForHttp(ctx.net, origin, `http://${origin.address}:${TRACKER_PORT}/scrape`, 15_000);
      const seeder = ctx.spawn(origin, 'seed', process.execPath, [ctx.cli, 'seed', torrent, ctx.artifact.path, '--host', origin.address, '--port', String(PEER_PORT), '--trust', ...(superSeed ? ['--super-seed'] : []), '--json']);
      await seeder.waitLine((l) => l.json?.event === 'seeding', 60_000, 'seeding');
    },
    async start(ctx: ScenarioContext) {
      for (const node of ctx.net.nodes) {
        downloads.set(
          node.name,
          ctx.spawn(node, `download ${node.name}`, process.execPath, [ctx.cli, 'download', torrent, '--dir', ctx.hostDir(node), '--host', node.address, '--port', String(PEER_PORT), '--seed-after', '--json']),
        );
      }
      return Promise.resolve();
    },
    waitForNodes(ctx: ScenarioContext) {
      return copiesFromLines(
        ctx,
        downloads,
        'swarmship engine swarm',
        (l) => l.json?.event === 'done' && l.json.label === 'download',
        (node, line) => {
          if (line.json!.outcome !== 'complete') throw new Error(`download on ${node.name} ended ${String(line.json!.outcome)}`);
          return { at: line.at, path: join(ctx.hostDir(node), ctx.artifact.name) };
        },
      );
    },
    async teardown() {
      downloads.clear();
      return Promise.resolve();
    },
  };
}
