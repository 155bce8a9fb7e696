/**
 * Streaming peer-wire decoder: chunks as they come off a socket in, typed messages out.
 *
 * The state is only "which frame part comes next and how long it is". A frame that lies
 * wholly inside one chunk is parsed in place, and a piece's block is a view of that
 * chunk. A frame split across chunks has its parts kept in a list and joined once, when
 * the last byte arrives, into a buffer of exactly the frame's size; the declared length
 * is never allocated ahead of the bytes, so a peer cannot make us reserve memory by
 * announcing a big message.
 */
import { HANDSHAKE_LENGTH, MessageId, PROTOCOL_NAME, ProtocolError, type Handshake, type WireMessage } from './messages.js';

export interface WireDecoderOptions {
  /** Default true: the first 68 bytes are a handshake. */
  expectHandshake?: boolean;
  /** Default 1 MiB + 13: the largest frame accepted (length prefix excluded). */
  maxMessageLength?: number;
  /** Default 16 KiB: a request, cancel or reject asking for more is refused. */
  maxRequestLength?: number;
  /** When known: piece indexes must be below it and a bitfield must be exactly ceil(n/8) bytes, spare bits zero. */
  pieceCount?: number;
  /**
   * Messages are used or copied inside the callback, never kept: the caller may reuse
   * each chunk's memory once push() returns (a socket reading into one fixed buffer), and
   * the decoder reuses its own. Bytes of a frame split across chunks are then copied when
   * kept; a split frame of up to a block's size is assembled in one buffer per decoder,
   * so the common case (a block cut between two reads) allocates nothing and keeps no
   * read's memory alive past its read.
   */
  reusesChunks?: boolean;
}

export interface WireDecoderSink {
  onHandshake(h: Handshake): void;
  onMessage(m: WireMessage): void;
  /** Called once; after it the decoder ignores all further input. */
  onError(e: ProtocolError): void;
}

export const DEFAULT_MAX_MESSAGE_LENGTH = 1024 * 1024 + 13;
export const DEFAULT_MAX_REQUEST_LENGTH = 16 * 1024;

/** Split frames up to this size (a 16 KiB block's piece frame, and every control message) share one buffer. */
const ASSEMBLY_BYTES = 16 * 1024 + 16;

const STAGE_HANDSHAKE = 0;
const STAGE_LENGTH = 1;
const STAGE_BODY = 2;

/** The first 20 handshake bytes are fixed: <pstrlen=19><pstr="BitTorrent protocol">. */
const HANDSHAKE_PREFIX = Buffer.concat([Buffer.from([PROTOCOL_NAME.length]), Buffer.from(PROTOCOL_NAME, 'latin1')]);

// Messages without fields are the same every time; sharing frozen instances keeps the
// hot loop from allocating for them.
const KEEP_ALIVE: WireMessage = Object.freeze({ type: 'keep-alive' });
const CHOKE: WireMessage = Object.freeze({ type: 'choke' });
const UNCHOKE: WireMessage = Object.freeze({ type: 'unchoke' });
const INTERESTED: WireMessage = Object.freeze({ type: 'interested' });
const NOT_INTERESTED: WireMessage = Object.freeze({ type: 'not-interested' });
const HAVE_ALL: WireMessage = Object.freeze({ type: 'have-all' });
const HAVE_NONE: WireMessage = Object.freeze({ type: 'have-none' });

export class WireDecoder {
  private readonly sink: WireDecoderSink;
  private readonly maxMessageLength: number;
  private readonly maxRequestLength: number;
  private pieceCount: number | undefined;
  private readonly reusesChunks: boolean;

  private stage: number;
  /** Length-prefix bytes seen so far when the prefix is split across chunks (0..3). */
  private lengthBytesSeen = 0;
  private partialLength = 0;
  /** Length of the frame body now being collected (id + payload). */
  private bodyLength = 0;
  /** Pieces of a frame (or handshake) split across chunks, joined once it is complete. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** With reusesChunks: where a split frame of at most ASSEMBLY_BYTES is put together. */
  private assembly: Buffer | undefined;
  private assembling = false;

  private isFailed = false;
  private draining = false;
  /** Chunks pushed from inside a callback, decoded after the current one so order holds. */
  private reentrant: Buffer[] | undefined;

