import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { withoutHidden } from '@agentmeter/domain';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import { ViewPolicy } from '../tenants/view.policy';

/**
 * Applies the field policy (libs/domain field-policy.ts) to every answer of an authenticated request, before
 * it becomes CSV (this interceptor is registered after CsvInterceptor, so it runs inside it). Services build
 * their answers for the caller's view already; this is the one place that guarantees no hidden field leaves,
 * whatever a service forgot. Streams apply the same function to each event (run-stream.service.ts).
 */
@Injectable()
export class FieldPolicyInterceptor implements NestInterceptor {
  constructor(private readonly views: ViewPolicy) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().principal;
    if (!principal) return next.handle();
    const hidden = await this.views.hiddenFor(principal);
    if (hidden.size === 0) return next.handle();
    return next.handle().pipe(map((body: unknown) => withoutHidden(body, hidden)));
  }
}
