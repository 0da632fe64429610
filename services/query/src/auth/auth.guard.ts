import {
  applyDecorators,
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { PERMISSIONS, scopeFor, type Permission } from '@agentmeter/domain';
import { ForbiddenError, Public, PUBLIC_ROUTE, UnauthenticatedError } from '@agentmeter/http';
import { ApiKeyVerifier, isApiKey } from './api-key.verifier';
import { type Caller } from './caller';
import { JwtVerifier } from './jwt.verifier';
import type { Principal } from './principal';

const PERMISSION = 'agentmeter:permission';

/** Marks a handler that needs no credential (the same marker as every service's, libs/http). */
export { Public };

/** The permission a handler needs (libs/domain query-access.ts; docs/security.md shows the matrix). */
export const Allow = (permission: Permission) => {
  const roles = Object.entries(PERMISSIONS[permission])
    .map(([role, scope]) => `${role}${scope === 'all' ? ' (all tenants)' : ''}`)
    .join(', ');
  return applyDecorators(
    SetMetadata(PERMISSION, permission),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'no valid credential' }),
    ApiForbiddenResponse({ description: `allowed roles: ${roles}` }),
  );
};

export type AuthenticatedRequest = FastifyRequest & { principal?: Principal; caller?: Caller };

/**
 * Global guard: every route needs a valid credential (a bearer JWT or an API key) unless marked @Public(),
 * and a role that its @Allow() permission grants. A route without either is refused: secure by default.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly jwt: JwtVerifier,
    private readonly apiKeys: ApiKeyVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const token = credentialOf(request);
    if (!token) throw new UnauthenticatedError('missing bearer token or API key');
    const principal = isApiKey(token) ? await this.apiKeys.verify(token) : await this.jwt.verify(token);
    request.principal = principal;
    const permission = this.reflector.getAllAndOverride<Permission | undefined>(PERMISSION, targets);
    if (!permission) throw new ForbiddenError('this route grants no role');
    const scope = scopeFor(principal.roles, permission);
    if (!scope) throw new ForbiddenError(`none of your roles may use ${permission}`);
    request.caller = { principal, permission, scope };
    return true;
  }
}

function credentialOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  const bearer = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (bearer) return bearer[1]!;
  const key = request.headers['x-api-key'];
  return typeof key === 'string' && key.length > 0 ? key : null;
}

/** The verified caller of the current request, with the tenant scope its roles give for the route. */
export const CurrentCaller = createParamDecorator((_: unknown, context: ExecutionContext): Caller => {
  const caller = context.switchToHttp().getRequest<AuthenticatedRequest>().caller;
  if (!caller) throw new UnauthenticatedError('no caller on request');
  return caller;
});
