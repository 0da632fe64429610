import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AlertConfig } from '../config';
import { UnauthenticatedError } from '@agentmeter/http';
import { DisabledError } from '../errors/problems';

/**
 * The admin API and Alertmanager's webhook need `Authorization: Bearer <ALERT_API_TOKEN>`. The query API
 * proxies to it after its own role checks; nothing else should reach these routes.
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(@Inject(AlertConfig) config: AlertConfig) {
    this.expected = config.ALERT_API_TOKEN ? digest(config.ALERT_API_TOKEN) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) throw new DisabledError('admin API disabled: ALERT_API_TOKEN is not configured');
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new UnauthenticatedError('missing bearer token');
    // Compare digests: equal lengths, constant time.
    if (!timingSafeEqual(digest(match[1]!), this.expected)) throw new UnauthenticatedError('invalid token');
    return true;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
