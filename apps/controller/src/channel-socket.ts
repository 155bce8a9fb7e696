import { JsonSocket } from '@nestjs/microservices';
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';

/**
 * The largest agent-channel frame the controller reads, in characters of JSON (the
 * transport counts UTF-16 units). A sync carries at most 10,000 holdings of a few hundred
 * characters each, so a real agent stays far below it.
 */
export const MAX_CHANNEL_FRAME_CHARS = 8 * 1024 * 1024;
/**
 * The largest frame an agent reads from the controller. A sync answer lists every
 * release the agent should hold, each with its torrent (about 55 KB for the 2,000 pieces
 * the controller aims at) and up to 64 KiB of metadata, so it may be several times a
 * sync; 32 M characters hold a few hundred releases at their largest.
 */
export const MAX_CONTROLLER_ANSWER_CHARS = 32 * 1024 * 1024;
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
 * Room above the frame limit in the transport's own check, which looks at everything
 * buffered: a whole frame and the start of the next one that came in the same read (up
 * to 64 KiB). `scan` bounds each frame; this only keeps that check from cutting a legal
 * frame followed by another.
 */
const BUFFER_MARGIN_CHARS = 1024 * 1024;

/**
 * The TCP transport's JSON framing (`<length>#<json>`) with bounds checked before
 * anything is buffered: a length header that is not a short decimal number, or that
 * declares more than the frame limit, ends the connection at once. Without it the
 * transport buffers up to 128 M characters from the other end, token or not, before it
 * looks. Framing faults destroy the socket rather than half-close it, so a peer that
 * keeps sending is not read any further. Both ends of the agent channel use it: the
 * controller with MAX_CHANNEL_FRAME_CHARS, agents with ControllerAnswerSocket.
 */
export class BoundedJsonSocket extends JsonSocket {
  private readonly decoder = new StringDecoder('utf8');
  /** Characters of the current frame's body still to come; undefined while reading a header. */
  private bodyLeft: number | undefined;
  private header = '';

  constructor(
    socket: Socket,
    private readonly maxFrameChars = MAX_CHANNEL_FRAME_CHARS,
  ) {
    super(socket, {
      maxBufferSize: maxFrameChars + MAX_HEADER_CHARS + 1 + BUFFER_MARGIN_CHARS,
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
        if (declared > this.maxFrameChars) throw new Error(`agent channel: a frame of ${declared} characters is over the limit of ${this.maxFrameChars}`);
        if (declared > 0) this.bodyLeft = declared;
        continue;
      }
      if (c < 0x30 || c > 0x39 || this.header.length >= MAX_HEADER_CHARS) throw new Error('agent channel: a frame header that is not a decimal length');
      this.header += String.fromCharCode(c);
    }
  }
}

/** The agent's end: the transport builds its socket from the class alone, so the limit is fixed here. */
export class ControllerAnswerSocket extends BoundedJsonSocket {
  constructor(socket: Socket) {
    super(socket, MAX_CONTROLLER_ANSWER_CHARS);
  }
}
