import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Reflector } from '@nestjs/core';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { Logger } from 'pino';
import { Redactor } from '@agentmeter/domain';
import { createLogger, initMetrics, JsonLogger } from '@agentmeter/telemetry';
import { createFastifyApp } from './fastify';
import { useHttpMetrics } from './http-metrics';
import { ProblemFilter, type ProblemMapping } from './problem';
import { RedactionInterceptor } from './redaction.interceptor';
import { type PagesPolicy, useSecurityHeaders } from './security-headers';
import { RequestHygieneInterceptor } from './validation';

/** What a service says about itself to bootstrapService; everything else is the same for every service. */
export interface ServiceOptions {
  /** The service's name: the `service` of its logs and metrics. */
  name: string;
  /** The port to listen on, on every interface. */
  port: number;
  logLevel: string;
  /** Largest request body accepted, in bytes (413 above). */
  bodyLimit: number;
  /** The service's domain error codes and their statuses (ProblemFilter). */
  problems?: Readonly<Record<string, ProblemMapping>>;
  /** Run the redaction pass on bodies and path parameters (services that store what they are sent). */
  redaction?: boolean;
  /** Swagger under /docs: a title and a description, or the service's own document. */
  openApi?: { title: string; description: string } | ((app: NestFastifyApplication) => OpenAPIObject);
  /** Web pages served beside the API, with their own CSP (useSecurityHeaders). */
  pages?: PagesPolicy;
  /** The service's own pieces (body parsers, static files), after the common ones and before listening. */
  setup?: (app: NestFastifyApplication, logger: Logger) => void | Promise<void>;
}

/**
 * Starts an AgentMeter HTTP service (docs/decisions.md "One service skeleton"): metrics and logger named for
 * it, a Fastify application (createFastifyApp), the HTTP metrics and security headers, the one ProblemFilter,
 * the request rules (RequestHygieneInterceptor, then RedactionInterceptor where asked) ahead of the module's
 * own interceptors, the service's own setup, Swagger under /docs, shutdown hooks (so Nest's onApplicationShutdown
 * handlers flush traces, leave consumer groups and close connections on SIGTERM), and listening on `port`.
 */
export async function bootstrapService(module: unknown, options: ServiceOptions): Promise<NestFastifyApplication> {
  initMetrics(options.name);
  const logger = createLogger(options.name, options.logLevel);
  const app = await createFastifyApp(module, { logger: new JsonLogger(logger), bodyLimit: options.bodyLimit });
  useHttpMetrics(app);
  useSecurityHeaders(app, options.pages);
  app.useGlobalFilters(new ProblemFilter(logger, options.problems));
  // Global interceptors set here run before the module's APP_INTERCEPTOR providers: the request rules and
  // redaction first, as every route expects.
  app.useGlobalInterceptors(new RequestHygieneInterceptor());
  if (options.redaction) {
    app.useGlobalInterceptors(
      new RedactionInterceptor(app.get(Redactor, { strict: false }), app.get(Reflector, { strict: false })),
    );
  }
  await options.setup?.(app, logger);
  app.enableShutdownHooks();
  if (options.openApi) {
    const document =
      typeof options.openApi === 'function'
        ? options.openApi(app)
        : SwaggerModule.createDocument(
            app,
            new DocumentBuilder()
              .setTitle(options.openApi.title)
              .setDescription(options.openApi.description)
              .setVersion('1')
              .addBearerAuth()
              .build(),
          );
    SwaggerModule.setup('docs', app, document);
  }
  await app.listen(options.port, '0.0.0.0');
  return app;
}
