import { createHash, randomBytes } from 'node:crypto';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { readdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOUNCED_UPLOAD_TYPE, type ApiError, type ReleaseStatus } from '../libs/contracts/src/rest.js';
import { Engine } from '../libs/engine/src/index.js';
import { parseTorrent } from '../libs/metainfo/src/parse.js';
import { until } from './faults/checks.js';
import { cachedBytes, directIoWorksIn } from './helpers/page-cache.js';
import { authHeaders, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';

// `swarmship publish` hashes the artifact first and sends its piece digests ahead of its
// bytes: the controller lists and seeds the release from the digests alone, agents start
// while the upload arrives, and a failed upload withdraws it. Tested here over raw HTTP,
// the way any client of the API would send it.

let temp: { dir: string; remove: () => Promise<void> };
let ctl: ControllerUnderTest;
let peerPort: number;
const PIECE = 256 * 1024;

beforeAll(async () => {
  temp = await tempDataDir();
  ctl = await startControllerProcess(join(temp.dir, 'data'));
  const listening = await ctl.cli.waitFor((e) => e['event'] === 'listening', 1000);
  peerPort = Number(listening['peerPort']);
});

afterAll(async () => {
  await ctl?.stop();
  await temp?.remove();
});

/** The body's opening: every piece's SHA-1, then every piece's SHA-256. */
function digestsOf(data: Buffer): { opening: Buffer; sha256: string } {
  const sha1: Buffer[] = [];
  const sha256: Buffer[] = [];
  for (let at = 0; at < data.length; at += PIECE) {
    const piece = data.subarray(at, at + PIECE);
    sha1.push(createHash('sha1').update(piece).digest());
    sha256.push(createHash('sha256').update(piece).digest());
  }
  return { opening: Buffer.concat([...sha1, ...sha256]), sha256: createHash('sha256').update(data).digest('hex') };
}

/** Starts an announced upload and leaves the body open: the caller writes it. */
function startUpload(name: string, version: string, data: Buffer, claim = digestsOf(data)): { req: ClientRequest; answer: Promise<{ status: number; body: unknown }> } {
  const url = new URL(`${ctl.api}/releases?name=${name}&version=${version}&filename=app.bin`);
  const req = request(url, {
    method: 'POST',
    headers: {
      ...authHeaders(),
      'Content-Type': ANNOUNCED_UPLOAD_TYPE,
      'Content-Length': claim.opening.length + data.length,
      'X-Swarmship-Size': data.length,
      'X-Swarmship-Piece-Length': PIECE,
      'X-Swarmship-Sha256': claim.sha256,
    },
  });
  const answer = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
  });
  req.write(claim.opening);
  return { req, answer };
}

async function api(path: string): Promise<Response> {
  return fetch(`${ctl.api}${path}`, { headers: authHeaders() });
}

async function releasesOnDisk(): Promise<string[]> {
  return readdir(join(ctl.dataDir, 'releases')).catch(() => []);
}

