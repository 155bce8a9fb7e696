/** Structured logs: JSON lines for machines, one readable line per event on a terminal. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  format: 'json' | 'text';
  stream: NodeJS.WritableStream;
  /** Whether debug lines are written. */
  debug?: boolean;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions): Logger {
  const now = options.now ?? (() => new Date());
  const write = (level: string, message: string, fields: Record<string, unknown> = {}) => {
    if (level === 'debug' && !options.debug) return;
    const time = now().toISOString();
    if (options.format === 'json') {
      options.stream.write(`${JSON.stringify({ time, level, msg: message, ...fields })}\n`);
      return;
    }
    const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
    options.stream.write(`${time.slice(11, 19)} ${level.padEnd(5)} ${message}${extra.length ? `  ${extra.join(' ')}` : ''}\n`);
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    debug: (m, f) => write('debug', m, f),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
