import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { AgentSummary } from '../../../libs/contracts/src/rest.js';
import type { ControllerCore } from '../../../libs/controller-core/src/index.js';
import { agentSummarySchema, apiErrorSchema } from './openapi.js';
import { CORE } from './tokens.js';

@ApiTags('agents')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'No bearer token, or a wrong one.', schema: apiErrorSchema })
@Controller('agents')
export class AgentsController {
  constructor(@Inject(CORE) private readonly core: ControllerCore) {}

  @Get()
  @ApiOperation({ summary: 'Every agent the controller has heard from since it started, with what it holds' })
  @ApiResponse({ status: 200, schema: { type: 'array', items: agentSummarySchema } })
  list(): AgentSummary[] {
    return this.core.agents();
  }
}
