/**
 * transmission-cli downloads from our seeder. Transmission ignores peers on loopback,
 * so the two sides live in two network namespaces joined by a veth pair: our tracker
 * and seeder in one, Transmission in the other, meeting through the tracker.
 */
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI } from './helpers/cli.js';
import { NamespacePair, netnsUnavailableReason, type NetnsProcess } from './helpers/netns.js';
import { MIB, commandAvailable, makeTempDir, removeDir, sha256OfFile, writeArtifact, writeTorrent } from './helpers/swarm.js';

const transmission = commandAvailable('transmission-cli', ['--version']);
const netnsProblem = commandAvailable('ip', ['-V']) ? netnsUnavailableReason() : 'ip is missing (Debian package iproute2)';
if (!transmission) console.warn('skipping the Transmission interop test: install the Debian package transmission-cli to run it');
else if (netnsProblem) console.warn(`skipping the Transmission interop test: it needs network namespaces (${netnsProblem})`);

/** Transmission 3.00 moves about 22 MB/s at best, so a few MiB keep the test short. */
const FILE_BYTES = 8 * MIB + 4321;
const NAME = 'artifact.bin';

describe.skipIf(!transmission || netnsProblem !== undefined)('interop with Transmission between network namespaces (needs transmission-cli, iproute2, root)', () => {
  const hosts = new NamespacePair('10.231.0');
  let dir: string;

  beforeAll(async () => {
    dir = await makeTempDir('swarmship-transmission-');
    hosts.create();
  });

  afterAll(async () => {
    await hosts.close();
    await removeDir(dir);
  });

  function swarmship(args: string[]): NetnsProcess {
    return hosts.exec(hosts.a, process.execPath, [CLI, ...args]);
  }

  it('a transmission-cli leecher in one namespace downloads a byte-identical file from our seeder in the other', async () => {
    const content = join(dir, NAME);
    await writeArtifact(content, FILE_BYTES, 'interop-transmission');

    const tracker = swarmship(['tracker', '--host', hosts.addressA, '--port', '0', '--json']);
    const announce = (JSON.parse(await tracker.line((l) => l.includes('"announce"'), 15_000)) as { announce: string }).announce;
    const torrent = join(dir, 'artifact.torrent');
    await writeTorrent(content, torrent, { pieceLength: 256 * 1024, announce: [announce] });
    const seeder = swarmship(['seed', torrent, content, '--host', hosts.addressA, '--port', '0', '--json']);
    await seeder.line((l) => l.includes('"event":"seeding"'), 30_000);

    const config = join(dir, 'transmission-config');
    const out = join(dir, 'transmission-download');
    await mkdir(config);
    await mkdir(out);
    // Only the tracker may introduce peers; plain BitTorrent, since we speak no MSE.
    await writeFile(
      join(config, 'settings.json'),
      JSON.stringify({ 'dht-enabled': false, 'lpd-enabled': false, 'pex-enabled': false, 'utp-enabled': false, 'port-forwarding-enabled': false, encryption: 0 }),
    );
    const marker = join(dir, 'transmission-finished');
    const finish = join(dir, 'on-finish.sh');
    await writeFile(finish, `#!/bin/sh\necho done > '${marker}'\n`);
    await chmod(finish, 0o755);
    const leecher = hosts.exec(hosts.b, 'transmission-cli', ['-g', config, '-w', out, '-f', finish, '-et', '-M', '-p', '51413', torrent]);

    // transmission-cli seeds on after finishing: the script's marker says it is done.
    await vi.waitFor(
      async () => {
        if (leecher.child.exitCode !== null) throw new Error(`transmission-cli exited early:\n${leecher.output()}`);
        await stat(marker);
      },
      { timeout: 40_000, interval: 200 },
    ).catch((err: Error) => {
      const progress = leecher.output().split('\r').filter((l) => l.includes('Progress')).slice(-3).join('\n');
      throw new Error(`${err.message}\ntransmission-cli:\n${progress}\n${leecher.output().slice(-2000)}\nseeder:\n${seeder.output().slice(-2000)}`);
    });
    await leecher.stop();
    expect(await sha256OfFile(join(out, NAME))).toBe(await sha256OfFile(content));
  });
});
