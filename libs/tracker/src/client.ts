/**
 * Announcing to an HTTP(S) tracker (BEP 3), reading compact (BEP 23), IPv6 (BEP 7)
 * and dictionary peer lists.
 */
import bencode from 'bencode';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { formatIpv6 } from './address.js';
import { TrackerFailure } from './errors.js';
import { percentEncodeBytes, type AnnounceEvent } from './query.js';

export interface AnnounceRequest {
  /** 20 bytes. */
  infoHash: Buffer;
  /** 20 bytes. */
  peerId: Buffer;
  port: number;
  uploaded: number;
  downloaded: number;
  left: number;
  event?: AnnounceEvent;
  numwant?: number;
  /** Ask for the compact peer list; default true. */
  compact?: boolean;
}

export interface TrackerPeer {
  host: string;
  port: number;
  /** Present when the tracker sent the dictionary form with peer ids. */
  peerId?: Buffer;
}

export interface AnnounceResponse {
  /** Seconds until the next regular announce. */
  interval: number;
  /** Seconds the tracker wants at least between announces. */
  minInterval?: number;
  peers: TrackerPeer[];
  complete?: number;
  incomplete?: number;
  warning?: string;
}

/** Anything that can announce: a TrackerClient, or a stand-in in tests. */
export interface Announcer {
  readonly url: string;
  announce(request: AnnounceRequest): Promise<AnnounceResponse>;
}

export interface TrackerClientOptions {
  /** Milliseconds for the whole request; default 15 s. */
  timeoutMs?: number;
  /** Largest response body accepted; default 1 MiB (about 170,000 compact peers). */
  maxResponseBytes?: number;
}

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 4 });

export class TrackerClient implements Announcer {
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  /** BEP 3: echoed back once a tracker sends one. */
  private trackerId: Buffer | undefined;

  constructor(
    readonly url: string,
    options: TrackerClientOptions = {},
  ) {
    const protocol = new URL(url).protocol;
    if (protocol !== 'http:' && protocol !== 'https:') throw new Error(`unsupported tracker URL ${url}: only http and https are spoken`);
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  async announce(request: AnnounceRequest): Promise<AnnounceResponse> {
    const body = await this.get(this.announceUrl(request));
    const dict = this.decode(body);
    const interval = dict.interval;
    if (typeof interval !== 'number' || interval < 0) throw new Error(`tracker ${this.url} sent no valid interval`);
    const response: AnnounceResponse = { interval, peers: [] };
    const minInterval = dict['min interval'];
    if (typeof minInterval === 'number') response.minInterval = minInterval;
    if (typeof dict.complete === 'number') response.complete = dict.complete;
    if (typeof dict.incomplete === 'number') response.incomplete = dict.incomplete;
    const warning = dict['warning message'];
    if (warning instanceof Uint8Array) response.warning = Buffer.from(warning).toString('utf8');
    const trackerId = dict['tracker id'];
    if (trackerId instanceof Uint8Array) this.trackerId = Buffer.from(trackerId);

    const peers = dict.peers;
    if (peers instanceof Uint8Array) response.peers.push(...compactPeers(peers, 4));
    else if (Array.isArray(peers)) response.peers.push(...dictionaryPeers(peers));
    const peers6 = dict.peers6;
    if (peers6 instanceof Uint8Array) response.peers.push(...compactPeers(peers6, 16));
    return response;
  }

  private announceUrl(r: AnnounceRequest): string {
    const params = [
      `info_hash=${percentEncodeBytes(r.infoHash)}`,
      `peer_id=${percentEncodeBytes(r.peerId)}`,
      `port=${r.port}`,
      `uploaded=${r.uploaded}`,
      `downloaded=${r.downloaded}`,
      `left=${r.left}`,
      `compact=${r.compact === false ? 0 : 1}`,
    ];
    if (r.event) params.push(`event=${r.event}`);
    if (r.numwant !== undefined) params.push(`numwant=${r.numwant}`);
    if (this.trackerId) params.push(`trackerid=${percentEncodeBytes(this.trackerId)}`);
    // An announce URL may carry its own query (a passkey); ours goes after it.
    return `${this.url}${this.url.includes('?') ? '&' : '?'}${params.join('&')}`;
  }

  private async get(url: string): Promise<Buffer> {
    try {
      return await this.getOnce(url);
    } catch (err) {
      // A kept-alive socket the tracker closed while idle fails on first use; that says
      // nothing about the tracker, so one fresh try is owed before reporting it.
      if (err instanceof StaleSocketError) return this.getOnce(url);
      throw err;
    }
  }

  private getOnce(url: string): Promise<Buffer> {
    const https = url.startsWith('https:');
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      let responded = false;
      const settle = (err: Error | undefined, body?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(body as Buffer);
      };
      const req = (https ? httpsRequest : httpRequest)(url, { method: 'GET', agent: https ? httpsAgent : httpAgent });
      const timer = setTimeout(() => settle(new Error(`tracker ${this.url} did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
      req.on('error', (err: NodeJS.ErrnoException) => {
        settle(req.reusedSocket && !responded && err.code === 'ECONNRESET' ? new StaleSocketError(err.message) : err);
      });
      req.on('response', (res: IncomingMessage) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) settle(new Error(`tracker ${this.url} sent more than ${this.maxResponseBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (err) => settle(err));
        res.on('close', () => {
          if (!res.complete) settle(new Error(`tracker ${this.url} closed the connection mid-response`));
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          // A refusal may come with any status; the failure reason says more than the code.
          if (res.statusCode !== 200 && !looksLikeFailure(body)) settle(new Error(`tracker ${this.url} answered HTTP ${res.statusCode}`));
          else settle(undefined, body);
        });
      });
      req.end();
    });
  }

