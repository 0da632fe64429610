import 'reflect-metadata';
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { DatabaseModule, PartitionManager, PricingRepository } from '@agentmeter/database';
import {
  createLogger,
  initMetrics,
  JsonLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
  TracingShutdown,
} from '@agentmeter/telemetry';
import { IngestConfig, loadConfig } from './config';
import { EventsConsumer } from './events/events.consumer';
import { EventsRepository } from './events/events.repository';
import { EventsService } from './events/events.service';
import { IngestMetrics } from './events/ingest.metrics';
import { LOGGER } from './logger';
import { OTLP_BODY_LIMIT, OtlpController, useOtlpBodies } from './otlp/otlp.controller';
import { OtlpMetrics } from './otlp/otlp.metrics';
import { OtlpPublisher } from './otlp/otlp.publisher';
import { OtlpAuth } from './otlp/otlp.auth';
import { OtlpService } from './otlp/otlp.service';
import { PricingService } from './pricing/pricing.service';
import { RetentionProcessor } from './retention/retention.processor';
import { RetentionRepository } from './retention/retention.repository';
import { RetentionService } from './retention/retention.service';
import { Clock, Redactor } from '@agentmeter/domain';
import {
  createFastifyApp,
  ProblemFilter,
  RequestHygieneInterceptor,
  useHttpMetrics,
  useSecurityHeaders,
} from '@agentmeter/http';
import type { Logger } from 'pino';

@Module({})
export class IngestModule {
  static forRoot(config: IngestConfig): DynamicModule {
    return {
      module: IngestModule,
      imports: [
        DatabaseModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'agentmeter-ingest',
        }),
      ],
      controllers: [ObservabilityController, OtlpController],
      providers: [
        TracingShutdown,
        { provide: IngestConfig, useValue: config },
        { provide: LOGGER, useValue: createLogger('ingest', config.LOG_LEVEL) },
        // Answers of the HTTP routes (OTLP receiver) are problem+json like every service's.
        { provide: APP_FILTER, inject: [LOGGER], useFactory: (logger: Logger) => new ProblemFilter(logger) },
        { provide: APP_INTERCEPTOR, useClass: RequestHygieneInterceptor },
        IngestMetrics,
        { provide: Redactor, useValue: Redactor.withKey(config.PSEUDONYM_KEY) },
        { provide: PartitionManager, inject: [DataSource], useFactory: (db: DataSource) => new PartitionManager(db) },
        { provide: PricingRepository, inject: [DataSource], useFactory: (db: DataSource) => new PricingRepository(db) },
        PricingService,
        EventsRepository,
        EventsService,
        EventsConsumer,
        Clock,
        RetentionRepository,
        RetentionService,
        RetentionProcessor,
        OtlpMetrics,
        OtlpPublisher,
        OtlpService,
        OtlpAuth,
        {
          provide: READINESS_CHECKS,
          inject: [DataSource, EventsConsumer, RetentionProcessor],
          useFactory: (db: DataSource, consumer: EventsConsumer, retention: RetentionProcessor): ReadinessCheck[] => [
            { name: 'postgres', check: async () => void (await db.query('SELECT 1')) },
            { name: 'kafka', check: async () => consumer.assertRunning() },
            { name: 'redis', check: () => retention.ping() },
          ],
        },
      ],
    };
  }
}

/** Starts the ingest service; tests call it with their own configuration. */
export async function bootstrap(config: IngestConfig = loadConfig()): Promise<INestApplication> {
  initMetrics('ingest');
  // Fastify (docs/decisions.md "Fastify for every HTTP service"). The OTLP route is the only one that takes a
  // body: its limit is the application's.
  const app = await createFastifyApp(IngestModule.forRoot(config), {
    logger: new JsonLogger(createLogger('ingest', config.LOG_LEVEL)),
    bodyLimit: OTLP_BODY_LIMIT,
  });
  app.enableShutdownHooks();
  useHttpMetrics(app);
  useSecurityHeaders(app);
  useOtlpBodies(app);
  // Its HTTP routes in OpenAPI too, like every service's, so that tooling and tests can walk them.
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('AgentMeter ingest')
      .setDescription('OTLP/HTTP trace receiver (docs/otlp.md), health and metrics.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  await app.listen(config.PORT, '0.0.0.0');
  return app;
}
