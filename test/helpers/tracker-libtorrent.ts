/**
 * libtorrent peers driven from Python, for interop tests that must not depend on our
 * own metainfo or engine code. Scripts are written into the test's temp dir at run time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_SESSION_PY } from '../../bench/lib/libtorrent.js';

/** The distribution package installs libtorrent for the system interpreter, not for whatever python3 comes first on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export function libtorrentAvailable(): boolean {
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore', timeout: 20_000 });
  return probe.status === 0;
}

const MAKE_TORRENT = String.raw`
import os, sys
import libtorrent as lt

data, out, announce = sys.argv[1:4]
fs = lt.file_storage()
lt.add_files(fs, data)
# v1 only: a hybrid torrent would also announce its truncated v2 hash.
t = lt.create_torrent(fs, 256 * 1024, lt.create_torrent.v1_only)
t.add_tracker(announce)
t.set_creator('tracker interop test')
lt.set_piece_hashes(t, os.path.dirname(data))
with open(out, 'wb') as f:
    f.write(lt.bencode(t.generate()))
print(str(lt.torrent_info(out).info_hashes().v1), flush=True)
`;

/**
 * One libtorrent session on 127.0.0.1 that can learn of peers only from the tracker:
 * no DHT, LSD, UPnP, NAT-PMP or peer exchange. Prints "LISTEN <port>", then "SEEDING"
 * once it has every piece; a leecher exits 0 there, a seeder keeps serving.
 */
const PEER = String.raw`
import sys, time
import libtorrent as lt
${PRIVATE_SESSION_PY}
torrent, save_path, role, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
session = private_session('127.0.0.1:0', None, lt.alert.category_t.tracker_notification)
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

announced_seeding = False
while time.time() < deadline:
    for alert in session.pop_alerts():
        print('alert %s: %s' % (alert.what(), alert.message()), file=sys.stderr, flush=True)
    status = handle.status()
    if status.is_seeding and not announced_seeding:
        announced_seeding = True
        print('SEEDING', flush=True)
        if role == 'leech':
            # Let the completed announce reach the tracker before the session goes.
            time.sleep(1.0)
            for alert in session.pop_alerts():
                print('alert %s: %s' % (alert.what(), alert.message()), file=sys.stderr, flush=True)
            sys.exit(0)
    time.sleep(0.1)
status = handle.status()
print('TIMEOUT state=%s progress=%.3f peers=%d' % (status.state, status.progress, status.num_peers), flush=True)
sys.exit(1)
`;

export async function writeScripts(dir: string): Promise<{ makeTorrent: string; peer: string }> {
  const makeTorrent = join(dir, 'make_torrent.py');
  const peer = join(dir, 'peer.py');
  await writeFile(makeTorrent, MAKE_TORRENT);
  await writeFile(peer, PEER);
  return { makeTorrent, peer };
}

/** Runs the torrent maker and returns the v1 info hash it prints, in hex. */
export function makeTorrent(script: string, data: string, out: string, announce: string): string {
  const run = spawnSync(SYSTEM_PYTHON, [script, data, out, announce], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`making the torrent failed (${run.status ?? run.signal}): ${run.stderr}`);
  const hash = run.stdout.trim();
  if (!/^[0-9a-f]{40}$/.test(hash)) throw new Error(`the torrent maker printed no info hash: ${run.stdout}`);
  return hash;
}

/** A running peer script whose output can be awaited line by line. */
export class PythonPeer {
  readonly process: ChildProcess;
  private out = '';
  private err = '';
  private exited: Promise<number | null>;

  constructor(script: string, args: string[]) {
    this.process = spawn(SYSTEM_PYTHON, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process.stdout?.on('data', (c: Buffer) => (this.out += c.toString()));
    this.process.stderr?.on('data', (c: Buffer) => (this.err += c.toString()));
    this.exited = new Promise((resolve) => this.process.on('exit', (code) => resolve(code)));
  }

  /** Resolves with the first stdout line starting with `prefix`. */
  async line(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.out.split('\n').find((l) => l.startsWith(prefix));
      if (found !== undefined) return found;
      if (this.process.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no '${prefix}' line from the peer within ${timeoutMs} ms\nstdout:\n${this.out}\nstderr:\n${this.err.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async exitCode(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') throw new Error(`the peer did not exit within ${timeoutMs} ms\nstdout:\n${this.out}\nstderr:\n${this.err.slice(-4000)}`);
    return result;
  }

  get output(): string {
    return `stdout:\n${this.out}\nstderr:\n${this.err.slice(-4000)}`;
  }

  kill(): void {
    const pid = this.process.pid;
    if (pid !== undefined && this.process.exitCode === null && this.process.signalCode === null) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}
