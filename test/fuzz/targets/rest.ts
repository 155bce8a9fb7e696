/**
 * The controller's REST input: the fields of POST /api/v1/releases as they arrive from a
 * query string, headers, a multipart form or a JSON body (`parsePublishFields`,
 * `parseFileName`), and the multipart/form-data body itself (`multipartBoundary`,
 * `MultipartReader`). Anything refused is a ControllerError 'bad-request' naming a field.
 */
import fc from 'fast-check';
import { parsePublishFields, type RawPublishFields } from '../../../libs/controller-core/src/controller-core.js';
import { ControllerError } from '../../../libs/controller-core/src/errors.js';
import { parseFileName } from '../../../libs/controller-core/src/labels.js';
import { MultipartReader, multipartBoundary } from '../../../libs/controller-core/src/multipart.js';
import { anyText, awkwardJsonLeaf, mutatedBytes, mutatedText, mutatedTree, PROTOTYPE_KEYS, type Tree } from '../mutate.js';
import { check, expectTyped, expectTypedAsync, type FuzzTarget, type Outcome } from '../runner.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const labelKey = fc.oneof(fc.constantFrom('tier', 'zone', 'app.kubernetes.io/name', 'node-role', 'a'), fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/));
const labelValue = fc.oneof(fc.constantFrom('web', 'eu-1', '', 'a.b_c'), fc.stringMatching(/^[a-z0-9]{1,8}$/));

interface PublishSpec {
  name: string;
  version: string;
  selector: Record<string, string>;
  metadata: Record<string, string>;
  unpack: boolean | undefined;
  /** Selector and metadata as `k=v,…` text (query string, header, form field) or as objects (JSON). */
  asText: boolean;
}

const publishSpec: fc.Arbitrary<PublishSpec> = fc.record({
  name: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/),
  version: fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,20}$/), fc.constantFrom('1.2.3', '1.0.0+build.5', 'abc123')),
  selector: fc.dictionary(labelKey, labelValue, { maxKeys: 3 }),
  metadata: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/), fc.stringMatching(/^[^,=]{0,20}$/).map((s) => s.trim()), { maxKeys: 3 }),
  unpack: fc.option(fc.boolean(), { nil: undefined }),
  asText: fc.boolean(),
});

function pairs(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function rawFields(s: PublishSpec): RawPublishFields {
  return {
    name: s.name,
    version: s.version,
    selector: s.asText ? pairs(s.selector) : s.selector,
    metadata: s.asText ? pairs(s.metadata) : s.metadata,
    unpack: s.unpack === undefined ? undefined : s.asText ? String(s.unpack) : s.unpack,
  };
}

const FIELD_KEYS = ['name', 'version', 'selector', 'metadata', 'unpack', 'filename', 'path', ...PROTOTYPE_KEYS];
const JSON_TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u0000', '\\ud800', 'null', 'true', '1e400', '-0', '"__proto__"', '"constructor"', '{"a":"b"}', '=', ',', '/'];

type PublishInput = { raw: unknown; fileName: unknown; spec?: PublishSpec };

const validPublish = publishSpec.map((spec) => ({ raw: rawFields(spec) as unknown, fileName: 'artifact.tar.gz' as unknown, spec }));

const fileName = fc.oneof(
  fc.constantFrom<unknown>('artifact', 'a.tar.gz', '', '.', '..', '.hidden', 'a/b', 'a\\b', 'a\0b', 'x'.repeat(256), 'x'.repeat(255), undefined, null, 5, ['a'], { a: 1 }),
  anyText({ maxLength: 20 }),
);

const publishInput: fc.Arbitrary<PublishInput> = fc.oneof(
  { weight: 2, arbitrary: validPublish },
  { weight: 5, arbitrary: fc.tuple(mutatedTree(validPublish.map((v) => v.raw as Tree), awkwardJsonLeaf(), fc.oneof(fc.constantFrom(...FIELD_KEYS), fc.string({ maxLength: 6 }))), fileName).map(([raw, f]) => ({ raw, fileName: f })) },
  {
    // A JSON body broken as text, as readJsonObject would hand it on when it still parses.
    weight: 3,
    arbitrary: mutatedText(validPublish.map((v) => JSON.stringify(v.raw)), JSON_TOKENS).map((text) => {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        raw = text;
      }
      return { raw, fileName: 'artifact' };
    }),
  },
  { weight: 1, arbitrary: fc.tuple(fc.jsonValue({ maxDepth: 3 }), fileName).map(([raw, f]) => ({ raw, fileName: f })) },
);