  constructor(sink: WireDecoderSink, options: WireDecoderOptions = {}) {
    this.sink = sink;
    this.maxMessageLength = positiveInteger('maxMessageLength', options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH);
    this.maxRequestLength = positiveInteger('maxRequestLength', options.maxRequestLength ?? DEFAULT_MAX_REQUEST_LENGTH);
    if (options.pieceCount !== undefined) this.setPieceCount(options.pieceCount);
    this.stage = options.expectHandshake === false ? STAGE_LENGTH : STAGE_HANDSHAKE;
    this.reusesChunks = options.reusesChunks === true;
  }

  get failed(): boolean {
    return this.isFailed;
  }

  /** Bytes received but not yet delivered as a handshake or message, length prefix included. */
  get bufferedBytes(): number {
    return this.partsBytes + this.lengthBytesSeen + (this.stage === STAGE_BODY && !this.isFailed ? 4 : 0);
  }

  /** Takes effect for the next frame checked, including frames later in the chunk being decoded. */
  setPieceCount(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`pieceCount must be a non-negative integer, got ${n}`);
    this.pieceCount = n;
  }

  /** Never throws: anything wrong, including a callback that throws, ends in one onError. */
  push(chunk: Buffer): void {
    if (this.isFailed) return;
    if (this.draining) {
      (this.reentrant ??= []).push(chunk);
      return;
    }
    this.draining = true;
    try {
      this.consume(chunk);
      if (this.reentrant !== undefined) {
        for (let next = this.reentrant.shift(); next !== undefined && !this.isFailed; next = this.reentrant.shift()) {
          this.consume(next);
        }
      }
    } catch (err) {
      this.fail(
        err instanceof ProtocolError
          ? err
          : new ProtocolError('internal', `wire decoder stopped: ${err instanceof Error ? err.message : String(err)}`, { cause: err }),
      );
    } finally {
      this.draining = false;
      this.reentrant = undefined;
    }
  }

  private consume(chunk: Buffer): void {
    const end = chunk.length;
    let off = 0;
    while (off < end && !this.isFailed) {
      if (this.stage === STAGE_LENGTH) {
        if (this.lengthBytesSeen === 0 && end - off >= 4) {
          const length = chunk.readUInt32BE(off);
          off += 4;
          if (length === 0) {
            this.sink.onMessage(KEEP_ALIVE);
          } else if (length > this.maxMessageLength) {
            this.fail(tooLong(length, this.maxMessageLength));
          } else if (end - off >= length) {
            this.frame(chunk, off, length);
            off += length;
          } else {
            this.bodyLength = length;
            this.stage = STAGE_BODY;
          }
        } else {
          this.partialLength = this.partialLength * 256 + chunk[off++]!;
          if (++this.lengthBytesSeen === 4) {
            const length = this.partialLength;
            this.lengthBytesSeen = 0;
            this.partialLength = 0;
            if (length === 0) {
              this.sink.onMessage(KEEP_ALIVE);
            } else if (length > this.maxMessageLength) {
              this.fail(tooLong(length, this.maxMessageLength));
            } else {
              this.bodyLength = length;
              this.stage = STAGE_BODY;
            }
          }
        }
      } else if (this.stage === STAGE_BODY) {
        const wanted = this.bodyLength - this.partsBytes;
        if (this.partsBytes === 0) {
          // The id is here now: a frame whose length cannot fit its id is refused before
          // the rest of it is waited for.
          const error = this.checkFrameLength(chunk[off]!, this.bodyLength);
          if (error !== undefined) {
            this.fail(error);
            return;
          }
        }
        const take = Math.min(wanted, end - off);
        if (this.reusesChunks && this.bodyLength <= ASSEMBLY_BYTES && !(take === wanted && this.partsBytes === 0)) {
          this.assembly ??= Buffer.allocUnsafeSlow(ASSEMBLY_BYTES);
          chunk.copy(this.assembly, this.partsBytes, off, off + take);
          this.assembling = true;
        } else {
          this.keep(chunk.subarray(off, off + take), take === wanted);
        }
        this.partsBytes += take;
        off += take;
        if (take === wanted) {
          const body = this.takeParts(this.bodyLength);
          this.stage = STAGE_LENGTH;
          this.frame(body, 0, body.length);
        }
      } else if (this.partsBytes === 0 && end - off >= HANDSHAKE_LENGTH) {
        this.stage = STAGE_LENGTH;
        this.handshake(chunk, off);
        off += HANDSHAKE_LENGTH;
      } else {
        const take = Math.min(HANDSHAKE_LENGTH - this.partsBytes, end - off);
        // Check the fixed prefix as it arrives, so a peer speaking another protocol is
        // refused at its first wrong byte.
        for (let i = 0; i < take && this.partsBytes + i < HANDSHAKE_PREFIX.length; i++) {
          if (chunk[off + i] !== HANDSHAKE_PREFIX[this.partsBytes + i]) {
            this.fail(badHandshake());
            return;
          }
        }
        this.keep(chunk.subarray(off, off + take), this.partsBytes + take === HANDSHAKE_LENGTH);
        this.partsBytes += take;
        off += take;
        if (this.partsBytes === HANDSHAKE_LENGTH) {
          this.stage = STAGE_LENGTH;
          this.handshake(this.takeParts(HANDSHAKE_LENGTH), 0);
        }
      }
    }
  }

  /** Keeps part of a split frame; a part used before push() returns needs no copy. */
  private keep(part: Buffer, usedNow: boolean): void {
    this.parts.push(this.reusesChunks && !usedNow ? Buffer.from(part) : part);
  }

  private takeParts(length: number): Buffer {
    let joined: Buffer;
    if (this.assembling) {
      joined = this.assembly!.subarray(0, length);
      this.assembling = false;
    } else {
      joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, length);
    }
    this.parts = [];
    this.partsBytes = 0;
    return joined;
  }

  private handshake(buf: Buffer, off: number): void {
    if (buf.compare(HANDSHAKE_PREFIX, 0, HANDSHAKE_PREFIX.length, off, off + HANDSHAKE_PREFIX.length) !== 0) {
      this.fail(badHandshake());
      return;
    }
    // Copies: these outlive the chunk for the whole connection, and 48 bytes should not
    // keep a 64 KiB socket chunk alive.
    this.sink.onHandshake({
      reserved: Buffer.from(buf.subarray(off + 20, off + 28)),
      infoHash: Buffer.from(buf.subarray(off + 28, off + 48)),
      peerId: Buffer.from(buf.subarray(off + 48, off + 68)),
    });
  }

  /**
   * One frame body (id + payload) of `length` bytes at `off`. Payload buffers are views
   * of `buf`, which the decoder never reuses or writes to.
   */
  private frame(buf: Buffer, off: number, length: number): void {
    const id = buf[off]!;
    const lengthError = this.checkFrameLength(id, length);
    if (lengthError !== undefined) {
      this.fail(lengthError);
      return;
    }
    const sink = this.sink;
    switch (id) {
      case MessageId.piece: {
        const index = buf.readUInt32BE(off + 1);
        if (!this.checkIndex(index)) return;
        sink.onMessage({ type: 'piece', index, begin: buf.readUInt32BE(off + 5), block: buf.subarray(off + 9, off + length) });
        return;
      }
      case MessageId.request:
      case MessageId.cancel:
      case MessageId.reject: {
        const index = buf.readUInt32BE(off + 1);
        const begin = buf.readUInt32BE(off + 5);
        const blockLength = buf.readUInt32BE(off + 9);
        if (!this.checkIndex(index)) return;
        if (blockLength > this.maxRequestLength) {
          this.fail(new ProtocolError('request-too-long', `block of ${blockLength} bytes asked for, at most ${this.maxRequestLength} allowed`));
          return;
        }
        const type = id === MessageId.request ? 'request' : id === MessageId.cancel ? 'cancel' : 'reject';
        sink.onMessage({ type, index, begin, length: blockLength });
        return;
      }
      case MessageId.have:
      case MessageId.suggest:
      case MessageId.allowedFast: {
        const index = buf.readUInt32BE(off + 1);
        if (!this.checkIndex(index)) return;
        const type = id === MessageId.have ? 'have' : id === MessageId.suggest ? 'suggest' : 'allowed-fast';
        sink.onMessage({ type, index });
        return;
      }
      case MessageId.choke:
        sink.onMessage(CHOKE);
        return;
      case MessageId.unchoke:
        sink.onMessage(UNCHOKE);
        return;
      case MessageId.interested:
        sink.onMessage(INTERESTED);
        return;
      case MessageId.notInterested:
        sink.onMessage(NOT_INTERESTED);
        return;
      case MessageId.haveAll:
        sink.onMessage(HAVE_ALL);
        return;
      case MessageId.haveNone:
        sink.onMessage(HAVE_NONE);
        return;
      case MessageId.bitfield: {
        const bitfield = buf.subarray(off + 1, off + length);
        if (this.pieceCount !== undefined && !spareBitsClear(bitfield, this.pieceCount)) {
          this.fail(new ProtocolError('bad-bitfield', `bitfield has bits set beyond piece ${this.pieceCount - 1}`));
          return;
        }
        sink.onMessage({ type: 'bitfield', bitfield });
        return;
      }
      case MessageId.port:
        sink.onMessage({ type: 'port', port: buf.readUInt16BE(off + 1) });
        return;
      case MessageId.extended:
        sink.onMessage({ type: 'extended', id: buf[off + 1]!, payload: buf.subarray(off + 2, off + length) });
        return;
      default:
        sink.onMessage({ type: 'unknown', id, payload: buf.subarray(off + 1, off + length) });
    }
  }

  /** Whether a frame with this id may be `length` bytes long (id included). */
  private checkFrameLength(id: number, length: number): ProtocolError | undefined {
    let expected: number;
    switch (id) {
      case MessageId.choke:
      case MessageId.unchoke:
      case MessageId.interested:
      case MessageId.notInterested:
      case MessageId.haveAll:
      case MessageId.haveNone:
        expected = 1;
        break;
      case MessageId.have:
      case MessageId.suggest:
      case MessageId.allowedFast:
        expected = 5;
        break;
      case MessageId.request:
      case MessageId.cancel:
      case MessageId.reject:
        expected = 13;
        break;
      case MessageId.port:
        expected = 3;
        break;
      case MessageId.piece:
        return length >= 9 ? undefined : badLength(id, length, 'at least 9');
      case MessageId.extended:
        return length >= 2 ? undefined : badLength(id, length, 'at least 2');
      case MessageId.bitfield: {
        if (this.pieceCount === undefined) return undefined;
        const bytes = Math.ceil(this.pieceCount / 8);
        return length === bytes + 1
          ? undefined
          : new ProtocolError('bad-bitfield', `bitfield of ${length - 1} bytes for ${this.pieceCount} pieces, expected ${bytes}`);
      }
      default:
        return undefined;
    }
    return length === expected ? undefined : badLength(id, length, String(expected));
  }

  private checkIndex(index: number): boolean {
    if (this.pieceCount === undefined || index < this.pieceCount) return true;
    this.fail(new ProtocolError('bad-index', `piece index ${index} out of range, the torrent has ${this.pieceCount} pieces`));
    return false;
  }

  private fail(error: ProtocolError): void {
    if (this.isFailed) return;
    this.isFailed = true;
    this.parts = [];
    this.partsBytes = 0;
    this.lengthBytesSeen = 0;
    try {
      this.sink.onError(error);
    } catch {
      // The decoder is already stopped and push must not throw; a failing error
      // handler has nothing left to be told.
    }
  }
}

/** The bits past the last piece are padding and must be zero (BEP 3). */
function spareBitsClear(bitfield: Buffer, pieceCount: number): boolean {
  const spare = bitfield.length * 8 - pieceCount;
  if (spare <= 0) return true;
  return (bitfield[bitfield.length - 1]! & ((1 << spare) - 1)) === 0;
}

function tooLong(length: number, max: number): ProtocolError {
  return new ProtocolError('message-too-long', `message of ${length} bytes announced, at most ${max} accepted`);
}

function badLength(id: number, length: number, expected: string): ProtocolError {
  return new ProtocolError('bad-length', `message id ${id} with length ${length}, expected ${expected}`);
}

function badHandshake(): ProtocolError {
  return new ProtocolError('bad-handshake', `handshake is not <19>"${PROTOCOL_NAME}"`);
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
