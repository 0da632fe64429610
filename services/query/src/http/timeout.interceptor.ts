import {
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { type Observable, throwError, timeout } from 'rxjs';
import { QueryConfig } from '../config';
import { TimeoutError } from '../errors/problems';

const LONG_LIVED = 'agentmeter:long-lived';

/** Marks a handler whose answer is long-lived by design (Server-Sent Events): no request timeout. */
export const LongLived = () => SetMetadata(LONG_LIVED, true);

/**
 * A request that has not produced its answer within QUERY_REQUEST_TIMEOUT_MS answers 503 with Retry-After.
 * The database enforces the same budget per statement (statement_timeout), so the work stops too.
 */
@Injectable()
export class TimeoutInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    @Inject(QueryConfig) private readonly config: QueryConfig,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (this.reflector.get<boolean>(LONG_LIVED, context.getHandler())) return next.handle();
    const ms = this.config.QUERY_REQUEST_TIMEOUT_MS;
    return next
      .handle()
      .pipe(timeout({ first: ms, with: () => throwError(() => new TimeoutError(`no answer within ${ms} ms`)) }));
  }
}
