import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ThrottlerModule } from '@nestjs/throttler';
import { DataSource } from 'typeorm';
import { DatabaseModule, PricingRepository } from '@agentmeter/database';
import { Clock, Redactor } from '@agentmeter/domain';
import {
  createLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
  TracingShutdown,
} from '@agentmeter/telemetry';
import { ActionsController } from './actions/actions.controller';
import { ActionsService } from './actions/actions.service';
import { AlertClient, CoordinatorPublisher, CostCapClient } from './actions/owner-services.client';
import { BannersController } from './alerts/banners.controller';
import { BannersRepository } from './alerts/banners.repository';
import { AnalyticsController } from './analytics/analytics.controller';
import { FeedbackController, FeedbackService } from './feedback/feedback.controller';
import { FeedbackRepository } from './feedback/feedback.repository';
import { TargetsController, TargetsService } from './targets/targets.controller';
import { TargetsRepository } from './targets/targets.repository';
import { AnalyticsRepository } from './analytics/analytics.repository';
import { AnalyticsService } from './analytics/analytics.service';
import { HealthRepository } from './analytics/health.repository';
import { HealthService } from './analytics/health.service';
import { AuditController, AuditService } from './audit/audit.controller';
import { AuditRepository } from './audit/audit.repository';
import { ApiKeyVerifier } from './auth/api-key.verifier';
import { ApiKeysController, ApiKeysService } from './auth/api-keys.controller';
import { ApiKeysRepository } from './auth/api-keys.repository';
import { AuthGuard, Public } from './auth/auth.guard';
import { JwtVerifier } from './auth/jwt.verifier';
import { WhoAmIController } from './auth/whoami.controller';
import { databaseUrlOf, loadConfig, QueryConfig } from './config';
import { bootstrapService, parseJsonBody } from '@agentmeter/http';
import { ConsoleController } from './console/console.controller';
import { SignInLinks, UsedLinkCodes } from './console/sign-in-links';
import { consolePagesPolicy, serveConsole } from './console/static';
import { QUERY_PROBLEMS } from './errors/problems';
import { CsvInterceptor } from './http/csv.interceptor';
import { FieldPolicyInterceptor } from './http/field-policy.interceptor';
import { Limits } from './http/limits';
import { RateLimitGuard } from './http/rate-limit.guard';
import { SharedRateLimitStorage } from './http/rate-limit.storage';
import { TimeoutInterceptor } from './http/timeout.interceptor';
import { ConfigController } from './links/config.controller';
import { LinksService } from './links/links.service';
import { LOGGER } from './logger';
import { CapsRepository } from './overview/caps.repository';
import { OverviewController } from './overview/overview.controller';
import { OverviewRepository } from './overview/overview.repository';
import { OverviewService } from './overview/overview.service';
import { RunStreamService } from './runs/run-stream.service';
import { RunsController } from './runs/runs.controller';
import { RunsRepository } from './runs/runs.repository';
import { RunsService } from './runs/runs.service';
import { PricesController } from './prices/prices.controller';
import { PromptAuditController } from './prompt-audit/prompt-audit.controller';
import { PromptAuditRepository } from './prompt-audit/prompt-audit.repository';
import { PromptAuditService } from './prompt-audit/prompt-audit.service';
import { PricesService } from './prices/prices.service';
import { RepriceProcessor } from './prices/reprice.processor';
import { RepriceQueue } from './prices/reprice.queue';
import { TenantSettingsService, TenantsController } from './tenants/tenants.controller';
import { TenantsRepository } from './tenants/tenants.repository';
import { ViewPolicy } from './tenants/view.policy';

// Health and metrics are the only routes open without a credential.
Public()(ObservabilityController);