  private decode(body: Buffer): Record<string, unknown> {
    let value: unknown;
    try {
      value = bencode.decode(body);
    } catch {
      throw new Error(`tracker ${this.url} sent a response that is not bencoded`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
      throw new Error(`tracker ${this.url} sent a response that is not a dictionary`);
    }
    const dict = value as Record<string, unknown>;
    const failure = dict['failure reason'];
    if (failure instanceof Uint8Array) throw new TrackerFailure(Buffer.from(failure).toString('utf8'), this.url);
    return dict;
  }
}

class StaleSocketError extends Error {}

function looksLikeFailure(body: Buffer): boolean {
  return body.includes('14:failure reason');
}

/** Peers of `addressLength` + 2 bytes each; a trailing partial entry is ignored. */
function compactPeers(bytes: Uint8Array, addressLength: 4 | 16): TrackerPeer[] {
  const stride = addressLength + 2;
  const peers: TrackerPeer[] = [];
  for (let at = 0; at + stride <= bytes.length; at += stride) {
    const address = bytes.subarray(at, at + addressLength);
    const port = ((bytes[at + addressLength] as number) << 8) | (bytes[at + addressLength + 1] as number);
    if (port === 0) continue;
    peers.push({ host: addressLength === 4 ? address.join('.') : formatIpv6(address), port });
  }
  return peers;
}

function dictionaryPeers(list: unknown[]): TrackerPeer[] {
  const peers: TrackerPeer[] = [];
  for (const item of list) {
    if (typeof item !== 'object' || item === null || item instanceof Uint8Array || Array.isArray(item)) continue;
    const entry = item as Record<string, unknown>;
    const ip = entry.ip;
    const port = entry.port;
    if (!(ip instanceof Uint8Array) || typeof port !== 'number' || port < 1 || port > 65535) continue;
    const peer: TrackerPeer = { host: Buffer.from(ip).toString('utf8'), port };
    const peerId = entry['peer id'];
    if (peerId instanceof Uint8Array) peer.peerId = Buffer.from(peerId);
    peers.push(peer);
  }
  return peers;
}
