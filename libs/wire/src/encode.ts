/**
 * Typed peer-wire messages to bytes. Every function returns a fresh buffer that the
 * caller owns; nothing here keeps state.
 */
import { HANDSHAKE_LENGTH, MessageId, PROTOCOL_NAME, type BlockRef, type Handshake, type WireMessage } from './messages.js';

export { encodeExtensionHandshake, parseExtensionHandshake } from './extension-handshake.js';

const PROTOCOL_NAME_BYTES = Buffer.from(PROTOCOL_NAME, 'latin1');

/** Bytes of one request, cancel or reject message: 4 length + 1 id + 3 × 4. */
const BLOCK_FRAME_LENGTH = 17;
/** Bytes of a piece message before the block: 4 length + 1 id + index + begin. */
export const PIECE_HEADER_LENGTH = 13;

/**
 * Handshake (BEP 3): <pstrlen=19><pstr="BitTorrent protocol"><reserved:8><info_hash:20><peer_id:20>
 */
export function encodeHandshake(h: Handshake): Buffer {
  checkSize('reserved', h.reserved, 8);
  checkSize('infoHash', h.infoHash, 20);
  checkSize('peerId', h.peerId, 20);
  const out = Buffer.allocUnsafe(HANDSHAKE_LENGTH);
  out[0] = PROTOCOL_NAME_BYTES.length;
  PROTOCOL_NAME_BYTES.copy(out, 1);
  h.reserved.copy(out, 20);
  h.infoHash.copy(out, 28);
  h.peerId.copy(out, 48);
  return out;
}

export function encodeMessage(msg: WireMessage): Buffer {
  switch (msg.type) {
    /** Message "keep-alive": <len=0000> */
    case 'keep-alive':
      return Buffer.alloc(4);
    /** Message "choke": <len=0001><id=0> */
    case 'choke':
      return bare(MessageId.choke);
    /** Message "unchoke": <len=0001><id=1> */
    case 'unchoke':
      return bare(MessageId.unchoke);
    /** Message "interested": <len=0001><id=2> */
    case 'interested':
      return bare(MessageId.interested);
    /** Message "not interested": <len=0001><id=3> */
    case 'not-interested':
      return bare(MessageId.notInterested);
    /** Message "have": <len=0005><id=4><piece index> */
    case 'have':
      return withIndex(MessageId.have, msg.index);
    /** Message "bitfield": <len=0001+X><id=5><bitfield>, high bit of the first byte is piece 0 */
    case 'bitfield':
      return withPayload(MessageId.bitfield, msg.bitfield);
    /** Message "request": <len=0013><id=6><index><begin><length> */
    case 'request':
      return withBlock(MessageId.request, msg);
    /** Message "piece": <len=0009+X><id=7><index><begin><block> */
    case 'piece': {
      const out = Buffer.allocUnsafe(PIECE_HEADER_LENGTH + msg.block.length);
      writePieceHeader(out, msg.index, msg.begin, msg.block.length);
      msg.block.copy(out, PIECE_HEADER_LENGTH);
      return out;
    }
    /** Message "cancel": <len=0013><id=8><index><begin><length> */
    case 'cancel':
      return withBlock(MessageId.cancel, msg);
    /** Message "port" (BEP 5): <len=0003><id=9><listen-port:2> */
    case 'port': {
      const out = Buffer.allocUnsafe(7);
      out.writeUInt32BE(3, 0);
      out[4] = MessageId.port;
      out.writeUInt16BE(msg.port, 5);
      return out;
    }
    /** Message "suggest piece" (BEP 6): <len=0005><id=13><piece index> */
    case 'suggest':
      return withIndex(MessageId.suggest, msg.index);
    /** Message "have all" (BEP 6): <len=0001><id=14> */
    case 'have-all':
      return bare(MessageId.haveAll);
    /** Message "have none" (BEP 6): <len=0001><id=15> */
    case 'have-none':
      return bare(MessageId.haveNone);
    /** Message "reject request" (BEP 6): <len=0013><id=16><index><begin><length> */
    case 'reject':
      return withBlock(MessageId.reject, msg);
    /** Message "allowed fast" (BEP 6): <len=0005><id=17><piece index> */
    case 'allowed-fast':
      return withIndex(MessageId.allowedFast, msg.index);
    /** Message "extended" (BEP 10): <len=0002+X><id=20><extended id><payload> */
    case 'extended': {
      const out = Buffer.allocUnsafe(6 + msg.payload.length);
      out.writeUInt32BE(2 + msg.payload.length, 0);
      out[4] = MessageId.extended;
      out.writeUInt8(msg.id, 5);
      msg.payload.copy(out, 6);
      return out;
    }
    /** Any other id, written back as received: <len=0001+X><id><payload> */
    case 'unknown':
      return withPayload(msg.id, msg.payload);
    default:
      return assertUnreachable(msg);
  }
}

