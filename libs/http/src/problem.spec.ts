import { type ArgumentsHost, BadRequestException, HttpStatus } from '@nestjs/common';
import type { Logger } from 'pino';
import { UnauthorizedException } from '@nestjs/common';
import { NotFoundError, ProblemFilter, UnauthenticatedError } from './problem';
import { unavailableDependency } from './unavailable';

function harness(problems = {}) {
  const logged: unknown[] = [];
  const logger = {
    error: (...args: unknown[]) => logged.push(args),
    debug: () => undefined,
    warn: (...args: unknown[]) => logged.push(args),
  } as unknown as Logger;
  const sent: { status?: number; type?: string; body?: Record<string, unknown>; headers: Record<string, string> } = {
    headers: {},
  };
  // A Fastify reply: the calls the filter makes on it.
  const response = {
    sent: false,
    raw: {},
    header(name: string, value: string) {
      sent.headers[name] = value;
      return this;
    },
    code(code: number) {
      sent.status = code;
      return this;
    },
    type(type: string) {
      sent.type = type;
      return this;
    },
    send(body: string) {
      sent.body = JSON.parse(body) as Record<string, unknown>;
      return this;
    },
  };
  const host = { switchToHttp: () => ({ getResponse: () => response }) } as unknown as ArgumentsHost;
  const filter = new ProblemFilter(logger, problems);
  return { answer: (error: unknown) => (filter.catch(error, host), sent), logged };
}

describe('ProblemFilter', () => {
  it.each([
    ['a domain error', new UnauthenticatedError('invalid token: "exp" claim timestamp check failed')],
    ['a Nest exception', new UnauthorizedException('unknown token')],
  ])('answers every 401 (%s) with WWW-Authenticate and the same generic detail', (_name, error) => {
    const sent = harness().answer(error);
    expect(sent.status).toBe(401);
    expect(sent.headers['WWW-Authenticate']).toBe('Bearer error="invalid_token"');
    expect(sent.body!.detail).toBe('a valid bearer token or API key is required');
    expect(JSON.stringify(sent.body)).not.toMatch(/exp|unknown token/);
  });

  it('answers a common domain error with its status, message and code as problem+json', () => {
    const sent = harness().answer(new NotFoundError('no run r-1'));
    expect(sent).toMatchObject({
      status: 404,
      type: 'application/problem+json',
      body: { type: 'about:blank', title: 'Not Found', status: 404, detail: 'no run r-1', code: 'NOT_FOUND' },
    });
  });

  it("adds a service's codes, with Retry-After and a fixed detail where mapped", () => {
    const { answer } = harness({
      REBUILDING: { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfter: true },
      '57014': { status: HttpStatus.SERVICE_UNAVAILABLE, detail: 'too slow' },
    });
    const rebuilding = answer(Object.assign(new Error('counters rebuilding'), { code: 'REBUILDING' }));
    expect(rebuilding).toMatchObject({ status: 503, headers: { 'Retry-After': '1' }, body: { code: 'REBUILDING' } });
    const cancelled = answer(
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
    );
    expect(cancelled).toMatchObject({ status: 503, headers: {}, body: { detail: 'too slow' } });
  });

  it('keeps the status of HTTP exceptions, and hides anything else behind a logged error id', () => {
    const { answer, logged } = harness();
    expect(answer(new BadRequestException('bad cursor'))).toMatchObject({
      status: 400,
      body: { detail: 'bad cursor' },
    });
    const internal = answer(Object.assign(new Error('password=hunter2 in SQL'), { code: 'toString' }));
    expect(internal.status).toBe(500);
    expect(internal.body).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: 'internal error',
      error_id: expect.any(String),
    });
    expect(JSON.stringify(internal.body)).not.toContain('hunter2');
    expect(JSON.stringify(logged)).toContain(internal.body!.error_id as string);
  });

  it('answers lost connections to PostgreSQL, Redis or BullMQ with 503 and Retry-After, never 500', () => {
    const { answer } = harness();
    const failures = [
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      // TypeORM wraps the driver's error.
      Object.assign(new Error('Query failed'), { driverError: Object.assign(new Error('x'), { code: '08006' }) }),
      Object.assign(new Error('Reached the max retries per request limit (which is 3).'), {
        name: 'MaxRetriesPerRequestError',
      }),
      new Error('Connection is closed.'),
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:6379'), { code: 'ECONNREFUSED' })]),
    ];
    for (const failure of failures) {
      const sent = answer(failure);
      expect(sent).toMatchObject({
        status: 503,
        type: 'application/problem+json',
        headers: { 'Retry-After': '2' },
        body: { status: 503, code: 'DEPENDENCY_UNAVAILABLE' },
      });
    }
    expect(unavailableDependency(failures[0])).toBe('postgres');
    expect(unavailableDependency(failures[4])).toBe('redis');
    expect(unavailableDependency(new Error('duplicate key'))).toBeNull();
    expect(unavailableDependency(Object.assign(new Error('unique'), { code: '23505' }))).toBeNull();
  });
});
