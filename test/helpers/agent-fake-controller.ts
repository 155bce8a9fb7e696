/**
 * A small controller that speaks the real agent channel (the TCP transport of
 * @nestjs/microservices, the contract's patterns and shapes): it checks the agent
 * token, long-polls sync on a revision, and records every holding agents report. It
 * serves whatever desired state the test sets; it is not the product's controller.
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServerTCP } from '@nestjs/microservices';
import { throwError } from 'rxjs';
import { generateSigningKey, type SigningKey } from '../../libs/signing/src/keys.js';
import { signManifest, type ReleaseManifest } from '../../libs/signing/src/manifest.js';
import { sha256OfFile } from './swarm.js';
import {
  AgentPatterns,
  type AgentProgressReport,
  type AgentSyncRequest,
  type AgentSyncResponse,
  type DesiredRelease,
  type Holding,
} from '../../libs/contracts/src/agent-channel.js';

export class FakeController {
  revision = 1;
  desired: DesiredRelease[] = [];
  readonly holdings = new Map<string, Holding[]>();
  readonly refused: string[] = [];
  readonly progressReports: AgentProgressReport[] = [];
  private readonly wakers = new Set<() => void>();
  private server: ServerTCP | undefined;
  port = 0;

  constructor(
    private readonly token: string,
    private readonly settings: { origin: { host: string; port: number }; announceUrl: string; retireGraceSeconds: number },
  ) {}

  async start(port: number): Promise<void> {
    const server = new ServerTCP({ host: '127.0.0.1', port });
    server.addHandler(AgentPatterns.sync, async (data: AgentSyncRequest) => this.sync(data), false);
    server.addHandler(AgentPatterns.progress, async (data: AgentProgressReport) => this.progress(data), false);
    await new Promise<void>((resolve, reject) => server.listen((err?: unknown) => (err ? reject(err as Error) : resolve())));
    this.server = server;
    this.port = port;
  }

  setDesired(desired: DesiredRelease[]): void {
    this.desired = desired;
    this.revision++;
    for (const wake of this.wakers) wake();
  }

  private refuse(token: string, who: string) {
    this.refused.push(who);
    return throwError(() => ({ error: 'unauthorized', message: token ? 'wrong agent token' : 'agent token missing' }));
  }

  private async sync(req: AgentSyncRequest) {
    if (req.token !== this.token) return this.refuse(req.token, req.agent?.name ?? '?');
    this.holdings.set(req.agent.name, req.holdings);
    if (req.knownRevision === this.revision) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(req.waitMs, 5000));
        this.wakers.add(wake);
      });
    }
    const response: AgentSyncResponse = {
      revision: this.revision,
      desired: this.desired,
      announceUrl: this.settings.announceUrl,
      origin: this.settings.origin,
      retireGraceSeconds: this.settings.retireGraceSeconds,
    };
    return response;
  }

  private async progress(report: AgentProgressReport) {
    if (report.token !== this.token) return this.refuse(report.token, report.agentName);
    this.progressReports.push(report);
    this.holdings.set(report.agentName, report.holdings);
    return { ok: true };
  }

  holding(agent: string, name: string, version: string): Holding | undefined {
    return this.holdings.get(agent)?.find((h) => h.name === name && h.version === version);
  }

  /** Resolves with the agent's holding once `pred` holds for it. */
  async waitForHolding(agent: string, name: string, version: string, pred: (h: Holding | undefined) => boolean, timeoutMs = 30_000): Promise<Holding | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const h = this.holding(agent, name, version);
      if (pred(h)) return h;
      if (Date.now() > deadline) throw new Error(`${agent} never reported ${name}@${version} as expected; last: ${JSON.stringify(h)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    for (const wake of this.wakers) wake();
    await this.server?.close();
  }
}

/** A signing key as a controller holds it, with its public half in a file agents are pointed at. */
export interface TestSigner {
  key: SigningKey;
  publicKeyFile: string;
}

export async function makeSigner(dir: string, name = 'controller'): Promise<TestSigner> {
  const { key } = generateSigningKey();
  const publicKeyFile = join(dir, `${name}.pub.pem`);
  await writeFile(publicKeyFile, key.publicPem);
  return { key, publicKeyFile };
}

/**
 * `d` with the manifest the product's controller would send: name, version, info hash,
 * the SHA-256 and size of `content` (a single-file artifact) and `d`'s unpack, signed by `signer`.
 * `lie` replaces manifest fields after they were computed, to forge one.
 */
export async function signRelease(d: DesiredRelease, content: string, signer: TestSigner, lie: Partial<ReleaseManifest> = {}): Promise<DesiredRelease> {
  const manifest: ReleaseManifest = {
    name: d.name,
    version: d.version,
    infoHash: d.infoHash.toLowerCase(),
    sha256: await sha256OfFile(content),
    size: (await stat(content)).size,
    created: '2030-01-01T00:00:00.000Z',
    unpack: d.unpack === true,
    ...lie,
  };
  const signed = signManifest(manifest, signer.key);
  return { ...d, manifest: signed.manifest.toString('base64'), signature: signed.signature.toString('base64'), signingKey: signed.keyId };
}
