import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { SigningKeyInfo } from '../../../libs/contracts/src/rest.js';
import type { ControllerCore } from '../../../libs/controller-core/src/index.js';
import { apiErrorSchema, signingKeySchema } from './openapi.js';
import { CORE } from './tokens.js';

@ApiTags('signing')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'No bearer token, or a wrong one.', schema: apiErrorSchema })
@Controller('signing-key')
export class SigningKeyController {
  constructor(@Inject(CORE) private readonly core: ControllerCore) {}

  @Get()
  @ApiOperation({
    summary: 'The public key release manifests are signed with',
    description:
      "Give its PEM to every agent (--trust-key FILE, SWARMSHIP_TRUST_KEY or trustKeys): agents refuse a release whose manifest this key (or another they trust) did not sign. " +
      'The same PEM is in <data>/signing-key.pub.pem and printed by `swarmship controller --print-public-key`.',
  })
  @ApiResponse({ status: 200, schema: signingKeySchema })
  get(): SigningKeyInfo {
    return this.core.signingKeyInfo();
  }
}
