import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { ServerResponse } from 'node:http';
import type { ControllerCore, ControllerMetrics } from '../../../libs/controller-core/src/index.js';
import { Public } from './auth.guard.js';
import { CORE, METRICS } from './tokens.js';

/** Probes and metrics: unauthenticated, outside /api/v1, as Kubernetes and Prometheus expect. */
@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  constructor(
    @Inject(CORE) private readonly core: ControllerCore,
    @Inject(METRICS) private readonly metrics: ControllerMetrics,
  ) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: releases loaded and seeded (503 until then)' })
  readyz(@Res() res: ServerResponse): void {
    const ready = this.core.ready;
    res.statusCode = ready ? 200 : 503;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ status: ready ? 'ready' : 'starting' }));
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  async metricsText(@Res() res: ServerResponse): Promise<void> {
    const text = await this.metrics.text();
    res.statusCode = 200;
    res.setHeader('Content-Type', this.metrics.contentType);
    res.end(text);
  }
}
