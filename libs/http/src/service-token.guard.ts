import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { DisabledError, UnauthenticatedError } from './problem';

/** The metadata key of @Public(), read by every service's guard. */
export const PUBLIC_ROUTE = 'agentmeter:public';
/** Marks what needs no credential (health, metrics, the OpenAPI document, sign-in). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The shared secret a service's internal API requires, and the setting it comes from. */
export interface ServiceToken {
  /** The environment variable, named in the answer when it is not set. */
  setting: string;
  value: string | undefined;
}
export const SERVICE_TOKEN = Symbol('SERVICE_TOKEN');

/**
 * `Authorization: Bearer <token>` of a service-to-service API (cost-cap's, alert's): a shared secret between
 * the service and its callers (the Coordinator, the query API after its own role checks). Compared in
 * constant time over digests, so neither content nor length leaks. Routes marked @Public() pass; without a
 * configured token every other route answers 503 naming the setting (docs/security.md).
 */
@Injectable()
export class ServiceTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(
    private readonly reflector: Reflector,
    @Inject(SERVICE_TOKEN) private readonly token: ServiceToken,
  ) {
    this.expected = token.value ? digest(token.value) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()]))
      return true;
    if (!this.expected) throw new DisabledError(`this API is disabled: ${this.token.setting} is not configured`);
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new UnauthenticatedError('missing bearer token');
    if (!timingSafeEqual(digest(match[1]!), this.expected)) throw new UnauthenticatedError('invalid token');
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
