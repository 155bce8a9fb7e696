/**
 * The tracker over HTTP (node:http): GET /announce and GET /scrape, nothing else.
 * `handleTrackerRequest` is the whole adapter, so another HTTP server (the controller)
 * can mount the same two routes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Random } from '../../engine/src/clock.js';
import { TrackerCore, failureResponse, type TrustIpParameter } from './core.js';
import { TrackerRequestError } from './errors.js';
import { parseAnnounceQuery, parseScrapeQuery } from './query.js';

/** The parts of an incoming request the handler reads (node's IncomingMessage has them). */
export interface TrackerHttpRequest {
  method?: string | undefined;
  url?: string | undefined;
  socket: { remoteAddress?: string | undefined; remoteFamily?: string | undefined };
}

/** The parts of a response the handler writes (node's ServerResponse has them). */
export interface TrackerHttpResponse {
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  end(body?: Buffer | string): unknown;
}

export interface TrackerServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Info hashes of a private tracker; undefined serves every info hash. */
  allow?: Buffer[] | undefined;
  /** Seconds between announces; see TrackerCore. */
  interval?: number;
  trustIp?: TrustIpParameter;
  clock?: { now(): number };
  random?: Random;
}

export interface RunningTracker {
  /** The announce URL to put in a torrent. */
  url: string;
  port: number;
  core: TrackerCore;
  close(): Promise<void>;
}

/** Announce URLs are short; a client sending more than this is not a tracker client. */
const MAX_HEADER_BYTES = 8 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
/** Longer than clients keep idle sockets, so the client, not the server, closes first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const CONTENT_TYPE = 'text/plain';

/** Answers one request. Never throws: a bad request gets a bencoded `failure reason`. */
export function handleTrackerRequest(core: TrackerCore, req: TrackerHttpRequest, res: TrackerHttpResponse): void {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const path = mark < 0 ? url : url.slice(0, mark);
  const query = mark < 0 ? '' : url.slice(mark + 1);
  const isAnnounce = path === '/announce';
  if (!isAnnounce && path !== '/scrape') return reply(res, 404, failureResponse(`no such path: try /announce or /scrape`));
  if (req.method !== 'GET') return reply(res, 405, failureResponse(`${path} takes GET`));

  let body: Buffer;
  try {
    if (isAnnounce) {
      const remoteAddress = req.socket.remoteAddress;
      if (!remoteAddress) return reply(res, 200, failureResponse('ip: cannot tell the peer address'));
      const family = req.socket.remoteFamily === 'IPv6' ? 6 : 4;
      body = core.announce(parseAnnounceQuery(query), { address: remoteAddress, family });
    } else {
      body = core.scrape(parseScrapeQuery(query));
    }
  } catch (err) {
    // Clients only read the body of a 200, so a refusal is a 200 with a failure reason.
    if (err instanceof TrackerRequestError) body = failureResponse(err.message);
    else body = failureResponse('internal tracker error');
  }
  reply(res, 200, body);
}

function reply(res: TrackerHttpResponse, status: number, body: Buffer): void {
  res.statusCode = status;
  res.setHeader('Content-Type', CONTENT_TYPE);
  res.setHeader('Content-Length', body.length);
  res.end(body);
}

/** Starts a tracker on its own HTTP server. */
export async function startTrackerServer(opts: TrackerServerOptions): Promise<RunningTracker> {
  const host = opts.host ?? '127.0.0.1';
  const core = new TrackerCore({
    allow: opts.allow,
    interval: opts.interval,
    trustIp: opts.trustIp,
    clock: opts.clock,
    random: opts.random,
  });
  const server: Server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, keepAlive: true },
    (req, res) => handleTrackerRequest(core, req, res),
  );
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${urlHost(host)}:${port}/announce`,
    port,
    core,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Idle keep-alive sockets would otherwise hold close() open for a minute.
        server.closeIdleConnections();
      }),
  };
}

/** A wildcard address is no place to send announces to; name this host's loopback instead. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
