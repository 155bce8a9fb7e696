import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { runCli } from '../../../apps/cli/src/cli.js';
import type { CommandIo } from '../../../apps/cli/src/command.js';
import { TrackerClient } from '../src/client.js';
import { id20 } from './tracker-fixtures.js';

function io() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  let interrupt: () => void = () => undefined;
  const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
  const value: CommandIo = { stdout, stderr, env: {}, interrupted };
  return { io: value, interrupt, out: () => out, err: () => err };
}

describe('swarmship tracker', () => {
  it('teaches in --help: usage first, every option, an example', async () => {
    const t = io();
    expect(await runCli(['tracker', '--help'], t.io)).toBe(0);
    const help = t.out();
    expect(help.split('\n')[0]).toBe('Usage: swarmship tracker [--host H] --port N [--allow INFOHASH]... [--interval SECONDS] [--json]');
    for (const option of ['--host', '--port', '--allow', '--interval', '--json', 'Example:']) expect(help).toContain(option);
  });

  it('prints the announce URL, serves announces, and stops when interrupted', async () => {
    const t = io();
    const allowed = id20(0xab);
    const exit = runCli(['tracker', '--host', '127.0.0.1', '--port', '0', '--allow', allowed.toString('hex').toUpperCase(), '--interval', '30', '--json'], t.io);
    await vi.waitFor(() => expect(t.out()).toContain('\n'), { timeout: 5000 });
    const started = JSON.parse(t.out()) as { announce: string; private: boolean; interval: number };
    expect(started).toMatchObject({ private: true, interval: 30 });
    const answer = await new TrackerClient(started.announce).announce({ infoHash: allowed, peerId: id20(1), port: 7001, uploaded: 0, downloaded: 0, left: 0 });
    expect(answer).toMatchObject({ interval: 30, complete: 1 });
    t.interrupt();
    expect(await exit).toBe(0);
    await expect(new TrackerClient(started.announce, { timeoutMs: 2000 }).announce({ infoHash: allowed, peerId: id20(1), port: 7001, uploaded: 0, downloaded: 0, left: 0 })).rejects.toThrow(/ECONNREFUSED/);
  });

  it.each([
    [['tracker'], /--port is required/],
    [['tracker', '--port', '70000'], /--port must be a whole number from 0 to 65535, got '70000'/],
    [['tracker', '--port', '0', '--interval', '0'], /--interval must be a whole number/],
    [['tracker', '--port', '0', '--allow', 'abc123'], /--allow 'abc123' is not an info hash/],
  ])('refuses %j with a usage error naming the problem', async (args, message) => {
    const t = io();
    expect(await runCli(args, t.io)).toBe(2);
    expect(t.err()).toMatch(message);
  });
});
