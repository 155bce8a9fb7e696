/**
 * A peer that lies, for fault-injection tests: it speaks just enough of the wire
 * protocol (our codec) to be asked for data, then misbehaves in one chosen way. It runs
 * inside the test process and listens on its own loopback address, so that banning it
 * by IP leaves the honest peers on other addresses alone.
 */
import { randomBytes } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { WireDecoder, encodeHandshake, encodeMessage, encodePieceHeader, Reserved, type BlockRef, type Handshake, type WireMessage } from '../../libs/wire/src/index.js';

export type HostileBehaviour =
  /** Serves every request with the right piece's bytes inverted (right length, wrong hash). */
  | 'flip-bytes'
  /** Answers the handshake with random bytes instead of a handshake. */
  | 'garbage'
  /** Handshakes, then announces a 4 GiB message and trickles bytes of it. */
  | 'huge-length'
  /** Handshakes, then answers a request with a block of a piece past the end of the torrent. */
  | 'bad-index';

export interface HostilePeerOptions {
  behaviour: HostileBehaviour;
  host: string;
  infoHash: Buffer;
  pieceLength: number;
  pieceCount: number;
  /** The real content, so inverted blocks have the right length at the right offset. */
  contentPath: string;
}

export interface HostileStats {
  connections: number;
  requests: number;
  blocksSent: number;
  /** Connections the other side closed. */
  dropped: number;
}

export class HostilePeer {
  readonly stats: HostileStats = { connections: 0, requests: 0, blocksSent: 0, dropped: 0 };
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private content: FileHandle | undefined;
  private listenPort = 0;

  private constructor(private readonly o: HostilePeerOptions) {
    this.server = createServer((socket) => this.accept(socket));
  }

  static async start(options: HostilePeerOptions): Promise<HostilePeer> {
    const peer = new HostilePeer(options);
    peer.content = await open(options.contentPath, 'r');
    await new Promise<void>((resolve, reject) => {
      peer.server.once('error', reject);
      peer.server.listen(0, options.host, () => resolve());
    });
    const addr = peer.server.address();
    peer.listenPort = typeof addr === 'object' && addr ? addr.port : 0;
    return peer;
  }

  get port(): number {
    return this.listenPort;
  }

  get address(): string {
    return `${this.o.host}:${this.listenPort}`;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.content?.close();
    this.content = undefined;
  }

  private accept(socket: Socket): void {
    this.stats.connections++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.stats.dropped++;
    });
    // A write after the other side dropped us fails quietly, like any peer's would.
    const send = (buf: Buffer) => void (!socket.destroyed && socket.write(buf));
    const decoder = new WireDecoder(
      {
        onHandshake: (h) => this.onHandshake(socket, h, send),
        onMessage: (m) => this.onMessage(m, send),
        onError: () => socket.destroy(),
      },
      { pieceCount: this.o.pieceCount },
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  }

  private onHandshake(socket: Socket, h: Handshake, send: (buf: Buffer) => void): void {
    if (!h.infoHash.equals(this.o.infoHash)) return void socket.destroy();
    if (this.o.behaviour === 'garbage') return send(randomBytes(4096));
    const reserved = Buffer.alloc(8);
    reserved[Reserved.fastExtension.byte]! |= Reserved.fastExtension.mask;
    send(encodeHandshake({ reserved, infoHash: this.o.infoHash, peerId: Buffer.from('-XX0000-hostile-peer', 'latin1') }));
    const fast = (h.reserved[Reserved.fastExtension.byte]! & Reserved.fastExtension.mask) !== 0;
    send(encodeMessage(fast ? { type: 'have-all' } : { type: 'bitfield', bitfield: fullBitfield(this.o.pieceCount) }));
    send(encodeMessage({ type: 'unchoke' }));
    if (this.o.behaviour === 'huge-length') {
      const header = Buffer.alloc(5);
      header.writeUInt32BE(0xffffffff, 0);
      header[4] = 7;
      send(header);
      // Keep the connection busy, as a peer that means to send it all would.
      const timer = setInterval(() => send(randomBytes(1024)), 50);
      this.timers.add(timer);
      socket.once('close', () => (clearInterval(timer), this.timers.delete(timer)));
    }
  }

  private onMessage(m: WireMessage, send: (buf: Buffer) => void): void {
    if (m.type !== 'request') return;
    this.stats.requests++;
    if (this.o.behaviour === 'bad-index') {
      send(encodeMessage({ type: 'piece', index: this.o.pieceCount + 7, begin: m.begin, block: randomBytes(m.length) }));
      this.stats.blocksSent++;
      return;
    }
    if (this.o.behaviour !== 'flip-bytes') return;
    void this.invertedBlock(m).then((block) => {
      if (!block) return;
      send(Buffer.concat([encodePieceHeader(m.index, m.begin, block.length), block]));
      this.stats.blocksSent++;
    });
  }

  private async invertedBlock(r: BlockRef): Promise<Buffer | undefined> {
    if (!this.content) return undefined;
    const block = Buffer.alloc(r.length);
    // Closed under a late request while the test tears down: nothing to send.
    const read = await this.content.read(block, 0, r.length, r.index * this.o.pieceLength + r.begin).catch(() => undefined);
    if (!read) return undefined;
    const { bytesRead } = read;
    for (let i = 0; i < bytesRead; i++) block[i] = ~block[i]! & 0xff;
    return block.subarray(0, bytesRead);
  }
}

function fullBitfield(pieceCount: number): Buffer {
  const bytes = Buffer.alloc(Math.ceil(pieceCount / 8), 0xff);
  const spare = bytes.length * 8 - pieceCount;
  if (spare > 0) bytes[bytes.length - 1] = (0xff << spare) & 0xff;
  return bytes;
}
