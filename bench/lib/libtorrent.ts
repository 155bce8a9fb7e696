/**
 * libtorrent as the reference peer, driven from Python. The script is written into the
 * benchmark's temp dir at run time so the benchmark needs nothing but the distribution's
 * python3-libtorrent.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The distribution package installs libtorrent for the system interpreter, not for whatever python3 comes first on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** libtorrent's version, or why it cannot be used. */
export function probeLibtorrent(): { version: string } | { missing: string } {
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import libtorrent; print(libtorrent.__version__)'], { encoding: 'utf8', timeout: 20_000 });
  if (probe.status === 0) return { version: probe.stdout.trim() };
  const why = probe.error ? probe.error.message : (probe.stderr ?? '').trim().split('\n').pop() ?? `exit ${probe.status}`;
  return { missing: why };
}

/**
 * Python, for every libtorrent peer the tests and benchmarks start: a session that speaks
 * plain BitTorrent over TCP and nothing else. No DHT/LSD/UPnP/NAT-PMP (the swarm is
 * private and local), several connections per IP (test peers share 127.0.0.1), no MSE
 * encryption (by default libtorrent tries an encrypted handshake first, which our engine
 * does not speak, and times out before falling back), and no uTP (with outgoing uTP on, a
 * libtorrent 2.0.8 leecher crawled at 5–25 MB/s on loopback even when dialled over TCP).
 * `alerts` adds alert categories to errors and status. `say` prints a JSON line;
 * `drain_alerts` prints error alerts to stderr and tells whether the torrent finished.
 */
export const PRIVATE_SESSION_PY = String.raw`
def say(**fields):
    print(json.dumps(fields), flush=True)

def drain_alerts(session):
    finished = False
    for alert in session.pop_alerts():
        if isinstance(alert, lt.torrent_finished_alert):
            finished = True
        elif alert.category() & lt.alert.category_t.error_notification:
            print('alert %s: %s' % (alert.what(), alert.message()), file=sys.stderr, flush=True)
    return finished

def private_session(listen, outgoing=None, alerts=0):
    settings = {
        'listen_interfaces': listen,
        'enable_dht': False,
        'enable_lsd': False,
        'enable_upnp': False,
        'enable_natpmp': False,
        'enable_outgoing_utp': False,
        'enable_incoming_utp': False,
        'allow_multiple_connections_per_ip': True,
        'out_enc_policy': int(lt.enc_policy.pe_disabled),
        'in_enc_policy': int(lt.enc_policy.pe_disabled),
        'alert_mask': lt.alert.category_t.error_notification | lt.alert.category_t.status_notification | alerts,
    }
    if outgoing:
        settings['outgoing_interfaces'] = outgoing
    return lt.session(settings)
`;

/**
 * One session, one torrent, one peer. Settings are libtorrent's defaults except what a
 * loopback benchmark against a plain-BitTorrent peer needs: no DHT/LSD/UPnP/NAT-PMP, only
 * 127.0.0.1, several connections per IP allowed, and no MSE encryption (by default it
 * tries an encrypted handshake first, which our engine does not speak, and would time
 * out before falling back).
 *
 * uTP is off too, so every pairing is BitTorrent over TCP as our engine speaks it. With
 * outgoing uTP left on, a libtorrent 2.0.8 leecher crawled at 5–25 MB/s on loopback, with
 * both processes idle, even with the peer dialled over TCP (connect_peer flags 0); turning
 * off only outgoing uTP on the leecher made it 5–15× faster. The dial still passes flags
 * 0, because connect_peer's default marks the peer as uTP-capable.
 *
 * Roles: 'seed' checks the data when added, before it reports seeding, and then serves
 * without hashing, as our seeder does with --trust; 'seed-mode' uses libtorrent's
 * seed_mode, which skips that check but hashes every piece the first time a peer asks
 * for it, inside the timed transfer; 'leech'.
 *
 * Prints JSON lines: {"event":"seeding","port"} for a seeder; for a leecher
 * {"event":"listening","port"} just before it dials, {"event":"complete","elapsed"} when
 * every piece is verified (libtorrent's own clock, from the dial), then
 * {"event":"flushed","seconds"}: how long an fdatasync of the copy took afterwards,
 * because libtorrent reports completion with the data still in the page cache.
 */
const PEER = String.raw`
import json, os, sys, time
import libtorrent as lt
${PRIVATE_SESSION_PY}
role, torrent, save_path, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
peer = sys.argv[5] if len(sys.argv) > 5 else ''
deadline = time.time() + limit

session = private_session('127.0.0.1:0')
while session.listen_port() == 0 and time.time() < deadline:
    time.sleep(0.01)

info = lt.torrent_info(torrent)
params = lt.add_torrent_params()
params.ti = info
params.save_path = save_path
params.flags &= ~lt.torrent_flags.auto_managed
params.flags &= ~lt.torrent_flags.paused
if role == 'seed-mode':
    params.flags |= lt.torrent_flags.seed_mode
handle = session.add_torrent(params)

if role != 'leech':
    while not handle.status().is_seeding and time.time() < deadline:
        time.sleep(0.01)
    say(event='seeding', port=session.listen_port())
    while time.time() < deadline:
        session.wait_for_alert(1000)
        drain_alerts(session)
    sys.exit(0)

host, port = peer.rsplit(':', 1)
say(event='listening', port=session.listen_port())
started = time.monotonic()
handle.connect_peer((host, int(port)), 0, 0)
finished = False
connections = 0
while time.time() < deadline:
    # Woken by torrent_finished_alert; the status poll is a fallback.
    session.wait_for_alert(50)
    if drain_alerts(session):
        finished = True
        break
    status = handle.status()
    connections = max(connections, status.num_connections)
    if status.is_seeding:
        finished = True
        break
elapsed = time.monotonic() - started
status = handle.status()
if not finished:
    say(event='timeout', progress=status.progress, peers=status.num_peers, state=str(status.state))
    sys.exit(1)
say(event='complete', elapsed=elapsed, downloaded=status.total_payload_download,
    redundant=status.total_redundant_bytes, failed=status.total_failed_bytes, connections=connections)

t = time.monotonic()
fd = os.open(os.path.join(save_path, info.name()), os.O_RDONLY)
os.fdatasync(fd)
os.close(fd)
say(event='flushed', seconds=time.monotonic() - t)
while time.time() < deadline:
    session.wait_for_alert(1000)
    drain_alerts(session)
`;

export async function writePeerScript(dir: string): Promise<string> {
  const path = join(dir, 'lt_peer.py');
  await writeFile(path, PEER);
  return path;
}
