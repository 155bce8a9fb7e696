import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { NestFactory } from '@nestjs/core';
import { AgentConfigError, parseConfigFile, resolveAgentConfig, type AgentConfig, type RawSettings } from '../../../libs/agent-core/src/config.js';
import { ReleaseAgent, type AgentLog } from '../../../libs/agent-core/src/release-agent.js';
import { AgentModule } from './agent.module.js';
import { TcpControllerChannel } from './controller-channel.js';
import { agentLog, nestLogger } from './log.js';

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
  const app = await NestFactory.create(AgentModule.forAgent(agent), { logger: nestLogger(log), abortOnError: false });
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
  log.info('http-listening', { port: httpPort, endpoints: ['/metrics', '/healthz', '/readyz'] });
  return { agent, httpPort, close: () => app.close() };
}
