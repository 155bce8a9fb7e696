/**
 * A peer that lies, for fault-injection tests: it speaks just enough of the wire
 * protocol (our codec) to be asked for data, then misbehaves in one chosen way. It runs
 * inside the test process and listens on its own loopback address, so that banning it
 * by IP leaves the honest peers on other addresses alone. `announce` lists it with a
 * tracker the way any peer joins a swarm.
 */
import { randomBytes } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { percentEncodeBytes } from '../../libs/tracker/src/query.js';
import { WireDecoder, encodeHandshake, encodeMessage, encodePieceHeader, encodeRequests, Reserved, type BlockRef, type Handshake, type WireMessage } from '../../libs/wire/src/index.js';

export type HostileBehaviour =
  /** Serves every request with the right piece's bytes inverted (right length, wrong hash). */
  | 'flip-bytes'
  /** Answers the handshake with random bytes instead of a handshake. */
  | 'garbage'
  /** Handshakes, then announces a 4 GiB message and trickles bytes of it. */
  | 'huge-length'
  /** Handshakes, then answers a request with a block of a piece past the end of the torrent. */
  | 'bad-index'
  /** Serves every request with half the block asked for (the right bytes, too few of them). */
  | 'wrong-length'
  /** Says it has nothing, then pushes blocks of random bytes for pieces nobody asked it for. */
  | 'unadvertised'
  /** Says it has nothing and wants everything, then sends requests as fast as the socket takes them, never reading a reply. */
  | 'request-flood'
  /** Says it has every piece and unchokes, then never sends a block (keep-alives only). */
  | 'stall';

export interface HostilePeerOptions {
  behaviour: HostileBehaviour;
  host: string;
  infoHash: Buffer;
  pieceLength: number;
  pieceCount: number;
  /** The real content, so inverted blocks have the right length at the right offset. */
  contentPath: string;
  /** request-flood: bytes of requests to send at most (default 64 MiB). */
  floodBytes?: number;
}

export interface HostileStats {
  connections: number;
  requests: number;
  blocksSent: number;
  /** Connections the other side closed. */
  dropped: number;
  /** Blocks pushed without being asked (unadvertised). */
  unsolicitedSent: number;
  /** Requests sent (request-flood). */
  floodRequests: number;
  /** request-flood connections that sent all floodBytes without being cut off. */
  floodsFinished: number;
  /** Peer ids (hex) of the peers that handshook with it, and of those that then closed the connection. */
  peersSeen: Set<string>;
  peersDropped: Set<string>;
}

export class HostilePeer {
  readonly stats: HostileStats = { connections: 0, requests: 0, blocksSent: 0, dropped: 0, unsolicitedSent: 0, floodRequests: 0, floodsFinished: 0, peersSeen: new Set(), peersDropped: new Set() };
  readonly peerId = Buffer.from(`-XX0000-${randomBytes(6).toString('hex')}`, 'latin1');
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private content: FileHandle | undefined;
  private closing = false;
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

