import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import type { ControllerCore, ControllerMetrics } from '../../../libs/controller-core/src/index.js';
import { AgentChannelController } from './agent-channel.controller.js';
import { AgentsController } from './agents.controller.js';
import { BearerAuthGuard } from './auth.guard.js';
import { HealthController } from './health.controller.js';
import { ReleasesController } from './releases.controller.js';
import { SigningKeyController } from './signing-key.controller.js';
import { CORE, METRICS } from './tokens.js';

/** The controller app: the core and metrics made outside Nest, handed in as values. */
@Module({})
export class ControllerAppModule {
  static forRoot(core: ControllerCore, metrics: ControllerMetrics): DynamicModule {
    return {
      module: ControllerAppModule,
      controllers: [ReleasesController, AgentsController, SigningKeyController, HealthController, AgentChannelController],
      providers: [
        { provide: CORE, useValue: core },
        { provide: METRICS, useValue: metrics },
        { provide: APP_GUARD, useFactory: (reflector: Reflector) => new BearerAuthGuard(core.config.token, reflector), inject: [Reflector] },
      ],
    };
  }
}
