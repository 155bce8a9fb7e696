/**
 * The peer-wire messages (BEP 3), the fast extension (BEP 6) and the extension
 * protocol (BEP 10), as typed values. The codec turns bytes into these and back.
 */

export const PROTOCOL_NAME = 'BitTorrent protocol';
export const HANDSHAKE_LENGTH = 68;
export const BLOCK_LENGTH = 16 * 1024;

/** Message ids on the wire. */
export const MessageId = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  notInterested: 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  port: 9,
  suggest: 0x0d,
  haveAll: 0x0e,
  haveNone: 0x0f,
  reject: 0x10,
  allowedFast: 0x11,
  extended: 20,
} as const;

/** Reserved-bit helpers: byte 5 bit 0x10 is BEP 10, byte 7 bit 0x04 is BEP 6, byte 7 bit 0x01 is DHT. */
export const Reserved = {
  extensionProtocol: { byte: 5, mask: 0x10 },
  fastExtension: { byte: 7, mask: 0x04 },
  dht: { byte: 7, mask: 0x01 },
} as const;

export interface Handshake {
  /** 8 bytes. */
  reserved: Buffer;
  /** 20 bytes. */
  infoHash: Buffer;
  /** 20 bytes. */
  peerId: Buffer;
}

export interface BlockRef {
  index: number;
  begin: number;
  length: number;
}

export type WireMessage =
  | { type: 'keep-alive' }
  | { type: 'choke' }
  | { type: 'unchoke' }
  | { type: 'interested' }
  | { type: 'not-interested' }
  | { type: 'have'; index: number }
  | { type: 'bitfield'; bitfield: Buffer }
  | ({ type: 'request' } & BlockRef)
  /** `block` may be a view into the received chunk: when the decoder runs with `reusesChunks`, copy it before the callback returns if you keep it. */
  | { type: 'piece'; index: number; begin: number; block: Buffer }
  | ({ type: 'cancel' } & BlockRef)
  | { type: 'port'; port: number }
  | { type: 'suggest'; index: number }
  | { type: 'have-all' }
  | { type: 'have-none' }
  | ({ type: 'reject' } & BlockRef)
  | { type: 'allowed-fast'; index: number }
  /** BEP 10: id 0 is the extension handshake; `payload` is the raw bytes after the id. */
  | { type: 'extended'; id: number; payload: Buffer }
  /** An id this codec does not know: BEP 3 says to ignore it, so it is surfaced, not refused. */
  | { type: 'unknown'; id: number; payload: Buffer };

export type WireMessageType = WireMessage['type'];

/** BEP 10 extension handshake (the bencoded dictionary of extended message 0). */
export interface ExtensionHandshake {
  /** Extension name → local message id (0 disables). */
  m: Record<string, number>;
  /** Client name and version. */
  v?: string;
  /** Listening TCP port. */
  p?: number;
  /** How many outstanding requests this side accepts. */
  reqq?: number;
  /** The address the other side is seen from (4 or 16 bytes). */
  yourip?: Buffer;
  metadata_size?: number;
}

/** Why the decoder refused the peer. The connection must be closed. */
export type ProtocolErrorCode =
  | 'bad-handshake'
  | 'message-too-long'
  | 'bad-length'
  | 'bad-index'
  | 'bad-bitfield'
  | 'request-too-long'
  | 'bad-extension-handshake'
  /** A decoder callback threw (or the decoder has a bug); `cause` holds what was thrown. */
  | 'internal';

export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