@Module({})
export class QueryModule {
  static forRoot(config: QueryConfig): DynamicModule {
    const logger = createLogger('query', config.LOG_LEVEL);
    return {
      module: QueryModule,
      imports: [
        DatabaseModule.forRoot({
          url: databaseUrlOf(config),
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'agentmeter-query',
        }),
        ThrottlerModule.forRoot({
          throttlers: [{ ttl: config.QUERY_RATE_WINDOW_MS, limit: config.QUERY_RATE_LIMIT }],
          storage: SharedRateLimitStorage.fromConfig(config, logger),
        }),
      ],
      controllers: [
        ObservabilityController,
        RunsController,
        ConfigController,
        OverviewController,
        AnalyticsController,
        AuditController,
        BannersController,
        ActionsController,
        ApiKeysController,
        TenantsController,
        TargetsController,
        FeedbackController,
        PricesController,
        PromptAuditController,
        WhoAmIController,
        ConsoleController,
      ],
      providers: [
        TracingShutdown,
        { provide: QueryConfig, useValue: config },
        { provide: LOGGER, useValue: logger },
        Clock,
        { provide: Redactor, useValue: Redactor.withKey(config.PSEUDONYM_KEY) },
        JwtVerifier,
        ApiKeysRepository,
        ApiKeyVerifier,
        ApiKeysService,
        TargetsRepository,
        TargetsService,
        FeedbackRepository,
        FeedbackService,
        // Guards run in this order: authenticate and authorize, then count the request for its credential.
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_INTERCEPTOR, useClass: TimeoutInterceptor },
        { provide: APP_INTERCEPTOR, useClass: CsvInterceptor },
        // Inside CsvInterceptor: the field policy applies to the JSON answer before it becomes CSV.
        { provide: APP_INTERCEPTOR, useClass: FieldPolicyInterceptor },
        Limits,
        LinksService,
        TenantsRepository,
        ViewPolicy,
        TenantSettingsService,
        RunsRepository,
        RunsService,
        RunStreamService,
        AnalyticsRepository,
        AnalyticsService,
        HealthRepository,
        HealthService,
        OverviewRepository,
        OverviewService,
        CapsRepository,
        AuditRepository,
        AuditService,
        BannersRepository,
        CostCapClient,
        AlertClient,
        CoordinatorPublisher,
        ActionsService,
        UsedLinkCodes,
        SignInLinks,
        { provide: PricingRepository, inject: [DataSource], useFactory: (db: DataSource) => new PricingRepository(db) },
        RepriceQueue,
        PricesService,
        RepriceProcessor,
        PromptAuditRepository,
        PromptAuditService,
        {
          provide: READINESS_CHECKS,
          inject: [DataSource],
          useFactory: (db: DataSource): ReadinessCheck[] => [
            { name: 'postgres', check: async () => void (await db.query('SELECT 1')) },
          ],
        },
      ],
    };
  }
}

/** The OpenAPI document, generated from the controllers and their zod schemas. */
export function openApiDocument(app: INestApplication) {
  return SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('AgentMeter query API')
      .setDescription('Run metrics, analytics and administration. Roles and limits: docs/security.md.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
}

/** Starts the query API; tests call it with their own configuration. */
export function bootstrap(config: QueryConfig = loadConfig()): Promise<INestApplication> {
  return bootstrapService(QueryModule.forRoot(config), {
    name: 'query',
    port: config.PORT,
    logLevel: config.LOG_LEVEL,
    // Every body is read under the limit (413 above it), whatever its content type.
    bodyLimit: config.QUERY_BODY_LIMIT_BYTES,
    problems: QUERY_PROBLEMS,
    redaction: true,
    pages: consolePagesPolicy(config),
    openApi: (app) => openApiDocument(app),
    setup: async (app) => {
      // JSON (application/json, application/*+json) is parsed, anything else kept as bytes (and refused by the
      // route's validation).
      const fastify = app.getHttpAdapter().getInstance();
      fastify.addContentTypeParser(/^application\/[^;\s]+\+json(?:\s*;|\s*$)/i, { parseAs: 'string' }, parseJsonBody);
      fastify.removeContentTypeParser('text/plain');
      fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
      // The console's pages and assets: a browser's navigation to a page path gets index.html, every other
      // request goes on to the API unchanged (docs/console.md).
      await serveConsole(app, config);
    },
  });
}