  /**
   * Lists this peer with a tracker, announcing from its own address so the tracker
   * records the address it will be dialled (and banned) at. Resolves with the body.
   */
  announce(announceUrl: string): Promise<Buffer> {
    const leecher = this.o.behaviour === 'request-flood' || this.o.behaviour === 'unadvertised';
    const query = [
      `info_hash=${percentEncodeBytes(this.o.infoHash)}`,
      `peer_id=${percentEncodeBytes(this.peerId)}`,
      `port=${this.listenPort}`,
      'uploaded=0',
      'downloaded=0',
      `left=${leecher ? this.o.pieceCount * this.o.pieceLength : 0}`,
      'event=started',
      'compact=1',
    ].join('&');
    const url = new URL(announceUrl);
    return new Promise((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: `${url.pathname}?${query}`, localAddress: this.o.host, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (res.statusCode !== 200 || body.includes('failure reason')) reject(new Error(`announce refused: ${res.statusCode} ${body.toString('latin1')}`));
          else resolve(body);
        });
      });
      req.on('timeout', () => req.destroy(new Error('announce timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
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
      if (this.closing) return;
      this.stats.dropped++;
      const id = peerIds.get(socket);
      if (id) this.stats.peersDropped.add(id);
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
    peerIds.set(socket, h.peerId.toString('hex'));
    this.stats.peersSeen.add(h.peerId.toString('hex'));
    if (this.o.behaviour === 'garbage') return send(randomBytes(4096));
    const reserved = Buffer.alloc(8);
    reserved[Reserved.fastExtension.byte]! |= Reserved.fastExtension.mask;
    send(encodeHandshake({ reserved, infoHash: this.o.infoHash, peerId: this.peerId }));
    const fast = (h.reserved[Reserved.fastExtension.byte]! & Reserved.fastExtension.mask) !== 0;
    const b = this.o.behaviour;
    if (b === 'unadvertised' || b === 'request-flood') {
      // A bitfield of nothing is not sent (BEP 3); with the fast extension, have-none says it.
      if (fast) send(encodeMessage({ type: 'have-none' }));
      if (b === 'unadvertised') return this.pushUnsolicited(socket, send);
      return void this.flood(socket);
    }
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

  /** Blocks of random bytes for pieces it never announced, a few every 50 ms, at offsets a real block would have. */
  private pushUnsolicited(socket: Socket, send: (buf: Buffer) => void): void {
    const blockLength = 16 * 1024;
    let next = 0;
    const push = () => {
      for (let i = 0; i < 4; i++) {
        const index = next++ % this.o.pieceCount;
        send(encodeMessage({ type: 'piece', index, begin: 0, block: randomBytes(Math.min(blockLength, this.o.pieceLength)) }));
        this.stats.unsolicitedSent++;
      }
    };
    push();
    const timer = setInterval(push, 50);
    this.timers.add(timer);
    socket.once('close', () => (clearInterval(timer), this.timers.delete(timer)));
  }

  /**
   * Interested, then requests for every block of every piece over and over, written as
   * fast as the socket drains, while nothing the other side sends is read: an agent that
   * queued a reply to each would grow its memory without bound.
   */
  private async flood(socket: Socket): Promise<void> {
    socket.pause();
    socket.write(encodeMessage({ type: 'interested' }));
    const blockLength = 16 * 1024;
    const blocks: BlockRef[] = [];
    for (let index = 0; index < this.o.pieceCount; index++) {
      for (let begin = 0; begin < this.o.pieceLength; begin += blockLength) blocks.push({ index, begin, length: blockLength });
    }
    const batch = encodeRequests(blocks);
    const limit = this.o.floodBytes ?? 64 * 1024 * 1024;
    for (let sent = 0; sent < limit; sent += batch.length) {
      if (socket.destroyed) return;
      this.stats.floodRequests += blocks.length;
      if (!socket.write(batch)) {
        const drained = await new Promise<boolean>((resolve) => {
          const done = (ok: boolean) => {
            socket.off('drain', onDrain);
            socket.off('close', onClose);
            resolve(ok);
          };
          const onDrain = () => done(true);
          const onClose = () => done(false);
          socket.on('drain', onDrain);
          socket.on('close', onClose);
        });
        if (!drained) return;
      }
    }
    if (!socket.destroyed) this.stats.floodsFinished++;
  }

  private onMessage(m: WireMessage, send: (buf: Buffer) => void): void {
    if (m.type !== 'request') return;
    this.stats.requests++;
    if (this.o.behaviour === 'stall') return;
    if (this.o.behaviour === 'wrong-length') {
      void this.block(m, false).then((block) => {
        if (!block) return;
        const half = block.subarray(0, Math.max(1, block.length >> 1));
        send(Buffer.concat([encodePieceHeader(m.index, m.begin, half.length), half]));
        this.stats.blocksSent++;
      });
      return;
    }
    if (this.o.behaviour === 'bad-index') {
      send(encodeMessage({ type: 'piece', index: this.o.pieceCount + 7, begin: m.begin, block: randomBytes(m.length) }));
      this.stats.blocksSent++;
      return;
    }
    if (this.o.behaviour !== 'flip-bytes') return;
    void this.block(m, true).then((block) => {
      if (!block) return;
      send(Buffer.concat([encodePieceHeader(m.index, m.begin, block.length), block]));
      this.stats.blocksSent++;
    });
  }

  private async block(r: BlockRef, invert: boolean): Promise<Buffer | undefined> {
    if (!this.content) return undefined;
    const block = Buffer.alloc(r.length);
    // Closed under a late request while the test tears down: nothing to send.
    const read = await this.content.read(block, 0, r.length, r.index * this.o.pieceLength + r.begin).catch(() => undefined);
    if (!read) return undefined;
    const { bytesRead } = read;
    if (invert) for (let i = 0; i < bytesRead; i++) block[i] = ~block[i]! & 0xff;
    return block.subarray(0, bytesRead);
  }
}

const peerIds = new WeakMap<Socket, string>();

function fullBitfield(pieceCount: number): Buffer {
  const bytes = Buffer.alloc(Math.ceil(pieceCount / 8), 0xff);
  const spare = bytes.length * 8 - pieceCount;
  if (spare > 0) bytes[bytes.length - 1] = (0xff << spare) & 0xff;
  return bytes;
}
