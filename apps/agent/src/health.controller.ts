import { Controller, Get, Header, HttpException, HttpStatus, Inject } from '@nestjs/common';
import type { ReleaseAgent } from '../../../libs/agent-core/src/release-agent.js';
import { RELEASE_AGENT } from './tokens.js';

/** /metrics, /healthz and /readyz on the agent's own small HTTP port. */
@Controller()
export class HealthController {
  constructor(@Inject(RELEASE_AGENT) private readonly agent: ReleaseAgent) {}

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.agent.metrics.text();
  }

  @Get('healthz')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready once the engine listens and what was held before is served; the controller may still be away. */
  @Get('readyz')
  readyz(): { status: 'ready'; controller: 'connected' | 'not-yet' } {
    if (!this.agent.ready) throw new HttpException({ status: 'starting' }, HttpStatus.SERVICE_UNAVAILABLE);
    return { status: 'ready', controller: this.agent.synced ? 'connected' : 'not-yet' };
  }
}
