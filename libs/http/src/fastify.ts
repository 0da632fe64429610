import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequestError, sendProblem } from './problem';

export interface FastifyAppOptions {
  /** Largest JSON body accepted, in bytes (413 above). */
  bodyLimit: number;
  /** Nest's logger for the application. */
  logger: LoggerService;
}

/**
 * A Nest application on Fastify with the conventions every AgentMeter HTTP service has on Express
 * (docs/decisions.md "Fastify for cost-cap"): JSON bodies parsed as Express's json() does (an empty body is no
 * body; `__proto__` is kept as an own key for the request rules to refuse with a 400 naming it). What fails
 * before a route runs — a malformed or too large body, an unsupported content type — reaches Nest's exception
 * filters through the error handler Nest installs on Fastify, and ProblemFilter answers it as a problem.
 * The caller then adds the same pieces as on Express: useHttpMetrics, useSecurityHeaders, the ProblemFilter,
 * the request interceptors, Swagger. Routes and query strings are matched like Express's (trailing slash
 * ignored, case-sensitive).
 */
export async function createFastifyApp(module: unknown, options: FastifyAppOptions): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: options.bodyLimit,
    routerOptions: { ignoreTrailingSlash: true },
    // Request ids and logs are the service's own (pino through Nest's logger), not Fastify's.
    logger: false,
    // A path Fastify's router cannot decode (a lone surrogate's bytes, bad percent-encoding) never reaches Nest.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode ?? 400;
      sendProblem(reply, status >= 400 && status < 500 ? status : 400, `invalid path: ${error.message}`);
    },
  });
  const fastify = adapter.getInstance();
  fastify.removeContentTypeParser(['application/json']);
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: options.bodyLimit },
    (_request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text) as unknown);
      } catch (error) {
        done(new InvalidRequestError(`malformed request body: ${(error as Error).message}`), undefined);
      }
    },
  );
  return NestFactory.create<NestFastifyApplication>(module as never, adapter, {
    logger: options.logger,
    bodyParser: false,
  });
}
