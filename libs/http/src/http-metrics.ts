import type { INestApplication } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { Histogram } from 'prom-client';
import { metricsRegistry } from '@agentmeter/telemetry';

/** Request duration of every HTTP service, by method, route template and status (docs/observability.md "Instrumentation contract"). */
const httpRequestDuration = new Histogram({
  name: 'agentmeter_http_request_duration_seconds',
  help: 'HTTP request duration, by method, route template (unmatched: no route) and status code.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

/**
 * Times every request from arrival to the last byte, whatever answers it (a handler, a guard's 401, the body
 * parser's 413, a 404), from Fastify's hooks: interceptors never see what guards and filters answer first.
 * The route label is the matched route's template (`/runs/:run_id/metrics`), never the path, so ids add no
 * series; a request that matched no route counts as `unmatched`.
 */
export function useHttpMetrics(app: INestApplication): void {
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  const timers = new WeakMap<object, ReturnType<typeof httpRequestDuration.startTimer>>();
  fastify.addHook('onRequest', (request, _reply, done) => {
    timers.set(request, httpRequestDuration.startTimer());
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.is404 ? undefined : request.routeOptions.url;
    timers.get(request)?.({
      method: request.method,
      route: typeof route === 'string' ? route : 'unmatched',
      status: String(reply.statusCode),
    });
    done();
  });
}
