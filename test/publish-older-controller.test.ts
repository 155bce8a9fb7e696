/**
 * `swarmship publish` against a controller from before pieces-first uploads: such a
 * controller refuses the content type (400, field Content-Type), and the CLI uploads the
 * artifact plainly instead. The older controller is the real one behind a proxy that
 * refuses that one content type the way it did; everything else reaches it unchanged.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOUNCED_UPLOAD_TYPE, type ApiError, type ReleaseStatus } from '../libs/contracts/src/rest.js';
import { startCli } from './helpers/cli.js';
import { API_TOKEN, authHeaders, startControllerProcess, tempDataDir, type ControllerUnderTest } from './helpers/controller-process.js';

describe('publish against a controller that does not take piece digests first', () => {
  let data: Awaited<ReturnType<typeof tempDataDir>>;
  let ctl: ControllerUnderTest;
  let proxy: Server;
  let proxyUrl: string;
  const refused: string[] = [];

  beforeAll(async () => {
    data = await tempDataDir();
    ctl = await startControllerProcess(join(data.dir, 'controller'));
    const target = new URL(ctl.base);
    proxy = createServer((req, res) => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type === ANNOUNCED_UPLOAD_TYPE) {
        refused.push(`${req.method} ${req.url}`);
        const body: ApiError = { statusCode: 400, error: 'Bad Request', message: `Content-Type: '${type}' is not accepted`, field: 'Content-Type' };
        // Answered once the body is in: answered and closed mid-upload, the CLI's next
        // write can fail (EPIPE) before it reads the answer, a race this test is not about.
        req.resume();
        req.on('end', () => res.writeHead(400, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify(body)));
        return;
      }
      const forward = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  }, 60_000);

  afterAll(async () => {
    await new Promise((r) => (proxy ? proxy.close(r) : r(undefined)));
    await ctl?.stop();
    await data?.remove();
  });

  it('falls back to a plain upload, says so, and the release is published whole', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const artifact = join(data.dir, 'app.bin');
    await writeFile(artifact, bytes);
    const publish = startCli(['publish', artifact, '--name', 'app', '--version', '7', '--url', proxyUrl, '--token', API_TOKEN]);
    expect(await publish.exited, publish.stderr()).toBe(0);
    expect(refused).toEqual(['POST /api/v1/releases?name=app&version=7&filename=app.bin']);
    expect(publish.stderr()).toContain('uploading the artifact plainly');
    const status = (await (await fetch(`${ctl.api}/releases/app/7`, { headers: authHeaders() })).json()) as ReleaseStatus;
    expect(status.bytes).toBe(bytes.length);
  }, 60_000);
});
