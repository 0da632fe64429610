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
 * A Nest application on Fastify, as every AgentMeter HTTP service is (docs/decisions.md "Fastify for every
 * HTTP service"): JSON bodies parsed as Express's json() did (an empty body is no
 * body; `__proto__` is kept as an own key for the request rules to refuse with a 400 naming it). What fails
 * before a route runs — a malformed or too large body, an unsupported content type — reaches Nest's exception
 * filters through the error handler Nest installs on Fastify, and ProblemFilter answers it as a problem.
 * The caller then adds: useHttpMetrics, useSecurityHeaders, the ProblemFilter,
 * the request interceptors, Swagger. Routes and query strings are matched as they were on Express (trailing
 * slash ignored, case-sensitive).
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
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: options.bodyLimit }, parseJsonBody);
  return NestFactory.create<NestFastifyApplication>(module as never, adapter, {
    logger: options.logger,
    bodyParser: false,
  });
}

/**
 * JSON bodies as Express's json() read them: an empty body is no body, the top level is an object or an array; `__proto__` stays an own key (for the
 * request rules to refuse with a 400 naming it); malformed JSON is a 400 problem.
 */
export function parseJsonBody(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (error: Error | null, body?: unknown) => void,
): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const trimmed = text.trimStart();
  if (trimmed === '') return done(null, undefined);
  // Strict, as Express's json() was: a body is an object or an array, never a bare null, number or string.
  if (trimmed[0] !== '{' && trimmed[0] !== '[') {
    return done(new InvalidRequestError('malformed request body: JSON must be an object or an array'), undefined);
  }
  try {
    done(null, JSON.parse(text) as unknown);
  } catch (error) {
    done(new InvalidRequestError(`malformed request body: ${(error as Error).message}`), undefined);
  }
}
