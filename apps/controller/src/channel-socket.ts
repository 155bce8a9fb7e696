import { JsonSocket } from '@nestjs/microservices';
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';

/**
 * The largest agent-channel frame the controller reads, in characters of JSON (the
 * transport counts UTF-16 units). A sync carries at most 10,000 holdings of a few hundred
 * characters each, so a real agent stays far below it.
 */
export const MAX_CHANNEL_FRAME_CHARS = 8 * 1024 * 1024;
/** A frame started and not finished within this long is dropped with its connection. */
export const CHANNEL_INCOMPLETE_FRAME_MS = 10_000;
/**
 * A connection with no traffic either way for this long is closed. An agent's sync is
 * held at most 25 s and its backoff is at most 30 s, so a live agent is never this quiet.
 */
export const CHANNEL_IDLE_MS = 120_000;
/** Answers queued for a client that does not read them. */
const MAX_SEND_BUFFER_BYTES = 64 * 1024 * 1024;
/** "<length>#": a length of up to 10 digits. */
const MAX_HEADER_CHARS = 10;

/**
 * The TCP transport's JSON framing (`<length>#<json>`) with bounds checked before
 * anything is buffered: a length header that is not a short decimal number, or that
 * declares more than MAX_CHANNEL_FRAME_CHARS, ends the connection at once. Without it
 * the transport buffers up to 128 M characters from any client, token or not, before it
 * looks. Framing faults destroy the socket rather than half-close it, so a client that
 * keeps sending is not read any further.
 */
export class BoundedJsonSocket extends JsonSocket {
  private readonly decoder = new StringDecoder('utf8');
  /** Characters of the current frame's body still to come; undefined while reading a header. */
  private bodyLeft: number | undefined;
  private header = '';

  constructor(socket: Socket) {
    super(socket, {
      maxBufferSize: MAX_CHANNEL_FRAME_CHARS + MAX_HEADER_CHARS + 1,
      incompleteMessageTimeout: CHANNEL_INCOMPLETE_FRAME_MS,
      maxSendBufferSize: MAX_SEND_BUFFER_BYTES,
    });
    socket.setTimeout(CHANNEL_IDLE_MS);
    socket.on('timeout', () => socket.destroy());
  }

  protected override handleData(dataRaw: Buffer | string): void {
    const text = typeof dataRaw === 'string' ? dataRaw : this.decoder.write(dataRaw);
    this.scan(text);
    super.handleData(text);
  }

  protected override handleDataError(e: unknown): void {
    super.handleDataError(e, { destroy: true });
  }

  /** Follows frame boundaries through `text`, throwing at the first bad or oversized header. */
  private scan(text: string): void {
    let i = 0;
    while (i < text.length) {
      if (this.bodyLeft !== undefined) {
        const n = Math.min(this.bodyLeft, text.length - i);
        i += n;
        this.bodyLeft -= n;
        if (this.bodyLeft === 0) this.bodyLeft = undefined;
        continue;
      }
      const c = text.charCodeAt(i++);
      if (c === 0x23 /* # */) {
        const declared = this.header === '' ? NaN : Number(this.header);
        this.header = '';
        if (!Number.isSafeInteger(declared)) throw new Error('agent channel: a frame without a length');
        if (declared > MAX_CHANNEL_FRAME_CHARS) throw new Error(`agent channel: a frame of ${declared} characters is over the limit of ${MAX_CHANNEL_FRAME_CHARS}`);
        if (declared > 0) this.bodyLeft = declared;
        continue;
      }
      if (c < 0x30 || c > 0x39 || this.header.length >= MAX_HEADER_CHARS) throw new Error('agent channel: a frame header that is not a decimal length');
      this.header += String.fromCharCode(c);
    }
  }
}
