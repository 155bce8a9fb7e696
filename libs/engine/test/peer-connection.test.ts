import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeHandshake, encodeMessage } from '../../wire/src/encode.js';
import type { Handshake, WireMessage } from '../../wire/src/messages.js';
import { PeerConnection, type ConnectionHandler } from '../src/peer-connection.js';

/** Records what a connection hands its handler, copying inside the callbacks as the engine does. */
function recorder(): ConnectionHandler & { seen: string[]; closed: Promise<void> } {
  let closed!: () => void;
  const seen: string[] = [];
  return {
    seen,
    closed: new Promise<void>((r) => (closed = r)),
    onHandshake: (_c, h) => seen.push(`handshake ${h.peerId.toString('hex')}`),
    onMessage: (_c, m) => seen.push(m.type === 'piece' ? `piece ${m.index} ${m.block.toString('hex', 0, 4)} ${m.block.length}` : m.type),
    onProtocolError: (_c, e) => seen.push(`error ${e.code}`),
    onClose: () => closed(),
    onDrain: () => undefined,
    onChunkDone: () => undefined,
  };
}

let server: Server | undefined;
afterEach(() => server?.close());

describe('PeerConnection.accept', () => {
  it('reads an incoming connection into its own buffer, decodes it, and lets the server close once it ends', async () => {
    let remote = '';
    const accepted = new Promise<PeerConnection>((resolve) => {
      server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
        const conn = PeerConnection.accept(socket, handler, () => Date.now());
        remote = conn.remoteAddress;
        resolve(conn);
      });
    });
    const handler = recorder();
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server!.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    const handshake: Handshake = { reserved: Buffer.alloc(8), infoHash: Buffer.alloc(20, 7), peerId: Buffer.alloc(20, 9) };
    const block = Buffer.alloc(16384, 0xab);
    const messages: WireMessage[] = [{ type: 'interested' }, ...[0, 1, 2, 3].map((i) => ({ type: 'piece' as const, index: i, begin: 0, block }))];
    client.end(Buffer.concat([encodeHandshake(handshake), ...messages.map(encodeMessage)]));
    const conn = await accepted;
    expect(conn.readsIntoOwnBuffer).toBe(true);
    await handler.closed;
    expect(handler.seen).toEqual([`handshake ${'09'.repeat(20)}`, 'interested', 'piece 0 abababab 16384', 'piece 1 abababab 16384', 'piece 2 abababab 16384', 'piece 3 abababab 16384']);
    expect(remote).toBe('127.0.0.1');
    // The server counts the connection it made until the socket that took over is gone.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('server.close() still waits for a connection')), 5000);
      server!.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
    server = undefined;
  });

  it('answers every request that arrived in one read with one write to the socket', async () => {
    const block = Buffer.alloc(16384, 0xcd);
    const handler: ConnectionHandler = {
      ...recorder(),
      onMessage: (c, m) => {
        if (m.type === 'request') c.sendPiece(m.index, m.begin, block.subarray(0, m.length));
      },
    };
    let writes = 0;
    const accepted = new Promise<PeerConnection>((resolve) => {
      server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
        const conn = PeerConnection.accept(socket, handler, () => Date.now());
        // Node's stream calls one of these per write it hands the kernel.
        const s = conn.socket as unknown as Record<'_write' | '_writev', (...a: unknown[]) => void>;
        for (const name of ['_write', '_writev'] as const) {
          const original = s[name]!.bind(conn.socket);
          s[name] = (...a: unknown[]) => {
            writes++;
            original(...a);
          };
        }
        resolve(conn);
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server!.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let bytes = 0;
    const requests = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ type: 'request' as const, index: i, begin: 0, length: 16384 }));
    const all = new Promise<void>((resolve) =>
      client.on('data', (d: Buffer) => {
        received.push(d);
        if ((bytes += d.length) >= requests.length * (13 + 16384)) resolve();
      }),
    );
    const handshake: Handshake = { reserved: Buffer.alloc(8), infoHash: Buffer.alloc(20, 7), peerId: Buffer.alloc(20, 9) };
    client.write(Buffer.concat([encodeHandshake(handshake), ...requests.map(encodeMessage)]));
    const conn = await accepted;
    await all;
    expect(bytes).toBe(requests.length * (13 + 16384));
    expect(Buffer.concat(received).readUInt32BE(13 + 16384 + 5)).toBe(1);
    expect(writes).toBe(1);
    client.destroy();
    conn.destroy(undefined);
  });
});
