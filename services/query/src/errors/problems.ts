import { HttpStatus } from '@nestjs/common';
import type { ProblemMapping } from '@agentmeter/http';

/** Query's own domain errors (the common ones are in @agentmeter/http). */
export class TimeoutError extends Error {
  readonly code = 'TIMEOUT';
}
export class UnavailableError extends Error {
  readonly code = 'UNAVAILABLE';
}
/** A credential already holds STREAM_MAX_PER_CREDENTIAL live streams. */
export class TooManyStreamsError extends Error {
  readonly code = 'TOO_MANY_STREAMS';
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

/** How query answers its domain errors, beyond the common ones. */
export const QUERY_PROBLEMS: Record<string, ProblemMapping> = {
  AMBIGUOUS: { status: HttpStatus.CONFLICT },
  TIMEOUT: { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfter: true },
  UNAVAILABLE: { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfter: true },
  UPSTREAM_FAILED: { status: HttpStatus.BAD_GATEWAY },
  TOO_MANY_STREAMS: { status: HttpStatus.TOO_MANY_REQUESTS, retryAfter: true },
  // PostgreSQL's "canceling statement due to statement timeout".
  '57014': {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    retryAfter: true,
    detail: 'the query took longer than the request timeout',
  },
};
