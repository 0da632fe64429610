import 'reflect-metadata';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DatabaseModule, PartitionManager, PricingRepository } from '@agentmeter/database';
import {
  createLogger,
  initMetrics,
  JsonLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
} from '@agentmeter/telemetry';
import { IngestConfig, loadConfig } from './config';
import { EventsConsumer } from './events/events.consumer';
import { EventsRepository } from './events/events.repository';
import { EventsService } from './events/events.service';
import { IngestMetrics } from './events/ingest.metrics';
import { LOGGER } from './logger';
import { OTLP_TRACES_PATH, OtlpController, otlpBodyParser } from './otlp/otlp.controller';
import { OtlpMetrics } from './otlp/otlp.metrics';
import { OtlpPublisher } from './otlp/otlp.publisher';
import { OtlpAuth } from './otlp/otlp.auth';
import { OtlpService } from './otlp/otlp.service';
import { PricingService } from './pricing/pricing.service';
import { RetentionProcessor } from './retention/retention.processor';
import { RetentionRepository } from './retention/retention.repository';
import { RetentionService } from './retention/retention.service';
import { Clock, Redactor } from '@agentmeter/domain';

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
export async function bootstrap(config: IngestConfig = loadConfig()): Promise<INestApplication> {
  initMetrics('ingest');
  const app = await NestFactory.create(IngestModule.forRoot(config), {
    logger: new JsonLogger(createLogger('ingest', config.LOG_LEVEL)),
  });
  app.enableShutdownHooks();
  app.use(OTLP_TRACES_PATH, otlpBodyParser); // before Nest's 100 kB JSON parser, see otlpBodyParser
  await app.listen(config.PORT, '0.0.0.0');
  return app;
}
