import type { LoggerService } from '@nestjs/common';
import type { AgentLog } from '../../../libs/agent-core/src/release-agent.js';

/** JSON lines when the output is not a terminal (collectors read them), readable lines when it is. */
export function agentLog(out: NodeJS.WritableStream & { isTTY?: boolean }, json = out.isTTY !== true): AgentLog {
  const write = (level: string, event: string, fields: Record<string, unknown> = {}) => {
    const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    if (json) {
      out.write(JSON.stringify({ time: new Date().toISOString(), level, event, ...defined }) + '\n');
      return;
    }
    const rest = Object.entries(defined).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
    out.write(`${new Date().toISOString().slice(11, 19)} ${level.padEnd(5)} ${event}${rest ? ' ' + rest : ''}\n`);
  };
  return {
    info: (event, fields) => write('info', event, fields),
    warn: (event, fields) => write('warn', event, fields),
    error: (event, fields) => write('error', event, fields),
  };
}

/** NestJS's own messages through the same log; its start-up chatter stays out. */
export function nestLogger(log: AgentLog): LoggerService {
  const text = (m: unknown) => (m instanceof Error ? m.message : typeof m === 'string' ? m : JSON.stringify(m));
  return {
    log: () => undefined,
    warn: (m: unknown, context?: string) => log.warn('nest', { context, message: text(m) }),
    error: (m: unknown, _trace?: string, context?: string) => log.error('nest', { context, message: text(m) }),
  };
}
