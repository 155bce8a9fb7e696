import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MultipartReader, multipartBoundary } from '../src/multipart.js';

const boundary = '----swarmshipTestBoundary7MA4YWxk';

function body(file: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`preamble\r\n--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nweb\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

async function* chunks(buf: Buffer, size: (i: number) => number): AsyncGenerator<Buffer> {
  let i = 0;
  for (let at = 0; at < buf.length; i++) {
    const n = size(i);
    yield buf.subarray(at, at + n);
    at += n;
  }
}

async function read(buf: Buffer, size: (i: number) => number): Promise<{ name: string; file: Buffer; filename: string | undefined }> {
  const reader = new MultipartReader(chunks(buf, size), boundary);
  const first = await reader.nextPart();
  expect(first?.name).toBe('name');
  const name = await reader.text(100, 'name');
  const second = await reader.nextPart();
  const parts: Buffer[] = [];
  for await (const c of reader.body()) parts.push(Buffer.from(c));
  expect(await reader.nextPart()).toBeNull();
  return { name, file: Buffer.concat(parts), filename: second?.filename };
}

describe('multipart reader', () => {
  it('streams a file part whatever the chunking, including bytes that resemble a delimiter', async () => {
    const file = Buffer.concat([randomBytes(5000), Buffer.from(`\r\n--${boundary.slice(0, -1)}x`), Buffer.from('\r\n--'), randomBytes(3000)]);
    const whole = body(file);
    for (const size of [() => 1, () => 7, (i: number) => (i % 2 ? 3 : 4096), () => whole.length]) {
      const got = await read(whole, size);
      expect(got.name).toBe('web');
      expect(got.filename).toBe('a.bin');
      expect(got.file.equals(file)).toBe(true);
    }
  });

  it('refuses a body cut off inside the file', async () => {
    const whole = body(randomBytes(1000)).subarray(0, 600);
    await expect(read(whole, () => 100)).rejects.toMatchObject({ code: 'bad-request', field: 'body' });
  });

  it('reads the boundary from the content type', () => {
    expect(multipartBoundary(`multipart/form-data; boundary=${boundary}`)).toBe(boundary);
    expect(multipartBoundary('multipart/form-data; boundary="a b"')).toBe('a b');
    expect(() => multipartBoundary('multipart/form-data')).toThrow(/boundary/);
  });
});
