import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import type { Logger } from 'pino';

/** Domain error codes and the HTTP status each maps to. */
const STATUS_BY_CODE: Record<string, number> = {
  INVALID_REQUEST: HttpStatus.BAD_REQUEST,
  UNAUTHENTICATED: HttpStatus.UNAUTHORIZED,
  NOT_FOUND: HttpStatus.NOT_FOUND,
  CONFLICT: HttpStatus.CONFLICT,
  UNPROCESSABLE: HttpStatus.UNPROCESSABLE_ENTITY,
  REBUILDING: HttpStatus.SERVICE_UNAVAILABLE,
  INVALID_MONEY: HttpStatus.BAD_REQUEST,
};

/**
 * The one error convention of cost-cap's HTTP API: RFC 9457 problem+json. Domain errors map by code (a
 * 503 while counters rebuild carries Retry-After); a 500 carries an error id that is in the log, and never
 * the internals.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const code = (error as { code?: unknown }).code;
    let status: number;
    let detail: string;
    let extra: Record<string, unknown> = {};
    if (typeof code === 'string' && STATUS_BY_CODE[code]) {
      status = STATUS_BY_CODE[code];
      detail = (error as Error).message;
      extra = { code };
      if (code === 'REBUILDING') response.setHeader('Retry-After', '1');
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
      .json({ type: 'about:blank', title: HttpStatus[status] ?? 'Error', status, detail, ...extra });
  }
}