function checkPublish({ raw, fileName: name, spec }: PublishInput): Outcome {
  // The HTTP layer hands on an object; query strings and JSON bodies can put anything in it.
  const fields = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as RawPublishFields) : { name: raw };
  const parsed = expectTyped(() => parsePublishFields(fields), ControllerError);
  if ('rejected' in parsed) {
    check(parsed.rejected.code?.split(' ')[0] === 'bad-request', `refused as ${parsed.rejected.code}`);
    check(spec === undefined, () => `valid publish fields were refused: ${parsed.message}`);
    checkFieldNamed(() => parsePublishFields(fields));
    return parsed.rejected;
  }
  const p = parsed.value;
  check(NAME.test(p.name) && VERSION.test(p.version), `name ${p.name} or version ${p.version} accepted`);
  check(typeof p.unpack === 'boolean', 'unpack is not a boolean');
  for (const [k, v] of Object.entries(p.selector)) check(LABEL_KEY.test(k) && LABEL_VALUE.test(v), `selector ${k}=${v} accepted`);
  const meta = Object.entries(p.metadata);
  check(meta.length <= 64 && meta.every(([k, v]) => typeof v === 'string' && k.length >= 1 && k.length <= 128 && v.length <= 1024), 'metadata out of bounds');
  for (const m of [p.selector, p.metadata]) check(Object.getPrototypeOf(m) === Object.prototype, 'selector or metadata has another prototype');
  if (spec) {
    check(p.name === spec.name && p.version === spec.version && p.unpack === (spec.unpack === true), 'name, version or unpack differ');
    check(sameMap(p.selector, spec.selector) && sameMap(p.metadata, spec.metadata), 'selector or metadata differ from what was sent');
  }
  const file = expectTyped(() => parseFileName(name), ControllerError);
  if ('rejected' in file) {
    checkFieldNamed(() => parseFileName(name));
    return file.rejected;
  }
  check(typeof file.value === 'string' && file.value.length > 0 && file.value.length <= 255 && !/[/\\\0]/.test(file.value) && !file.value.startsWith('.'), `file name ${JSON.stringify(file.value)} accepted`);
  return 'accepted';
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** A 400 names the field at fault, so the API's error body can carry it. */
function checkFieldNamed(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    check(typeof (err as ControllerError).field === 'string' && (err as ControllerError).field !== '', 'a bad request without a field');
  }
}

export const publishTarget: FuzzTarget<PublishInput> = {
  name: 'rest-publish',
  about: 'parsePublishFields (selector, metadata, name, version, unpack), parseFileName',
  arbitrary: publishInput,
  setup: () => ({ check: checkPublish }),
};

// ---- multipart/form-data ------------------------------------------------------------------

interface Part {
  name: string;
  filename?: string;
  body: Buffer;
}

