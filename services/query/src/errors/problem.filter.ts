import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

/** Domain error codes and the HTTP status each maps to. */
const STATUS_BY_CODE: Record<string, number> = {
  UNAUTHENTICATED: HttpStatus.UNAUTHORIZED,
  FORBIDDEN: HttpStatus.FORBIDDEN,
  NOT_FOUND: HttpStatus.NOT_FOUND,
  INVALID_REQUEST: HttpStatus.BAD_REQUEST,
  AMBIGUOUS: HttpStatus.CONFLICT,
  CONFLICT: HttpStatus.CONFLICT,
  TIMEOUT: HttpStatus.SERVICE_UNAVAILABLE,
  UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  UPSTREAM_FAILED: HttpStatus.BAD_GATEWAY,
};

/** PostgreSQL's "canceling statement due to statement timeout". */
const PG_QUERY_CANCELED = '57014';

export class NotFoundError extends Error {
  readonly code = 'NOT_FOUND';
}
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST';
}
export class ForbiddenError extends Error {
  readonly code = 'FORBIDDEN';
}
export class ConflictError extends Error {
  readonly code = 'CONFLICT';
}
export class TimeoutError extends Error {
  readonly code = 'TIMEOUT';
}
export class UnavailableError extends Error {
  readonly code = 'UNAVAILABLE';
}
/** The service that owns an action refused or failed it; `upstreamStatus` is what it answered. */
export class UpstreamFailedError extends Error {
  readonly code = 'UPSTREAM_FAILED';
  constructor(
    message: string,
    readonly upstreamStatus: number | null,
  ) {
    super(message);
  }
}

/**
 * The one error convention of the HTTP API: RFC 9457 problem+json. Domain errors map by code; a 500
 * carries an error id that is in the log, and never the internals.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && STATUS_BY_CODE[code]) {
      const status = STATUS_BY_CODE[code];
      if (status === HttpStatus.SERVICE_UNAVAILABLE) response.setHeader('Retry-After', '1');
      return sendProblem(response, status, (error as Error).message);
    }
    if (code === PG_QUERY_CANCELED) {
      response.setHeader('Retry-After', '1');
      return sendProblem(response, HttpStatus.SERVICE_UNAVAILABLE, 'the query took longer than the request timeout');
    }
    if (error instanceof HttpException) {
      const body = error.getResponse();
      const detail = typeof body === 'string' ? body : String((body as { message?: unknown }).message ?? error.message);
      return sendProblem(response, error.getStatus(), detail);
    }
    const status = HttpStatus.INTERNAL_SERVER_ERROR;
    const errorId = randomUUID();
    this.logger.error({ err: error, error_id: errorId }, 'unhandled error');
    sendProblem(response, status, 'internal error', { error_id: errorId });
  }
}

export function sendProblem(response: Response, status: number, detail: string, extra: object = {}): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  response
    .status(status)
    .type('application/problem+json')
    .json({ type: 'about:blank', title: HttpStatus[status] ?? 'Error', status, detail, ...extra });
}

/**
 * Express error handler for what fails before Nest routes a request: the body parser's 413 (body over the
 * limit) and 400 (malformed JSON).
 */
export function bodyErrorHandler(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const detail =
      status === 413
        ? `request body larger than the limit of ${(error as { limit?: number }).limit ?? '?'} bytes`
        : `malformed request body: ${(error as Error).message}`;
    return sendProblem(res, status, detail);
  }
  next(error);
}
