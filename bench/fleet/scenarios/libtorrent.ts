/**
 * libtorrent swarm: the origin seeds with libtorrent (Debian's python3-libtorrent),
 * every node downloads with libtorrent and keeps seeding, peers found through a tracker
 * on the origin: opentracker (Debian's, allow-listed to this one info hash) when it is
 * installed, as in the anchors, else `swarmship tracker --allow`.
 *
 * libtorrent runs with its defaults except: no DHT/LSD/UPnP/NAT-PMP, uTP off (TCP, like
 * our engine), encryption off, several connections per IP allowed. The origin checks its
 * data before the clock starts; a node is done at libtorrent's torrent_finished (every
 * piece hash-checked), the copy still possibly in the page cache.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_SESSION_PY, SYSTEM_PYTHON } from '../../lib/libtorrent.js';
import type { Child } from '../../lib/proc.js';
import type { FleetNetwork, Host } from '../network.js';
import { copiesFromLines, type Scenario, type ScenarioContext } from '../scenario.js';

const TRACKER_PORT = 6969;
const PEER_PORT = 6881;
const OPENTRACKER = '/usr/bin/opentracker';

const PEER = String.raw`
import json, sys, time
import libtorrent as lt
${PRIVATE_SESSION_PY}
role, torrent, save_path, address, port, super_seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == '1'

session = private_session('%s:%d' % (address, port), address)
params = lt.add_torrent_params()
params.ti = lt.torrent_info(torrent)
params.save_path = save_path
params.flags &= ~lt.torrent_flags.auto_managed
params.flags &= ~lt.torrent_flags.paused
if super_seed:
    params.flags |= lt.torrent_flags.super_seeding
handle = session.add_torrent(params)

if role == 'seed':
    while not handle.status().is_seeding:
        time.sleep(0.02)
    say(event='seeding', port=session.listen_port())
else:
    say(event='started', port=session.listen_port())
    while True:
        session.wait_for_alert(50)
        finished = drain_alerts(session)
        s = handle.status()
        if finished or s.is_seeding:
            say(event='complete', downloaded=s.total_payload_download, redundant=s.total_redundant_bytes, failed=s.total_failed_bytes, peers=s.num_peers)
            break
while True:
    session.wait_for_alert(1000)
    session.pop_alerts()
`;

export function libtorrentSwarm(opts: { superSeed?: boolean } = {}): Scenario {
  const superSeed = opts.superSeed === true;
  let script = '';
  let torrent = '';
  let tracker = '';
  const leechers = new Map<string, Child>();
  return {
    id: superSeed ? 'libtorrent-superseed' : 'libtorrent',
    label: `libtorrent ${libtorrentVersion()}${superSeed ? ', origin super-seeding' : ''}`,
    kind: 'swarm',
    notes: '',
    async setup(ctx: ScenarioContext) {
      const origin = ctx.net.origin;
      script = join(ctx.dir, 'fleet_peer.py');
      await writeFile(script, PEER);
      tracker = existsSync(OPENTRACKER) ? 'opentracker' : 'swarmship tracker';
      const announce = `http://${origin.address}:${TRACKER_PORT}/announce`;
      torrent = join(ctx.dir, 'artifact.torrent');
      const made = spawnSync(process.execPath, [ctx.cli, 'create', ctx.artifact.path, '-o', torrent, '--piece-length', String(ctx.artifact.pieceLength), '--tracker', announce, '--json'], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`swarmship create: ${made.stderr}`);
      const infoHash = /"infoHash":"([0-9a-f]{40})"/.exec(made.stdout)?.[1];
      if (!infoHash) throw new Error(`swarmship create printed no info hash: ${made.stdout}`);
      this.notes = `tracker: ${tracker} on the origin; libtorrent defaults except DHT/LSD/UPnP/NAT-PMP, uTP and encryption off, several connections per IP${superSeed ? '; origin super-seeding' : ''}`;

      if (tracker === 'opentracker') {
        // It chroots into its dir and drops to 'nobody', who must be able to read the allow list there.
        const dir = join(ctx.dir, 'opentracker');
        await mkdir(dir, { mode: 0o755 });
        await chmod(dir, 0o755);
        await writeFile(join(dir, 'allow'), `${infoHash}\n`, { mode: 0o644 });
        ctx.spawn(origin, 'opentracker', OPENTRACKER, ['-i', origin.address, '-p', String(TRACKER_PORT), '-P', String(TRACKER_PORT), '-d', dir, '-w', 'allow']);
      } else {
        ctx.spawn(origin, 'tracker', process.execPath, [ctx.cli, 'tracker', '--host', origin.address, '--port', String(TRACKER_PORT), '--allow', infoHash, '--json']);
      }
      await waitForHttp(ctx.net, origin, `http://${origin.address}:${TRACKER_PORT}/scrape`, 10_000);

      const seeder = ctx.spawn(origin, 'libtorrent seed', SYSTEM_PYTHON, [script, 'seed', torrent, join(ctx.artifact.path, '..'), origin.address, String(PEER_PORT), superSeed ? '1' : '0']);
      await seeder.waitLine((l) => l.json?.event === 'seeding', 120_000, 'seeding');
    },
    async start(ctx: ScenarioContext) {
      for (const node of ctx.net.nodes) {
        leechers.set(node.name, ctx.spawn(node, `libtorrent ${node.name}`, SYSTEM_PYTHON, [script, 'leech', torrent, ctx.hostDir(node), node.address, String(PEER_PORT), '0']));
      }
      return Promise.resolve();
    },
    waitForNodes(ctx: ScenarioContext) {
      return copiesFromLines(ctx, leechers, 'libtorrent swarm', (l) => l.json?.event === 'complete', (node, line) => ({ at: line.at, path: join(ctx.hostDir(node), ctx.artifact.name) }));
    },
    async teardown() {
      leechers.clear();
      return Promise.resolve();
    },
  };
}

let ltVersion: string | undefined;
function libtorrentVersion(): string {
  ltVersion ??= spawnSync(SYSTEM_PYTHON, ['-c', 'import libtorrent; print(libtorrent.__version__)'], { encoding: 'utf8' }).stdout?.trim() || '?';
  return ltVersion;
}

/** Polls `url` from inside `host` with curl until it answers at all (any HTTP status). */
export async function waitForHttp(net: FleetNetwork, host: Host, url: string, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const r = spawnSync('ip', net.execArgs(host, 'curl', ['--silent', '--noproxy', '*', '--max-time', '1', '--output', '/dev/null', '--write-out', '%{http_code}', url]), { encoding: 'utf8' });
    if (r.stdout && r.stdout !== '000') return;
    if (performance.now() > until) throw new Error(`${url} did not answer from ${host.name} within ${timeoutMs / 1000} s`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
