import { connect, Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import { WireDecoder, type WireDecoderSink } from '../../wire/src/decode.js';
import { encodeHandshake, encodeHaves, encodeMessage, encodePieceHeader, encodeRequests } from '../../wire/src/encode.js';
import type { RateGate } from './token-bucket.js';
import { Reserved, type BlockRef, type Handshake, type ProtocolError, type WireMessage } from '../../wire/src/messages.js';

/** Per dialled connection: big enough that most 16 KiB blocks arrive whole in one read. */
const READ_BUFFER_BYTES = 256 * 1024;

/** Our reserved bits: the fast extension (BEP 6) and the extension protocol (BEP 10). */
export function ourReservedBits(): Buffer {
  const reserved = Buffer.alloc(8);
  reserved[Reserved.extensionProtocol.byte]! |= Reserved.extensionProtocol.mask;
  reserved[Reserved.fastExtension.byte]! |= Reserved.fastExtension.mask;
  return reserved;
}

export interface ConnectionHandler {
  onHandshake(conn: PeerConnection, h: Handshake): void;
  onMessage(conn: PeerConnection, m: WireMessage): void;
  onProtocolError(conn: PeerConnection, e: ProtocolError): void;
  onClose(conn: PeerConnection, err: Error | undefined): void;
  onDrain(conn: PeerConnection): void;
  /** Every message of one received chunk has been handled: a good time to batch replies. */
  onChunkDone(conn: PeerConnection): void;
}

/**
 * A socket with the wire codec on it: frames out, typed messages in, and the byte
 * counts. It holds no BitTorrent policy; its handler (the torrent, or the engine while
 * the info hash is unknown) decides everything.
 */
export class PeerConnection implements WireDecoderSink {
  readonly decoder: WireDecoder;
  handler: ConnectionHandler;
  remoteHandshake: Handshake | undefined;
  bytesIn = 0;
  bytesOut = 0;
  lastReceivedAt: number;
  lastSentAt: number;
  closed = false;
  /** The peer-book entry this connection was dialled from, if any. */
  bookKey: string | undefined;
  /** Download rate limit: reading pauses until the gate lets the bytes through. */
  readGate: RateGate | undefined;
  private handshakeSent = false;

  /**
   * Dials a peer. The socket reads into one buffer of its own, reused for every read:
   * a fresh 64 KiB allocation per read (Node's default) cost a leecher page faults and
   * garbage collection on every chunk.
   */
  static dial(host: string, port: number, handler: ConnectionHandler, now: () => number): PeerConnection {
    // The socket exists before the connection object that its reads feed.
    const ref: { conn?: PeerConnection } = {};
    const socket = connect({ host, port, onread: PeerConnection.ownReadBuffer(ref) });
    ref.conn = new PeerConnection(socket, handler, true, now, { readsIntoOwnBuffer: true });
    return ref.conn;
  }

  /**
   * Takes a connection accepted by a net.Server made with `pauseOnConnect: true`, and
   * makes it read into a buffer of its own as dialled ones do. net.Server has no option
   * for that, so the accepted socket's handle moves to a new Socket made with `onread`
   * (the undocumented `handle` option, which net.Server itself uses to make the socket).
   * Worth it: with a fresh allocation per read, an agent fed mostly through incoming
   * connections ran 8-15 full garbage collections per 256 MiB instead of 1-4, and
   * spent 16 % more CPU (3 loopback agents). Where a Node release no longer allows the
   * move, the accepted socket is used as it is.
   */
  static accept(accepted: Socket, handler: ConnectionHandler, now: () => number): PeerConnection {
    const ref: { conn?: PeerConnection } = {};
    const handle = (accepted as unknown as { _handle?: object | null })._handle;
    let socket: Socket | undefined;
    if (handle) {
      try {
        socket = new Socket({ handle, readable: true, writable: true, onread: PeerConnection.ownReadBuffer(ref) } as SocketConstructorOpts);
      } catch {
        socket = undefined;
      }
    }
    if (!socket) {
      accepted.resume();
      return new PeerConnection(accepted, handler, false, now);
    }
    // The old socket no longer owns the handle; destroying it once the new one closes
    // keeps the server's count of connections right (server.close() waits for it).
    (accepted as unknown as { _handle: object | null })._handle = null;
    socket.once('close', () => accepted.destroy());
    ref.conn = new PeerConnection(socket, handler, false, now, { readsIntoOwnBuffer: true });
    return ref.conn;
  }

  /** Socket `onread` options: reads go into one buffer, reused, and straight to the connection. */
  private static ownReadBuffer(ref: { conn?: PeerConnection }): OnReadOpts {
    return {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (n: number, buf: Uint8Array) => {
        ref.conn?.received(Buffer.from(buf.buffer, buf.byteOffset, n));
        return true;
      },
    };
  }

  /** True when reads land in this connection's own buffer, not a fresh allocation each. */
  readonly readsIntoOwnBuffer: boolean;

  constructor(
    readonly socket: Socket,
    handler: ConnectionHandler,
    readonly outgoing: boolean,
    private readonly now: () => number,
    { readsIntoOwnBuffer = false } = {},
  ) {
    this.handler = handler;
    this.readsIntoOwnBuffer = readsIntoOwnBuffer;
    // Handlers use each message inside the callback (a block is copied into its piece at
    // once), so the decoder may reuse memory on every connection: a block split between
    // two reads is then assembled in place, not in a fresh allocation that keeps the
    // whole 64 KiB read alive until the garbage collector gets to it.
    this.decoder = new WireDecoder(this, { expectHandshake: true, reusesChunks: true });
    this.lastReceivedAt = this.lastSentAt = now();
    socket.setNoDelay(true);
    if (!readsIntoOwnBuffer) socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('drain', () => this.handler.onDrain(this));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy(undefined));
  }

  private received(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.lastReceivedAt = this.now();
    if (this.readGate && !this.readGate.takeSync(chunk.length)) {
      // The bytes are here already; pausing makes TCP push back on the sender.
      this.socket.pause();
      this.readGate.take(chunk.length, () => this.socket.resume());
    }
    // Whatever handling this chunk sends this peer (blocks for its requests, our own
    // requests, HAVEs) leaves in one write when it is done, not one write per message.
    this.socket.cork();
    try {
      this.decoder.push(chunk);
      if (!this.closed) this.handler.onChunkDone(this);
    } finally {
      this.socket.uncork();
    }
  }

  /** Holds writes until the matching uncork(), which sends them together (calls nest). */
  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '?';
  }

  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  get supportsFast(): boolean {
    const r = this.remoteHandshake?.reserved;
    return !!r && (r[Reserved.fastExtension.byte]! & Reserved.fastExtension.mask) !== 0;
  }

  get supportsExtensions(): boolean {
    const r = this.remoteHandshake?.reserved;
    return !!r && (r[Reserved.extensionProtocol.byte]! & Reserved.extensionProtocol.mask) !== 0;
  }

  /** Bytes queued in the socket and not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  onHandshake(h: Handshake): void {
    this.remoteHandshake = h;
    this.handler.onHandshake(this, h);
  }

  onMessage(m: WireMessage): void {
    if (!this.closed) this.handler.onMessage(this, m);
  }

  onError(e: ProtocolError): void {
    this.handler.onProtocolError(this, e);
  }

  sendHandshake(infoHash: Buffer, peerId: Buffer): void {
    if (this.handshakeSent) return;
    this.handshakeSent = true;
    this.write(encodeHandshake({ reserved: ourReservedBits(), infoHash, peerId }));
  }

  send(m: WireMessage): void {
    this.write(encodeMessage(m));
  }

  sendRequests(blocks: readonly BlockRef[]): void {
    if (blocks.length > 0) this.write(encodeRequests(blocks));
  }

  sendHaves(indices: readonly number[]): void {
    if (indices.length > 0) this.write(encodeHaves(indices));
  }

  /** A block goes out as a 13-byte header and the block itself: no copy to frame it. */
  sendPiece(index: number, begin: number, block: Uint8Array, onFlushed?: () => void): void {
    if (this.closed) return;
    this.socket.cork();
    this.socket.write(encodePieceHeader(index, begin, block.byteLength));
    if (onFlushed) this.socket.write(block, () => onFlushed());
    else this.socket.write(block);
    this.socket.uncork();
    this.bytesOut += 13 + block.byteLength;
    this.lastSentAt = this.now();
  }

  private write(buf: Buffer): void {
    if (this.closed) return;
    this.socket.write(buf);
    this.bytesOut += buf.length;
    this.lastSentAt = this.now();
  }

  destroy(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handler.onClose(this, err);
  }
}
