import type { LoggerService } from '@nestjs/common';
import type { Logger } from '../../../libs/controller-core/src/index.js';

/** Nest's own messages into our log; its start-up chatter (mapped routes, modules) at debug. */
export class NestLogger implements LoggerService {
  constructor(private readonly out: Logger) {}

  log(message: unknown, context?: string): void {
    this.out.debug(String(message), context ? { context } : {});
  }
  error(message: unknown, stackOrContext?: string, context?: string): void {
    this.out.error(String(message), { context: context ?? stackOrContext });
  }
  warn(message: unknown, context?: string): void {
    this.out.warn(String(message), context ? { context } : {});
  }
  debug(message: unknown, context?: string): void {
    this.out.debug(String(message), context ? { context } : {});
  }
  verbose(message: unknown, context?: string): void {
    this.out.debug(String(message), context ? { context } : {});
  }
}
