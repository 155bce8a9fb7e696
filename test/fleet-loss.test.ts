/**
 * Loss on the fleet harness's links without netem: nftables drops packets at random on
 * each link end's egress. A TCP stream between two namespace hosts must arrive whole
 * (the kernel retransmits), and the drops counted must come to about the loss asked for,
 * packet by packet (segmentation offload off). Needs root for `ip netns` and the `nft`
 * command (Debian package nftables); skips and says which is missing otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetNetwork, netnsUnavailableReason, nftablesLossUnavailableReason } from '../bench/fleet/network.js';

const unavailable = netnsUnavailableReason() ?? nftablesLossUnavailableReason();
const BYTES = 4 * 1024 * 1024;
const PORT = 7300;

/** Runs `script` with node inside `ns`; resolves with its stdout once it exits 0. */
function nodeIn(net: FleetNetwork, host: FleetNetwork['hosts'][number], script: string, input?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', net.execArgs(host, process.execPath, ['-e', script]), { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

let net: FleetNetwork | undefined;
const children: ChildProcess[] = [];
afterEach(() => {
  // By PID: `ip netns exec` execs, so each is the node process itself.
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  net?.destroy();
  net = undefined;
});

describe('fleet links with loss made by nftables', () => {
  it.skipIf(unavailable !== undefined)(`drop about the asked share of packets, one by one, and TCP still delivers every byte${unavailable ? ` (skipped: ${unavailable})` : ''}`, { timeout: 60_000 }, async () => {
    net = new FleetNetwork({ nodes: 1, rateBitsPerSecond: 200e6, lossPercent: 3, lossBy: 'nftables' });
    net.create();
    expect(net.lossBy).toBe('nftables');
    const [origin, node] = net.hosts as [FleetNetwork['hosts'][number], FleetNetwork['hosts'][number]];
    const data = randomBytes(BYTES);

    const receiver = nodeIn(
      net,
      origin,
      `const h = require('node:crypto').createHash('sha1'); let n = 0;
       const s = require('node:net').createServer((c) => { c.on('data', (d) => { h.update(d); n += d.length; }); c.on('end', () => { process.stdout.write(n + ' ' + h.digest('hex')); s.close(); }); });
       s.listen(${PORT}, '${origin.address}', () => process.stderr.write('listening'));`,
    );
    // The sender retries until the receiver listens.
    const sender = nodeIn(
      net,
      node,
      `const chunks = []; process.stdin.on('data', (c) => chunks.push(c)); process.stdin.on('end', () => {
         const go = () => { const c = require('node:net').connect(${PORT}, '${origin.address}'); c.on('error', () => setTimeout(go, 100)); c.on('connect', () => c.end(Buffer.concat(chunks))); };
         go(); });`,
      data,
    );
    await sender;
    const [bytes, sha1] = (await receiver).split(' ');
    expect(Number(bytes)).toBe(BYTES);
    expect(sha1).toBe(createHash('sha1').update(data).digest('hex'));

    const counters = net.counters();
    const passed = [...counters.values()].reduce((n, c) => n + c.txPackets + c.rxPackets, 0);
    const dropped = net.droppedPackets();
    // 4 MiB is some 2900 full-size segments one way and their ACKs the other, each
    // counted at both ends of its link: with offload on, a drop would take a whole 64 KiB
    // burst and the packets would number in the hundreds.
    expect(passed).toBeGreaterThan(7000);
    const applied = dropped / (dropped + passed);
    expect(applied).toBeGreaterThan(0.015);
    expect(applied).toBeLessThan(0.045);

    const runId = net.runId;
    net.destroy();
    net = undefined;
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(runId);
  });
});
