import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { AgentPatterns, type AgentSyncResponse } from '../../../libs/contracts/src/agent-channel.js';
import type { ChannelResult, ControllerCore } from '../../../libs/controller-core/src/index.js';
import { CORE } from './tokens.js';

/**
 * The agent channel (TCP microservice). A refusal travels as an RpcException whose error
 * is the contract's AgentChannelError, so the agent's `send()` fails with that object.
 */
@Controller()
export class AgentChannelController {
  constructor(@Inject(CORE) private readonly core: ControllerCore) {}

  @MessagePattern(AgentPatterns.sync)
  async sync(@Payload() msg: unknown): Promise<AgentSyncResponse> {
    return unwrap(await this.core.sync(msg));
  }

  @MessagePattern(AgentPatterns.progress)
  progress(@Payload() msg: unknown): { ok: true } {
    return unwrap(this.core.progress(msg));
  }
}

function unwrap<T>(result: ChannelResult<T>): T {
  if (!result.ok) throw new RpcException(result.error);
  return result.value;
}