/**
 * The 13 bytes in front of a block: <len=0009+X><id=7><index><begin>. The block itself
 * is handed to the socket as a second buffer (writev), so payload is never copied to
 * frame it.
 */
export function encodePieceHeader(index: number, begin: number, blockLength: number): Buffer {
  const out = Buffer.allocUnsafe(PIECE_HEADER_LENGTH);
  writePieceHeader(out, index, begin, blockLength);
  return out;
}

/** A pipeline of request messages (each <len=0013><id=6><index><begin><length>) in one write. */
export function encodeRequests(blocks: readonly BlockRef[]): Buffer {
  const out = Buffer.allocUnsafe(blocks.length * BLOCK_FRAME_LENGTH);
  let offset = 0;
  for (const b of blocks) {
    writeBlockFrame(out, offset, MessageId.request, b);
    offset += BLOCK_FRAME_LENGTH;
  }
  return out;
}

/** HAVE messages (each <len=0005><id=4><index>) for several pieces in one write. */
export function encodeHaves(indices: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(indices.length * 9);
  for (let i = 0; i < indices.length; i++) {
    out.writeUInt32BE(5, i * 9);
    out[i * 9 + 4] = MessageId.have;
    out.writeUInt32BE(indices[i]!, i * 9 + 5);
  }
  return out;
}

function bare(id: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out.writeUInt32BE(1, 0);
  out[4] = id;
  return out;
}

function withIndex(id: number, index: number): Buffer {
  const out = Buffer.allocUnsafe(9);
  out.writeUInt32BE(5, 0);
  out[4] = id;
  out.writeUInt32BE(index, 5);
  return out;
}

function withPayload(id: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out.writeUInt8(id, 4);
  payload.copy(out, 5);
  return out;
}

function withBlock(id: number, b: BlockRef): Buffer {
  const out = Buffer.allocUnsafe(BLOCK_FRAME_LENGTH);
  writeBlockFrame(out, 0, id, b);
  return out;
}

function writeBlockFrame(out: Buffer, offset: number, id: number, b: BlockRef): void {
  out.writeUInt32BE(13, offset);
  out[offset + 4] = id;
  out.writeUInt32BE(b.index, offset + 5);
  out.writeUInt32BE(b.begin, offset + 9);
  out.writeUInt32BE(b.length, offset + 13);
}

function writePieceHeader(out: Buffer, index: number, begin: number, blockLength: number): void {
  out.writeUInt32BE(9 + blockLength, 0);
  out[4] = MessageId.piece;
  out.writeUInt32BE(index, 5);
  out.writeUInt32BE(begin, 9);
}

function checkSize(field: string, value: Buffer, size: number): void {
  if (value.length !== size) throw new RangeError(`handshake ${field} must be ${size} bytes, got ${value.length}`);
}

function assertUnreachable(value: never): never {
  throw new TypeError(`unknown wire message type: ${JSON.stringify(value)}`);
}
