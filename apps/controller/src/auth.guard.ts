import { SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { bearerToken, ControllerError, secretsEqual } from '../../../libs/controller-core/src/index.js';
import { PUBLIC_ROUTE } from './tokens.js';

/** Marks a route (health, metrics) as answering without a token. */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/**
 * Every HTTP route needs `Authorization: Bearer <API token>` unless marked @Public():
 * a route added later is protected without anyone remembering to. Agent-channel calls
 * carry their own token and are checked by the core.
 */
export class BearerAuthGuard implements CanActivate {
  constructor(
    private readonly token: string,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<IncomingMessage>();
    const presented = bearerToken(req.headers.authorization);
    if (presented === undefined) throw new ControllerError('unauthorized', 'this route needs an Authorization: Bearer <token> header');
    if (!secretsEqual(presented, this.token)) throw new ControllerError('unauthorized', 'the bearer token is not valid');
    return true;
  }
}
