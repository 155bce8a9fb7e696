import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { NestFactory } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentConfigError, parseConfigFile, resolveAgentConfig, type AgentConfig, type RawSettings } from '../../../libs/agent-core/src/config.js';
import { ReleaseAgent, type AgentLog } from '../../../libs/agent-core/src/release-agent.js';
import { AgentModule } from './agent.module.js';
import { TcpControllerChannel } from './controller-channel.js';
import { agentLog, nestLogger } from './log.js';
import { BoundedExpressAdapter, routeTable, type HttpLimits } from '../../controller/src/bounded-http.js';

/**
 * The agent's HTTP port serves three small GETs to probes and scrapers on the node's
 * network: nothing there needs a body, long headers or a slow client.
 */
export const AGENT_HTTP_LIMITS: HttpLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
};

/** Settings from flags, environment and the YAML file named by --config or SWARMSHIP_CONFIG. */
export async function loadAgentConfig(flags: RawSettings & { config?: string }, env: NodeJS.ProcessEnv): Promise<AgentConfig> {
  const path = flags.config ?? (env.SWARMSHIP_CONFIG || undefined);
  let file: RawSettings | undefined;
  if (path !== undefined) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new AgentConfigError(flags.config !== undefined ? '--config' : 'SWARMSHIP_CONFIG', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    file = parseConfigFile(text, path);
  }
  const { config: _config, ...rest } = flags;
  return resolveAgentConfig({ flags: rest, env, file, fileName: path });
}

export interface RunningAgent {
  agent: ReleaseAgent;
  httpPort: number;
  close(): Promise<void>;
}

/** The agent as a NestJS application: the HTTP endpoints plus the agent's lifecycle. */
export async function startAgentApp(config: AgentConfig, log: AgentLog = agentLog(process.stdout)): Promise<RunningAgent> {
  const agent = new ReleaseAgent(config, new TcpControllerChannel(config.controller), log);
  const app = await NestFactory.create(AgentModule.forAgent(agent), new BoundedExpressAdapter(AGENT_HTTP_LIMITS), { logger: nestLogger(log), abortOnError: false, bodyParser: false });
  // Only GET and HEAD exist here; anything else is refused before routing, and the
  // connection closed so a body sent with it is never read.
  app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    res.writeHead(405, { Allow: 'GET, HEAD', Connection: 'close', 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ statusCode: 405, error: 'Method Not Allowed' }));
  });
  try {
    await app.init();
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  try {
    await app.listen(config.httpPort, config.listenHost ?? '0.0.0.0');
  } catch (err) {
    await app.close().catch(() => undefined);
    throw new Error(`cannot listen for HTTP on port ${config.httpPort}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const address = app.getHttpServer().address() as { port: number } | string | null;
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  // The routes as registered, not as remembered: the log is where an extra one would show.
  const endpoints = routeTable(app.getHttpAdapter().getInstance()).map((r) => `${r.method} ${r.path}`);
  log.info('http-listening', { port: httpPort, endpoints });
  return { agent, httpPort, close: () => app.close() };
}
