/**
 * A libtorrent session on a loopback address of its own, as the other side of our
 * engine: it learns of peers only from the addresses the test gives it (connect_peer),
 * never from DHT, LSD, PEX, UPnP or NAT-PMP, and it speaks plain BitTorrent, since
 * libtorrent otherwise opens with an encrypted handshake that we do not implement.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_SESSION_PY } from '../../bench/lib/libtorrent.js';

const PEER = String.raw`
import sys, time
import libtorrent as lt
${PRIVATE_SESSION_PY}
torrent, save_path, role, iface, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
peers = []
for arg in sys.argv[6:]:
    host, port = arg.rsplit(':', 1)
    peers.append((host, int(port)))

session = private_session(iface + ':0', iface, lt.alert.category_t.connect_notification)
deadline = time.time() + limit
while session.listen_port() == 0 and time.time() < deadline:
    time.sleep(0.05)
print('LISTEN %d' % session.listen_port(), flush=True)

params = lt.add_torrent_params()
params.ti = lt.torrent_info(torrent)
params.save_path = save_path
params.flags &= ~lt.torrent_flags.auto_managed
params.flags &= ~lt.torrent_flags.paused
handle = session.add_torrent(params)
handle.set_flags(lt.torrent_flags.disable_pex)
for peer in peers:
    handle.connect_peer(peer)

last_report = 0.0
announced_seeding = False
while time.time() < deadline:
    for alert in session.pop_alerts():
        print('alert %s: %s' % (alert.what(), alert.message()), file=sys.stderr, flush=True)
    status = handle.status()
    now = time.time()
    if now - last_report > 1.0:
        last_report = now
        print('status state=%s progress=%.3f peers=%d down=%d' % (status.state, status.progress, status.num_peers, status.total_payload_download), file=sys.stderr, flush=True)
    if status.is_seeding and not announced_seeding:
        announced_seeding = True
        print('SEEDING', flush=True)
        if role == 'leech':
            print('DONE downloaded=%d failed=%d' % (status.total_payload_download, status.total_failed_bytes), flush=True)
            sys.exit(0)
    time.sleep(0.05)
status = handle.status()
print('TIMEOUT state=%s progress=%.3f peers=%d' % (status.state, status.progress, status.num_peers), flush=True)
sys.exit(1)
`;

/**
 * Writes the peer script into `dir`. Run it as
 * `SYSTEM_PYTHON script <torrent> <save-dir> seed|leech <address> <seconds> [host:port]...`:
 * it prints "LISTEN <port>", then "SEEDING" once it has every piece; a leecher then
 * prints "DONE …" and exits 0, a seeder keeps serving until killed.
 */
export async function writeLibtorrentPeer(dir: string): Promise<string> {
  const path = join(dir, 'libtorrent_peer.py');
  await writeFile(path, PEER);
  return path;
}
