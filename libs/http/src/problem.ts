import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { unavailableDependency } from './unavailable';

/** How a domain error code is answered. */
export interface ProblemMapping {
  status: number;
  /** Answer with `Retry-After: 1` (the condition is expected to pass). */
  retryAfter?: boolean;
  /** The detail to show instead of the error's message. */
  detail?: string;
}

/** A domain error: its `code` decides the answer (see ProblemFilter); its message is the detail. */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class InvalidRequestError extends DomainError {
  constructor(message: string) {
    super('INVALID_REQUEST', message);
  }
}
export class UnauthenticatedError extends DomainError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}
export class ForbiddenError extends DomainError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}
export class NotFoundError extends DomainError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}
export class ConflictError extends DomainError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/** A feature whose configuration is missing (no API token, no encryption key): 503, naming the setting. */
export class DisabledError extends DomainError {
  constructor(message: string) {
    super('DISABLED', message);
  }
}

/** The codes every service shares; each adds its own. */
const COMMON_PROBLEMS: Readonly<Record<string, ProblemMapping>> = {
  INVALID_REQUEST: { status: HttpStatus.BAD_REQUEST },
  UNAUTHENTICATED: { status: HttpStatus.UNAUTHORIZED },
  FORBIDDEN: { status: HttpStatus.FORBIDDEN },
  NOT_FOUND: { status: HttpStatus.NOT_FOUND },
  CONFLICT: { status: HttpStatus.CONFLICT },
  DISABLED: { status: HttpStatus.SERVICE_UNAVAILABLE },
};

/** Seconds a client waits before retrying while PostgreSQL or Redis is unreachable. */
const DEPENDENCY_RETRY_AFTER_S = 2;

/**
 * The one error convention of AgentMeter's HTTP APIs: RFC 9457 problem+json. An error whose `code` is
 * mapped answers with that status, its message as the detail and the code; Nest's HTTP exceptions keep
 * their status; a lost connection to PostgreSQL or Redis (unavailable.ts) is a 503 with Retry-After and the
 * code DEPENDENCY_UNAVAILABLE; anything else is a 500 with an error id that is in the log, and never the
 * internals.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly problems: Readonly<Record<string, ProblemMapping>>;

  constructor(
    private readonly logger: Logger,
    problems: Readonly<Record<string, ProblemMapping>> = {},
  ) {
    this.problems = { ...COMMON_PROBLEMS, ...problems };
  }

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<FastifyReply>();
    if (isUnauthenticated(error)) {
      // The reason stays in the log: a caller learns only that its credential was not accepted.
      this.logger.debug({ reason: (error as Error).message }, 'credential refused');
      return sendUnauthenticated(response);
    }
    const code = (error as { code?: unknown }).code;
    const mapped = typeof code === 'string' && Object.hasOwn(this.problems, code) ? this.problems[code] : undefined;
    if (mapped) {
      if (mapped.retryAfter) setHeader(response, 'Retry-After', '1');
      return sendProblem(response, mapped.status, mapped.detail ?? (error as Error).message, { code });
    }
    if (error instanceof HttpException) {
      const body = error.getResponse();
      const detail = typeof body === 'string' ? body : String((body as { message?: unknown }).message ?? error.message);
      return sendProblem(response, error.getStatus(), detail);
    }
    const fastify = fastifyClientError(error);
    if (fastify) return sendProblem(response, fastify.status, fastify.detail);
    const dependency = unavailableDependency(error);
    if (dependency) {
      this.logger.warn({ err: error, dependency }, 'dependency unavailable, answered 503');
      setHeader(response, 'Retry-After', String(DEPENDENCY_RETRY_AFTER_S));
      return sendProblem(response, HttpStatus.SERVICE_UNAVAILABLE, `${dependency} is unavailable, retry later`, {
        code: 'DEPENDENCY_UNAVAILABLE',
      });
    }
    const errorId = randomUUID();
    this.logger.error({ err: error, error_id: errorId }, 'unhandled error');
    sendProblem(response, HttpStatus.INTERNAL_SERVER_ERROR, 'internal error', { error_id: errorId });
  }
}

/** Fastify's own 4xx errors (a body too large, an unsupported content type) before a route runs. */
function fastifyClientError(error: unknown): { status: number; detail: string } | null {
  const { code, statusCode, message } = (error ?? {}) as { code?: unknown; statusCode?: unknown; message?: unknown };
  if (typeof code !== 'string' || !code.startsWith('FST_') || typeof statusCode !== 'number') return null;
  if (statusCode < 400 || statusCode >= 500) return null;
  const detail =
    statusCode === 413
      ? 'request body larger than the limit'
      : statusCode === 415
        ? 'unsupported content type: send application/json'
        : `bad request: ${String(message)}`;
  return { status: statusCode, detail };
}

/** What every 401 answers (RFC 6750): the same header and detail whatever was wrong with the credential. */
const UNAUTHENTICATED_DETAIL = 'a valid bearer token or API key is required';
const WWW_AUTHENTICATE = 'Bearer error="invalid_token"';

function sendUnauthenticated(response: FastifyReply): void {
  if (!isSent(response)) setHeader(response, 'WWW-Authenticate', WWW_AUTHENTICATE);
  sendProblem(response, HttpStatus.UNAUTHORIZED, UNAUTHENTICATED_DETAIL);
}

function isUnauthenticated(error: unknown): boolean {
  if (error instanceof HttpException) return error.getStatus() === HttpStatus.UNAUTHORIZED;
  return (error as { code?: unknown } | null)?.code === 'UNAUTHENTICATED';
}

function isSent(response: FastifyReply): boolean {
  return response.sent;
}

function setHeader(response: FastifyReply, name: string, value: string): void {
  void response.header(name, value);
}

export function sendProblem(response: FastifyReply, status: number, detail: string, extra: object = {}): void {
  if (response.sent) return;
  const body = { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, ...extra };
  void response.code(status).type('application/problem+json').send(JSON.stringify(body));
}
