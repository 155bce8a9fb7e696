import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, type RunningCli } from './cli.js';

export const API_TOKEN = 'test-api-token-0123456789abcdef';
export const AGENT_TOKEN = 'test-agent-token-0123456789abcdef';

export interface ControllerUnderTest {
  cli: RunningCli;
  dataDir: string;
  base: string;
  api: string;
  /** host and port of the agent channel. */
  channel: { host: string; port: number };
  announce: string;
  /** <data>/signing-key.pub.pem: what agents are given with --trust-key. */
  publicKeyFile: string;
  stop(): Promise<number | null>;
}

/** A fresh data dir for one test file; removed by the returned function. */
export async function tempDataDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'swarmship-controller-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Runs `swarmship controller` on loopback with free ports; resolves once it prints its addresses. */
export async function startControllerProcess(dataDir: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = { SWARMSHIP_TOKEN: API_TOKEN, SWARMSHIP_AGENT_TOKEN: AGENT_TOKEN }): Promise<ControllerUnderTest> {
  const cli = startCli(['controller', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--agent-port', '0', '--peer-port', '0', '--json', ...extraArgs], {
    // Empty counts as unset, so a token in the outer environment cannot leak into a test.
    SWARMSHIP_TOKEN: '',
    SWARMSHIP_AGENT_TOKEN: '',
    SWARMSHIP_CONFIG: '',
    SWARMSHIP_SIGNING_KEY: '',
    ...env,
  });
  const e = await cli.waitFor((ev) => ev['event'] === 'listening', 30_000);
  const api = String(e['api']);
  const [host, port] = String(e['agentChannel']).split(':');
  return {
    cli,
    dataDir,
    api,
    base: api.replace(/\/api\/v1$/, ''),
    channel: { host: host!, port: Number(port) },
    announce: String(e['announce']),
    publicKeyFile: String((e['signingKey'] as { publicKeyFile?: unknown } | undefined)?.publicKeyFile),
    stop: () => cli.stop(),
  };
}

export function authHeaders(token = API_TOKEN): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/**
 * Checks Prometheus text exposition format line by line; returns the sample names.
 * Throws naming the first line that is neither a comment nor a sample.
 */
export function parsePrometheusText(text: string): Set<string> {
  const names = new Set<string>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? [-+]?([0-9.eE+-]+|[Nn][Aa][Nn]|[Ii]nf)( -?\d+)?$/;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = sample.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    names.add(m[1]!);
  }
  return names;
}
