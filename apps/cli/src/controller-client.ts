import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ApiError } from '../../../libs/contracts/src/rest.js';
import { UsageError, type CommandIo, type ParsedValues } from './command.js';

/** Where a controller started on this machine with defaults keeps its generated tokens. */
const LOCAL_TOKENS = join('.swarmship', 'controller', 'tokens.yaml');
const DEFAULT_URL = 'http://127.0.0.1:7070';
/** How long a request may go without any bytes moving either way. */
const SILENCE_TIMEOUT_MS = 60_000;

export class ControllerError extends Error {
  override name = 'ControllerError';
  constructor(
    message: string,
    readonly status: number,
    /** From a 503's Retry-After header. */
    readonly retryAfterSeconds?: number,
    /** The request field the controller named as the cause (ApiError.field). */
    readonly field?: string,
  ) {
    super(message);
  }
}

/**
 * How long a command keeps retrying a controller that answers 503 (starting up, loading
 * its releases) before failing: a CI job started right after a controller restart must
 * not fail for it.
 */
const UNAVAILABLE_RETRY_MS = 60_000;

/** The options every command that talks to the controller takes. */
export const controllerOptions = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const CONTROLLER_OPTIONS_HELP = `  --url URL             The controller's API. Default $SWARMSHIP_URL, else ${DEFAULT_URL}.
  --token TOKEN         API token. Default $SWARMSHIP_TOKEN, else the token a controller
                        on this machine generated in ./${LOCAL_TOKENS}.
  --json                Machine-readable output.`;

/** A small client for the controller's REST API (/api/v1). */
export class ControllerClient {
  private constructor(
    readonly baseUrl: URL,
    private readonly token: string,
  ) {}

  static async fromOptions(values: ParsedValues, io: CommandIo): Promise<ControllerClient> {
    const text = typeof values.url === 'string' ? values.url : (io.env.SWARMSHIP_URL ?? DEFAULT_URL);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new UsageError(`--url ${text}: not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url ${text}: expected http:// or https://`);
    let token = typeof values.token === 'string' ? values.token : io.env.SWARMSHIP_TOKEN;
    if (!token) {
      // Loaded only here: the YAML parser takes some 40 ms to load, and CI passes a token.
      const stored = await readFile(LOCAL_TOKENS, 'utf8').then(async (t) => (await import('yaml')).parse(t) as { token?: unknown }, () => undefined);
      if (typeof stored?.token === 'string') token = stored.token;
    }
    if (!token) throw new UsageError('no API token: pass --token or set SWARMSHIP_TOKEN (the controller prints where it stored its token)');
    return new ControllerClient(url, token);
  }

  async get<T>(path: string): Promise<T> {
    return (await this.retrying(() => this.call('GET', path))) as T;
  }

  /**
   * GET with `If-None-Match: tag` and `Prefer: wait=waitSeconds`: the controller holds
   * the answer until the resource changes or the wait is over. `body` is undefined when
   * it has not changed (304); `tag` is undefined from a controller that sends no ETag.
   */
  async getWhenChanged<T>(path: string, tag: string | undefined, waitSeconds: number): Promise<{ body: T | undefined; tag: string | undefined }> {
    const headers: Record<string, string> = {};
    if (tag !== undefined) headers['if-none-match'] = tag;
    if (tag !== undefined && waitSeconds > 0) headers.prefer = `wait=${Math.ceil(waitSeconds)}`;
    const seen: { etag?: string } = {};
    const body = (await this.retrying(() => this.call('GET', path, undefined, headers, seen))) as T | undefined;
    return { body, tag: seen.etag };
  }

  async delete<T>(path: string): Promise<T> {
    return (await this.retrying(() => this.call('DELETE', path))) as T;
  }

  async postJson<T>(path: string, body: unknown): Promise<T> {
    const bytes = Buffer.from(JSON.stringify(body));
    return (await this.retrying(() => this.call('POST', path, { contentType: 'application/json', body: bytes }))) as T;
  }

  /**
   * Streams the body `open` returns as the request body (called again for a retry);
   * `length` lets the server check free space first.
   */
  async postStream<T>(path: string, open: () => Readable, length: number, contentType = 'application/octet-stream', headers: Record<string, string> = {}): Promise<T> {
    return (await this.retrying(() => this.call('POST', path, { contentType, body: open(), length }, headers))) as T;
  }