const boundary = fc.oneof(fc.constantFrom('----WebKitFormBoundary7MA4YWxkTrZu0gW', 'X', 'abc', '--', 'a b', '"'), fc.stringMatching(/^[A-Za-z0-9'()+_,./:=?-]{1,70}$/));

const part: fc.Arbitrary<Part> = fc.record(
  {
    name: fc.oneof(fc.constantFrom('name', 'version', 'selector', 'file'), fc.stringMatching(/^[a-z]{1,8}$/)),
    filename: fc.oneof(fc.constantFrom('a.tar.gz', 'C:\\x\\y.bin', ''), fc.stringMatching(/^[a-z.]{1,8}$/)),
    body: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  },
  { requiredKeys: ['name', 'body'] },
);

function multipartBody(b: string, parts: Part[], preamble: string, epilogue: string): Buffer {
  const chunks: Buffer[] = [Buffer.from(preamble)];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${b}\r\nContent-Disposition: ${disposition}\r\n${p.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`), p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${b}--\r\n${epilogue}`));
  return Buffer.concat(chunks);
}

interface MultipartInput {
  contentType: string;
  body: Buffer;
  cuts: number[];
  /** Set for a well-formed body: the parts it must come back as. */
  parts?: Part[];
}

const MULTIPART_TOKENS = ['\r\n', '\r\n\r\n', '--', '\r\n--', 'Content-Disposition: form-data; name="x"\r\n\r\n', 'name="', 'filename="', '"', ';', ':', '\n', '\r', 'form-data', 'Content-Type: text/plain\r\n'];

const validMultipart = fc
  .record({
    b: boundary.filter((x) => !x.includes('"') && !x.includes(' ')),
    parts: fc.array(part, { maxLength: 4 }),
    preamble: fc.constantFrom('', 'preamble text\r\n'),
    epilogue: fc.constantFrom('', 'epilogue'),
    quoted: fc.boolean(),
    cuts: fc.array(fc.nat({ max: 2000 }), { maxLength: 8 }),
  })
  // A part body holding the delimiter would end the part early: not a well-formed body.
  .filter(({ b, parts }) => parts.every((p) => !Buffer.concat([Buffer.from('\r\n'), p.body, Buffer.from('\r\n')]).includes(`\r\n--${b}`)))
  .map(({ b, parts, preamble, epilogue, quoted, cuts }): MultipartInput => ({
    contentType: `multipart/form-data; boundary=${quoted ? `"${b}"` : b}`,
    body: multipartBody(b, parts, preamble, epilogue),
    cuts,
    parts,
  }));

const multipartInput: fc.Arbitrary<MultipartInput> = fc.oneof(
  { weight: 2, arbitrary: validMultipart },
  {
    weight: 5,
    arbitrary: fc
      .tuple(validMultipart, mutatedBytes(validMultipart.map((v) => v.body), MULTIPART_TOKENS))
      .map(([v, body]): MultipartInput => ({ contentType: v.contentType, body, cuts: v.cuts })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(validMultipart, mutatedText(validMultipart.map((v) => v.contentType), [';', '=', '"', ' boundary=', 'boundary="', 'BOUNDARY=', ',']))
      .map(([v, contentType]): MultipartInput => ({ contentType, body: v.body, cuts: v.cuts })),
  },
  { weight: 1, arbitrary: fc.record({ contentType: fc.constant('multipart/form-data; boundary=X'), body: fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)), cuts: fc.array(fc.nat({ max: 200 }), { maxLength: 4 }) }) },
);

async function* chunksOf(body: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  const points = [...new Set(cuts.map((c) => Math.min(c, body.length)))].sort((a, b) => a - b);
  let start = 0;
  for (const p of points) {
    // Each chunk its own memory, as a socket hands them over.
    yield Buffer.from(body.subarray(start, p));
    start = p;
  }
  yield Buffer.from(body.subarray(start));
}

async function checkMultipart({ contentType, body, cuts, parts }: MultipartInput): Promise<Outcome> {
  const b = expectTyped(() => multipartBoundary(contentType), ControllerError);
  if ('rejected' in b) {
    check(parts === undefined, () => `the boundary of a well-formed content type was refused: ${b.message}`);
    return b.rejected;
  }
  const result = await expectTypedAsync(async () => {
    const reader = new MultipartReader(chunksOf(body, cuts), b.value);
    const out: Part[] = [];
    let bytes = 0;
    for (;;) {
      const p = await reader.nextPart();
      if (!p) break;
      check(out.length <= body.length, 'more parts than bytes');
      const chunks: Buffer[] = [];
      if (p.filename !== undefined || p.name === 'file') {
        for await (const c of reader.body()) chunks.push(Buffer.from(c));
        bytes += chunks.reduce((n, c) => n + c.length, 0);
      } else {
        // A form field is UTF-8 text: no more characters than it had bytes (a byte that is
        // not UTF-8 becomes one U+FFFD, which is three bytes when encoded again).
        const text = await reader.text(64 * 1024, p.name);
        bytes += text.length;
        chunks.push(Buffer.from(text));
      }
      const partBody = Buffer.concat(chunks);
      check(bytes <= body.length, 'parts hold more data than the body');
      out.push({ name: p.name, ...(p.filename !== undefined ? { filename: p.filename } : {}), body: partBody });
    }
    return out;
  }, ControllerError);
  if ('rejected' in result) {
    check(parts === undefined, () => `a well-formed multipart body was refused: ${result.message}`);
    return result.rejected;
  }
  if (parts) {
    check(result.value.length === parts.length, `${result.value.length} parts read, ${parts.length} sent`);
    result.value.forEach((p, i) => {
      const sent = parts[i]!;
      check(p.name === sent.name && p.filename === sent.filename, `part ${i} headers differ`);
      // Form fields come back as UTF-8 text; file parts byte for byte.
      const expected = sent.filename !== undefined || sent.name === 'file' ? sent.body : Buffer.from(sent.body.toString('utf8'));
      check(p.body.equals(expected), `part ${i} body differs`);
    });
  }
  return 'accepted';
}

export const multipartTarget: FuzzTarget<MultipartInput> = {
  name: 'rest-multipart',
  about: 'multipartBoundary, MultipartReader (nextPart, body, text)',
  arbitrary: multipartInput,
  setup: () => ({ check: checkMultipart }),
};

