import { createHash } from 'node:crypto';
import { type ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { AuthenticatedRequest } from '../auth/auth.guard';

/**
 * A rate limit per credential (not per route, not per IP): QUERY_RATE_LIMIT requests per
 * QUERY_RATE_WINDOW_MS for each JWT subject or API key, answered 429 with Retry-After beyond it. Runs after
 * AuthGuard (registered after it), so it knows the credential; open routes (health, metrics) are not limited.
 * The counters are shared by the replicas in Redis (SharedRateLimitStorage); their keys hold a hash of the
 * credential, not the subject itself.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return !context.switchToHttp().getRequest<AuthenticatedRequest>().principal;
  }

  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const principal = (request as unknown as AuthenticatedRequest).principal!;
    return `${principal.tenantId}\u0000${principal.credential}`;
  }

  protected override generateKey(_context: ExecutionContext, tracker: string, name: string): string {
    return createHash('sha256').update(`${name}\u0000${tracker}`).digest('base64url');
  }
}
