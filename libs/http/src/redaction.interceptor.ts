import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest as Request } from 'fastify';
import type { Observable } from 'rxjs';
import { Redactor } from '@agentmeter/domain';

const KEPT_FIELDS = 'agentmeter:redaction-kept-fields';

/**
 * Top-level body fields a route needs as sent, because they are a destination or a credential the service
 * protects itself (an alert contact's address, its encrypted webhook URL and signing secret).
 */
export const KeepBodyFields = (...fields: string[]) => SetMetadata(KEPT_FIELDS, fields);

/**
 * The redaction step of every HTTP write: before a handler's pipes read them, the request body and path
 * parameters pass the one redaction pass (secrets and personal data removed from reasons, names, notes;
 * actors, user ids and other identifiers pseudonymised), so no service stores, logs or forwards them.
 * Validation (the zod pipes) then sees the redacted values. docs/security.md "Redaction and
 * pseudonymisation".
 */
@Injectable()
export class RedactionInterceptor implements NestInterceptor {
  constructor(
    private readonly redactor: Redactor,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() === 'http') this.redact(context.switchToHttp().getRequest<Request>(), context);
    return next.handle();
  }

  private redact(request: Request, context: ExecutionContext): void {
    const params = request.params as Record<string, string> | undefined;
    if (params && Object.keys(params).length > 0) request.params = this.redactor.value(params).value;
    const body: unknown = request.body;
    if (typeof body !== 'object' || body === null || Buffer.isBuffer(body)) return;
    const kept = this.reflector.get<string[] | undefined>(KEPT_FIELDS, context.getHandler()) ?? [];
    const redacted = this.redactor.value(body).value as Record<string, unknown>;
    if (redacted === body || kept.length === 0 || Array.isArray(body)) {
      request.body = redacted;
      return;
    }
    const restored = { ...redacted };
    for (const field of kept)
      if (Object.hasOwn(body, field)) restored[field] = (body as Record<string, unknown>)[field];
    request.body = restored;
  }
}
