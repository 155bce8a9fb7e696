/** Shared by the engine tests that run real engines on loopback: a torrent of a buffer, and cleanup after each test. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { TorrentDescriptor } from '../src/index.js';
import { encodePieceHeader } from '../../wire/src/encode.js';
import type { BlockRef } from '../../wire/src/messages.js';

/** A single-file torrent of `data`, its info hash derived from the name and the piece hashes. */
export function describeFile(name: string, data: Buffer, pieceLength: number): TorrentDescriptor {
  const pieceCount = Math.ceil(data.length / pieceLength);
  const hashes = Buffer.alloc(pieceCount * 20);
  for (let i = 0; i < pieceCount; i++) {
    createHash('sha1').update(data.subarray(i * pieceLength, (i + 1) * pieceLength)).digest().copy(hashes, i * 20);
  }
  const infoHash = createHash('sha1').update(name + data.length + hashes.toString('hex')).digest();
  return { infoHash, name, pieceLength, pieceCount, length: data.length, pieceHashes: hashes, files: [{ path: [name], length: data.length, offset: 0 }], singleFile: true };
}

export interface Cleanups {
  /** Run after each test, last pushed first. */
  cleanups: (() => Promise<unknown>)[];
  /** A fresh temporary directory, removed after the test. */
  tempDir(): Promise<string>;
}

/** Call once at the top of a test file: what its tests push is undone after each of them. */
export function cleanupAfterEach(): Cleanups {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });
  return {
    cleanups,
    tempDir: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'swarmship-engine-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return dir;
    },
  };
}

/**
 * A scripted peer: a server on `host` that hands each connection to `onSocket`, with
 * `every` for its timers. Timers stop when their socket closes; sockets and the server
 * are closed by `cleanups`. Resolves to the port.
 */
export async function scriptedPeer(
  cleanups: Cleanups['cleanups'],
  host: string,
  onSocket: (socket: Socket, every: (ms: number, fn: () => void) => void) => void,
): Promise<number> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onSocket(socket, (ms, fn) => {
      const timer = setInterval(fn, ms);
      timers.add(timer);
      socket.once('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(async () => {
    for (const t of timers) clearInterval(t);
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return (server.address() as { port: number }).port;
}

/** The `piece` frame answering request `r` with the torrent's bytes in `data`. */
export function pieceFrame(info: TorrentDescriptor, data: Buffer, r: BlockRef): Buffer {
  const at = r.index * info.pieceLength + r.begin;
  return Buffer.concat([encodePieceHeader(r.index, r.begin, r.length), data.subarray(at, at + r.length)]);
}
