import { badRequest } from './errors.js';

/** One part's headers (RFC 7578): its field name and, for a file, the file name. */
export interface MultipartPart {
  name: string;
  filename: string | undefined;
  contentType: string | undefined;
}

const MAX_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** The boundary of a `multipart/form-data; boundary=…` content type. */
export function multipartBoundary(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw badRequest('Content-Type', 'multipart/form-data needs a boundary parameter');
  return boundary;
}

/**
 * A pull parser for multipart/form-data that streams: a part's body is handed on in
 * chunks as they arrive, with only a delimiter's length held back, so a multi-gigabyte
 * file part never sits in memory. Parts are read in order: `nextPart()`, then `body()`
 * or `text()` for its contents (an unread body is skipped by the next `nextPart()`).
 */
export class MultipartReader {
  /** The stream is treated as if it began with CRLF, so the first delimiter looks like every other. */
  private buf: Buffer = Buffer.from(CRLF);
  private ended = false;
  private state: 'preamble' | 'after-delimiter' | 'body' | 'end' = 'preamble';
  private readonly delimiter: Buffer;

  constructor(
    private readonly source: AsyncIterator<Buffer>,
    boundary: string,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.source.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** The next part's headers, or null after the closing delimiter. */
  async nextPart(): Promise<MultipartPart | null> {
    if (this.state === 'body') for await (const _chunk of this.body()) void _chunk;
    if (this.state === 'end') return null;
    if (this.state === 'preamble') {
      for (;;) {
        const at = this.buf.indexOf(this.delimiter);
        if (at >= 0) {
          this.buf = this.buf.subarray(at + this.delimiter.length);
          break;
        }
        this.buf = this.buf.subarray(Math.max(0, this.buf.length - this.delimiter.length));
        if (!(await this.fill())) throw badRequest('body', 'multipart body has no boundary line');
      }
      this.state = 'after-delimiter';
    }
    while (this.buf.length < 2) if (!(await this.fill())) throw badRequest('body', 'multipart body ends after a boundary');
    if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
      this.state = 'end';
      return null;
    }
    // Transport padding may follow the boundary before its CRLF; the headers end at a blank line.
    const lineEnd = await this.find(CRLF, 256);
    this.buf = this.buf.subarray(lineEnd);
    const end = await this.find(HEADER_END, MAX_HEADER_BYTES);
    const headers = this.buf.subarray(2, end).toString('utf8');
    this.buf = this.buf.subarray(end + HEADER_END.length);
    this.state = 'body';
    return parsePartHeaders(headers);
  }

  private async find(needle: Buffer, limit: number): Promise<number> {
    for (;;) {
      const at = this.buf.indexOf(needle);
      if (at >= 0 && at <= limit) return at;
      if (at > limit || this.buf.length > limit + needle.length) throw badRequest('body', 'multipart part headers are too long');
      if (!(await this.fill())) throw badRequest('body', 'multipart body ends inside part headers');
    }
  }

  /** The current part's bytes, as they arrive. */
  async *body(): AsyncGenerator<Buffer> {
    if (this.state !== 'body') return;
    for (;;) {
      const at = this.buf.indexOf(this.delimiter);
      if (at >= 0) {
        const last = this.buf.subarray(0, at);
        this.buf = this.buf.subarray(at + this.delimiter.length);
        this.state = 'after-delimiter';
        if (last.length > 0) yield last;
        return;
      }
      const keep = this.delimiter.length - 1;
      if (this.buf.length > keep) {
        const out = this.buf.subarray(0, this.buf.length - keep);
        this.buf = Buffer.from(this.buf.subarray(this.buf.length - keep));
        yield out;
      }
      if (!(await this.fill())) throw badRequest('body', 'the upload was cut off inside a multipart part');
    }
  }

  /** The current part as text, refused past `limit` bytes (form fields are short). */
  async text(limit: number, field: string): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.body()) {
      size += chunk.length;
      if (size > limit) throw badRequest(field, `longer than ${limit} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

function parsePartHeaders(text: string): MultipartPart {
  let disposition = '';
  let contentType: string | undefined;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-disposition') disposition = value;
    else if (name === 'content-type') contentType = value;
  }
  if (!/^form-data\b/i.test(disposition)) throw badRequest('body', 'a multipart part lacks Content-Disposition: form-data');
  const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition)?.[1];
  if (name === undefined) throw badRequest('body', 'a multipart part has no name');
  const filename = /(?:^|;)\s*filename="([^"]*)"/i.exec(disposition)?.[1];
  return { name, filename, contentType };
}
