import 'reflect-metadata';
import { type DynamicModule, Module } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DatabaseModule, PartitionManager, PricingRepository } from '@agentmeter/database';
import {
  createLogger,
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
import { bootstrapService } from '@agentmeter/http';

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
export function bootstrap(config: IngestConfig = loadConfig()): Promise<INestApplication> {
  return bootstrapService(IngestModule.forRoot(config), {
    name: 'ingest',
    port: config.PORT,
    logLevel: config.LOG_LEVEL,
    // The OTLP route is the only one that takes a body: its limit is the application's.
    bodyLimit: OTLP_BODY_LIMIT,
    // Its HTTP routes in OpenAPI too, like every service's, so that tooling and tests can walk them.
    openApi: {
      title: 'AgentMeter ingest',
      description: 'OTLP/HTTP trace receiver (docs/otlp.md), health and metrics.',
    },
    setup: (app) => useOtlpBodies(app),
  });
}
