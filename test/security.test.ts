/**
 * The security model of docs/SECURITY.md, held against a real `swarmship controller`
 * process on loopback: what answers without a token, what a client without one can make
 * the controller buffer, and what never reaches its output.
 */
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentPatterns, type AgentSyncRequest, type AgentSyncResponse } from '../libs/contracts/src/agent-channel.js';
import { AGENT_TOKEN, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';

const MIB = 1024 * 1024;

let temp: { dir: string; remove: () => Promise<void> };
let ctl: ControllerUnderTest;

beforeAll(async () => {
  temp = await tempDataDir();
  ctl = await startControllerProcess(join(temp.dir, 'data'));
});

afterAll(async () => {
  await ctl?.stop();
  await temp?.remove();
});

async function residentBytes(): Promise<number> {
  const text = await (await fetch(`${ctl.base}/metrics`)).text();
  const m = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  if (!m) throw new Error('no process_resident_memory_bytes in /metrics');
  return Number(m[1]);
}

/**
 * Sends `head`, then up to `total` bytes of `fill`, as fast as the peer reads them,
 * until the peer closes the connection; resolves with what was written by then.
 */
function flood(port: number, head: Buffer, total: number, fill: number, timeoutMs = 20_000): Promise<{ written: number; closed: boolean }> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(MIB, fill);
    const socket: Socket = connect(port, '127.0.0.1');
    let written = 0;
    let closed = false;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ written, closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('connect', () => {
      socket.write(head);
      const pump = () => {
        while (!closed && written < total) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        // Everything is out: give the peer a moment to close before calling it open.
        if (!closed) setTimeout(finish, 2000);
      };
      pump();
    });
  });
}

describe('agent channel: what a client without a token can do', () => {
  let client: ClientProxy;
  const sync = (): Promise<AgentSyncResponse> => {
    const req: AgentSyncRequest = {
      token: AGENT_TOKEN,
      agent: { name: 'probe', labels: {}, addresses: ['127.0.0.1'], peerPort: 1, diskFreeBytes: 0, version: 'test' },
      holdings: [],
      knownRevision: 0,
      waitMs: 0,
    };
    return firstValueFrom(client.send<AgentSyncResponse, AgentSyncRequest>(AgentPatterns.sync, req));
  };

  beforeAll(async () => {
    client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: ctl.channel.host, port: ctl.channel.port } }) as ClientProxy;
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
  });

  it('cuts off a 100 MB frame, an endless header and garbage before buffering them, and keeps serving', async () => {
    const before = await residentBytes();
    const cases: [string, Buffer, number][] = [
      ['a frame that declares 100 MB', Buffer.from(`${100 * MIB}#{"pattern":"sync","data":"`), 0x61],
      ['a length header that never ends', Buffer.from('1'), 0x31],
      ['a frame that lies about its length, then garbage', Buffer.from('2#{}'), 0x7b],
      ['no header at all', Buffer.from('{"pattern":"sync"}'), 0x20],
    ];
    for (const [what, head, fill] of cases) {
      const { written, closed } = await flood(ctl.channel.port, head, 100 * MIB, fill);
      expect(closed, what).toBe(true);
      // Loopback socket buffers take a few MB; the controller itself read almost nothing.
      expect(written, what).toBeLessThan(32 * MIB);
    }
    const after = await residentBytes();
    expect(after - before).toBeLessThan(48 * MIB);
    // A real agent is still served.
    const res = await sync();
    expect(res.revision).toBeGreaterThan(0);
    expect((await fetch(`${ctl.base}/healthz`)).status).toBe(200);
    expect(ctl.cli.child.exitCode).toBeNull();
  });

  it('refuses a frame declared over the limit even when it is sent slowly', async () => {
    const socket = connect(ctl.channel.port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      socket.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    socket.write(`${8 * MIB + 1}#`);
    expect(await closed).toBe(true);
  });
});
