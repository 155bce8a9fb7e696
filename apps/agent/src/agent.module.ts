import { Inject, Module, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { ReleaseAgent } from '../../../libs/agent-core/src/release-agent.js';
import { HealthController } from './health.controller.js';
import { RELEASE_AGENT } from './tokens.js';

/** Starts the agent with the application and stops it (announce stopped, flush, close) with it. */
export class AgentLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(RELEASE_AGENT) private readonly agent: ReleaseAgent) {}

  onApplicationBootstrap(): Promise<void> {
    return this.agent.start();
  }

  onApplicationShutdown(): Promise<void> {
    return this.agent.stop();
  }
}

@Module({})
export class AgentModule {
  static forAgent(agent: ReleaseAgent): DynamicModule {
    return {
      module: AgentModule,
      controllers: [HealthController],
      providers: [{ provide: RELEASE_AGENT, useValue: agent }, AgentLifecycle],
    };
  }
}
