import { join } from 'node:path';
import { startCli, type RunningCli } from './cli.js';
import { freePort } from './swarm.js';

export interface AgentUnderTest {
  cli: RunningCli;
  name: string;
  dataDir: string;
  httpPort: number;
  peerPort: number;
  releaseDir(name: string, version: string): string;
  metrics(): Promise<string>;
}

export interface AgentProcessOptions {
  name: string;
  dataDir: string;
  controllerPort: number;
  token: string;
  extra?: string[];
  httpPort?: number;
  peerPort?: number;
  /** PEM files of the keys releases must be signed with: a controller's signing-key.pub.pem, or a test signer's. */
  trustKeys?: string[];
  /** Start without a trusted key, checking no signature; a test says so or gives trustKeys. */
  allowUnsigned?: boolean;
}

/** Runs `swarmship agent` on loopback with its own ports and data dir; resolves once it serves HTTP. */
export async function startAgentProcess(opts: AgentProcessOptions): Promise<AgentUnderTest> {
  const trust = (opts.trustKeys ?? []).flatMap((k) => ['--trust-key', k]);
  if (trust.length === 0 && opts.allowUnsigned !== true) {
    throw new Error("startAgentProcess: agents refuse to start without a trusted key; pass trustKeys (a controller's publicKeyFile, or a test signer's) or allowUnsigned: true");
  }
  const httpPort = opts.httpPort ?? (await freePort('127.0.0.1'));
  const peerPort = opts.peerPort ?? (await freePort('127.0.0.1'));
  const cli = startCli(
    ['agent', '--controller', `tcp://127.0.0.1:${opts.controllerPort}`, '--name', opts.name, '--data', opts.dataDir, '--peer-port', String(peerPort), '--http-port', String(httpPort),
      '--listen-host', '127.0.0.1', '--json', ...trust, ...(opts.allowUnsigned === true ? ['--allow-unsigned'] : []), ...(opts.extra ?? [])],
    { SWARMSHIP_AGENT_TOKEN: opts.token, SWARMSHIP_CONFIG: '', SWARMSHIP_CONTROLLER: '', SWARMSHIP_TRUST_KEY: '', SWARMSHIP_ALLOW_UNSIGNED: '' },
  );
  await cli.waitFor((e) => e.event === 'http-listening', 20_000);
  return {
    cli,
    name: opts.name,
    dataDir: opts.dataDir,
    httpPort,
    peerPort,
    releaseDir: (name, version) => join(opts.dataDir, 'releases', name, version),
    metrics: async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text(),
  };
}

/** Metric samples from Prometheus text, checking every line's syntax on the way. */
export function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.e+-]+|[Nn][Aa][Nn]|\+Inf|-Inf)( \d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}