describe('publishing with the piece digests ahead of the bytes', () => {
  it('lists and seeds the release before its upload ends, and a peer gets the pieces that landed', async () => {
    const data = randomBytes(24 * PIECE + 777);
    const { req, answer } = startUpload('early', '1', data);
    const half = 12 * PIECE;
    req.write(data.subarray(0, half));

    // Listed, with its torrent, while half of it is still to come.
    const status = await until(
      'the release to be listed',
      async () => {
        const res = await api('/releases/early/1');
        return res.status === 200 ? ((await res.json()) as ReleaseStatus) : undefined;
      },
      10_000,
      50,
    );
    expect(status.bytes).toBe(data.length);
    const metainfo = parseTorrent(Buffer.from(await (await api('/releases/early/1/torrent')).arrayBuffer()));
    expect(metainfo.infoHashHex).toBe(status.infoHash);
    expect(await releasesOnDisk()).not.toContain('early');

    // A peer of the origin gets every piece that has landed, and only those so far.
    const dir = await mkdtemp(join(tmpdir(), 'swarmship-announced-'));
    const peer = new Engine({ host: '127.0.0.1', port: 0 });
    try {
      await peer.listen();
      const torrent = await peer.addTorrent(metainfo, { dir, mode: 'download', peers: [{ host: '127.0.0.1', port: peerPort }] });
      await until('the landed half to arrive', async () => (torrent.stats().verifiedPieces >= 12 ? true : undefined), 10_000, 50);
      await new Promise((r) => setTimeout(r, 300));
      expect(torrent.stats().verifiedPieces).toBe(12);
      expect(torrent.stats().hashFailures).toBe(0);

      req.end(data.subarray(half));
      const done = await answer;
      expect(done.status).toBe(201);
      expect((done.body as ReleaseStatus).infoHash).toBe(status.infoHash);
      await until('the peer to finish', async () => (torrent.complete ? true : undefined), 10_000, 50);
      expect((await readFile(join(dir, 'app.bin'))).equals(data)).toBe(true);
    } finally {
      await peer.close();
      await rm(dir, { recursive: true, force: true });
    }
    expect(await releasesOnDisk()).toContain('early');
    const stored = join(ctl.dataDir, 'releases', 'early', '1', 'content', 'app.bin');
    // Written, served and read back for its SHA-256 past the page cache: of it, only the
    // block the file ends in, which is not whole, went through the cache.
    const cached = directIoWorksIn(ctl.dataDir) ? cachedBytes(stored) : undefined;
    if (cached === undefined) console.warn('skipped the page cache check: no O_DIRECT here, or no fincore (Debian package util-linux)');
    else expect(cached).toBeLessThanOrEqual(4096);
    expect((await readFile(stored)).equals(data)).toBe(true);
  });

  it('withdraws the release when a piece does not match its digest, and keeps nothing of it', async () => {
    const data = randomBytes(8 * PIECE);
    const claim = digestsOf(data);
    const sent = Buffer.from(data);
    sent[5 * PIECE + 10]! ^= 0xff;
    const { req, answer } = startUpload('bad-piece', '1', sent, claim);
    req.end(sent);
    const done = await answer;
    expect(done.status).toBe(400);
    expect((done.body as ApiError).message).toMatch(/piece 5 of the upload does not match/);
    expect((await api('/releases/bad-piece/1')).status).toBe(404);
    expect(await releasesOnDisk()).not.toContain('bad-piece');
    // The same name and version can be published again, right this time.
    const again = startUpload('bad-piece', '1', data);
    again.req.end(data);
    expect((await again.answer).status).toBe(201);
  });

  it("withdraws the release when the artifact's SHA-256 is not the one announced", async () => {
    const data = randomBytes(4 * PIECE + 5);
    const claim = { ...digestsOf(data), sha256: 'ab'.repeat(32) };
    const { req, answer } = startUpload('bad-sum', '1', data, claim);
    req.end(data);
    const done = await answer;
    expect(done.status).toBe(400);
    expect(done.body).toMatchObject({ field: 'X-Swarmship-Sha256' });
    expect((await api('/releases/bad-sum/1')).status).toBe(404);
  });

  it('withdraws the release when the upload is cut off', async () => {
    const data = randomBytes(8 * PIECE);
    const { req, answer } = startUpload('cut', '1', data);
    answer.catch(() => undefined);
    req.write(data.subarray(0, 3 * PIECE));
    await until('the release to be listed', async () => ((await api('/releases/cut/1')).status === 200 ? true : undefined), 10_000, 50);
    req.destroy();
    await until('the release to be withdrawn', async () => ((await api('/releases/cut/1')).status === 404 ? true : undefined), 10_000, 50);
    expect(await releasesOnDisk()).not.toContain('cut');
  });

  it('refuses before reading the artifact when the headers do not describe the body', async () => {
    const data = randomBytes(2 * PIECE);
    const claim = digestsOf(data);
    const res = await fetch(`${ctl.api}/releases?name=short&version=1`, {
      method: 'POST',
      headers: { ...authHeaders(), 'Content-Type': ANNOUNCED_UPLOAD_TYPE, 'X-Swarmship-Size': String(data.length), 'X-Swarmship-Piece-Length': String(PIECE), 'X-Swarmship-Sha256': claim.sha256 },
      body: Buffer.concat([claim.opening.subarray(0, 40), data]),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ field: 'Content-Length' });
    const odd = await fetch(`${ctl.api}/releases?name=odd&version=1`, {
      method: 'POST',
      headers: { ...authHeaders(), 'Content-Type': ANNOUNCED_UPLOAD_TYPE, 'X-Swarmship-Size': String(data.length), 'X-Swarmship-Piece-Length': '1000', 'X-Swarmship-Sha256': claim.sha256 },
      body: data,
    });
    expect(odd.status).toBe(400);
    expect(await odd.json()).toMatchObject({ field: 'X-Swarmship-Piece-Length' });
  });
});