  /** Runs `attempt` again while the controller answers 503, as long as its Retry-After says, for a minute at most. */
  private async retrying(attempt: () => Promise<unknown>): Promise<unknown> {
    const giveUpAt = performance.now() + UNAVAILABLE_RETRY_MS;
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof ControllerError) || err.status !== 503) throw err;
        const waitMs = Math.min(30_000, Math.max(250, (err.retryAfterSeconds ?? 2) * 1000));
        if (performance.now() + waitMs > giveUpAt) throw err;
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  private call(
    method: string,
    path: string,
    payload?: { contentType: string; body: Buffer | Readable; length?: number },
    extraHeaders: Record<string, string> = {},
    seen: { etag?: string } = {},
  ): Promise<unknown> {
    const url = new URL(`/api/v1${path}`, this.baseUrl);
    const send = url.protocol === 'https:' ? httpsRequest : request;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${this.token}`, accept: 'application/json', ...extraHeaders };
      if (payload) {
        headers['content-type'] = payload.contentType;
        const length = Buffer.isBuffer(payload.body) ? payload.body.length : payload.length;
        if (length !== undefined) headers['content-length'] = length;
      }
      const req = send(url, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = undefined;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = text;
          }
          const status = res.statusCode ?? 0;
          const etag = res.headers.etag;
          if (etag !== undefined) seen.etag = etag;
          if (status === 304) return resolve(undefined);
          if (status >= 200 && status < 300) return resolve(body);
          // Refused before the whole upload was sent: stop reading the file.
          if (payload && !Buffer.isBuffer(payload.body)) payload.body.destroy();
          const err = body as Partial<ApiError> | undefined;
          const what = typeof err === 'object' && err?.message ? err.message : `HTTP ${status}`;
          const hint = status === 401 ? ' (check --token or SWARMSHIP_TOKEN)' : '';
          const retryAfter = Number(res.headers['retry-after']);
          const field = typeof err === 'object' && typeof err?.field === 'string' ? err.field : undefined;
          reject(new ControllerError(`${method} ${url.pathname}: ${status} ${what}${hint}`, status, Number.isFinite(retryAfter) ? retryAfter : undefined, field));
        });
        res.on('error', reject);
      });
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(new ControllerError(`cannot reach the controller at ${this.baseUrl.origin}: ${e.code ?? e.message}`, 0)),
      );
      // A CI job must never hang on a controller that stopped answering: a connection
      // silent this long (no upload progress, no reply) fails the command instead.
      req.setTimeout(SILENCE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error(`no answer for ${SILENCE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
      if (!payload) req.end();
      else if (Buffer.isBuffer(payload.body)) req.end(payload.body);
      else {
        // pipe() does not forward a read error: unhandled, it would crash the command with a stack trace.
        payload.body.once('error', (e: NodeJS.ErrnoException) => {
          req.destroy();
          reject(new ControllerError(`cannot read the upload: ${e.code ?? e.message}`, 0));
        });
        payload.body.pipe(req);
      }
    });
  }
}

/** `name@version` → parts; `name` alone when `versionOptional`. */
export function parseReleaseRef(text: string, versionOptional: boolean): { name: string; version: string | undefined } {
  const at = text.lastIndexOf('@');
  const name = at > 0 ? text.slice(0, at) : text;
  const version = at > 0 ? text.slice(at + 1) : undefined;
  if (!name || (version !== undefined && !version) || (!versionOptional && version === undefined)) {
    throw new UsageError(`${text}: expected NAME@VERSION${versionOptional ? ' or NAME' : ''}`);
  }
  return { name, version };
}

/** `k=v,k2=v2` → a map; names the flag in the error. */
export function parseLabels(text: unknown, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined || text === '') return out;
  for (const pair of String(text).split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${String(text)}: expected k=v,k2=v2`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

export const releasePath = (name: string, version: string) => `/releases/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;

/** Prints rows as aligned columns. */
export function table(io: CommandIo, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  io.stdout.write(`${line(header)}\n`);
  for (const r of rows) io.stdout.write(`${line(r)}\n`);
}
