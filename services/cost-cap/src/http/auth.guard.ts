import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingHttpHeaders } from 'node:http';
import { CostCapConfig } from '../config';
import { UnauthenticatedError } from '@agentmeter/http';

const PUBLIC = 'agentmeter:public';
/** Marks what needs no credential (health, metrics, the OpenAPI document). */
export const Public = () => SetMetadata(PUBLIC, true);

/**
 * Every /v1 route needs "Authorization: Bearer <COST_CAP_API_TOKEN>": a shared secret between cost-cap and
 * its two callers, the Coordinator (admission) and the query API (overrides, which checks the operator's
 * role before it forwards). Compared in constant time over digests, so neither content nor length leaks.
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(
    private readonly reflector: Reflector,
    @Inject(CostCapConfig) config: CostCapConfig,
  ) {
    this.expected = digest(config.COST_CAP_API_TOKEN);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const header = context.switchToHttp().getRequest<{ headers: IncomingHttpHeaders }>().headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new UnauthenticatedError('missing bearer token');
    if (!timingSafeEqual(digest(match[1]!), this.expected)) throw new UnauthenticatedError('invalid token');
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
