import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrackerClient, type AnnounceRequest } from '../src/client.js';
import { TrackerFailure } from '../src/errors.js';
import { percentEncodeBytes } from '../src/query.js';
import { startTrackerServer, type RunningTracker } from '../src/server.js';
import { bencodeKey, deadPort, decodeDict, id20 } from './tracker-fixtures.js';

const INFO_HASH = id20(0xc4);

function announce(peer: number, port: number, extra: Partial<AnnounceRequest> = {}): AnnounceRequest {
  return { infoHash: INFO_HASH, peerId: id20(peer), port, uploaded: 0, downloaded: 0, left: 100, ...extra };
}

function get(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

describe('TrackerClient against the tracker over loopback HTTP', () => {
  let tracker: RunningTracker;
  let client: TrackerClient;
  beforeAll(async () => {
    tracker = await startTrackerServer({ port: 0, interval: 90 });
    client = new TrackerClient(tracker.url, { timeoutMs: 5000 });
  });
  afterAll(() => tracker.close());

  it('announces started and learns the other peer, compact and dictionary alike', async () => {
    expect(tracker.url).toBe(`http://127.0.0.1:${tracker.port}/announce`);
    const first = await client.announce(announce(1, 7001, { event: 'started' }));
    expect(first).toMatchObject({ interval: 90, minInterval: 45, complete: 0, incomplete: 1, peers: [] });
    const second = await client.announce(announce(2, 7002, { event: 'started' }));
    expect(second.peers).toEqual([{ host: '127.0.0.1', port: 7001 }]);
    const dictionary = await client.announce(announce(2, 7002, { compact: false }));
    expect(dictionary.peers).toEqual([{ host: '127.0.0.1', port: 7001, peerId: id20(1) }]);
  });

  it('reads IPv6 peers from peers6', async () => {
    // The tracker believes `ip` from a loopback caller, which gives this peer an IPv6 address.
    const url = `${tracker.url}?ip=fd00::abcd`;
    await new TrackerClient(url).announce({ ...announce(3, 7003), infoHash: id20(0x66) });
    const answer = await client.announce({ ...announce(4, 7004), infoHash: id20(0x66) });
    expect(answer.peers).toEqual([{ host: 'fd00::abcd', port: 7003 }]);
  });

  it('counts a completion and forgets a stopped peer', async () => {
    await client.announce(announce(2, 7002, { event: 'completed', left: 0 }));
    const scrape = await get(`${tracker.url.replace('/announce', '/scrape')}?info_hash=${percentEncodeBytes(INFO_HASH)}`);
    expect(scrape.headers['content-type']).toBe('text/plain');
    const files = decodeDict(scrape.body).files as Record<string, unknown>;
    expect(files[bencodeKey(INFO_HASH)]).toEqual({ complete: 1, downloaded: 1, incomplete: 1 });
    const stopped = await client.announce(announce(1, 7001, { event: 'stopped', numwant: 0 }));
    expect(stopped).toMatchObject({ complete: 1, incomplete: 0, peers: [] });
  });

  it('keeps the connection alive between announces', async () => {
    const res = await get(`${tracker.url}?info_hash=x`);
    expect(res.headers.connection).toBe('keep-alive');
  });

  it('throws TrackerFailure with the failure reason', async () => {
    const refused = await client.announce({ ...announce(1, 1), port: 0 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(TrackerFailure);
    expect((refused as TrackerFailure).reason).toBe('port must be 1 to 65535, got 0');
    const notFound = await new TrackerClient(tracker.url.replace('/announce', '/nothing')).announce(announce(1, 1)).catch((err: unknown) => err);
    expect(notFound).toBeInstanceOf(TrackerFailure);
  });

  it('refuses a torrent a private tracker does not serve', async () => {
    const privateTracker = await startTrackerServer({ port: 0, allow: [id20(0x01)] });
    try {
      const err = await new TrackerClient(privateTracker.url).announce(announce(1, 7001)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TrackerFailure);
      expect((err as TrackerFailure).reason).toMatch(/not served/);
    } finally {
      await privateTracker.close();
    }
  });

  it('reports a dead tracker and refuses schemes it cannot speak', async () => {
    const dead = new TrackerClient(`http://127.0.0.1:${await deadPort()}/announce`, { timeoutMs: 2000 });
    await expect(dead.announce(announce(1, 7001))).rejects.toThrow(/ECONNREFUSED/);
    expect(() => new TrackerClient('udp://127.0.0.1:6969/announce')).toThrow(/only http and https/);
  });
});
