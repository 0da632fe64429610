import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import type { Logger } from 'pino';

/** Domain error codes and the HTTP status each maps to. */
const STATUS_BY_CODE: Record<string, number> = {
  UNAUTHENTICATED: HttpStatus.UNAUTHORIZED,
  NOT_FOUND: HttpStatus.NOT_FOUND,
  INVALID_REQUEST: HttpStatus.BAD_REQUEST,
  TARGET_REFUSED: HttpStatus.BAD_REQUEST,
  DISABLED: HttpStatus.SERVICE_UNAVAILABLE,
};

export class NotFoundError extends Error {
  readonly code = 'NOT_FOUND';
}
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST';
}
export class UnauthenticatedError extends Error {
  readonly code = 'UNAUTHENTICATED';
}
/** A feature whose configuration is missing (no API token, no encryption key). */
export class DisabledError extends Error {
  readonly code = 'DISABLED';
}

/**
 * RFC 9457 problem+json for every error. Domain errors map by code; a 500 carries an error id that is in
 * the log, and never the internals.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const code = (error as { code?: unknown }).code;
    let status: number;
    let detail: string;
    if (typeof code === 'string' && STATUS_BY_CODE[code]) {
      status = STATUS_BY_CODE[code];
      detail = (error as Error).message;
    } else if (error instanceof HttpException) {
      status = error.getStatus();
      const body = error.getResponse();
      detail = typeof body === 'string' ? body : String((body as { message?: unknown }).message ?? error.message);
    } else {
      status = HttpStatus.INTERNAL_SERVER_ERROR;
      const errorId = randomUUID();
      this.logger.error({ err: error, error_id: errorId }, 'unhandled error');
      response.status(status).type('application/problem+json').json({
        type: 'about:blank',
        title: 'Internal Server Error',
        status,
        detail: 'internal error',
        error_id: errorId,
      });
      return;
    }
    response
      .status(status)
      .type('application/problem+json')
      .json({ type: 'about:blank', title: HttpStatus[status] ?? 'Error', status, detail, ...(code ? { code } : {}) });
  }
}
