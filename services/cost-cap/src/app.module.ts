import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { DatabaseModule, PricingRepository } from '@agentmeter/database';
import { Clock, Redactor } from '@agentmeter/domain';
import { bootstrapService, Public, SERVICE_TOKEN, ServiceTokenGuard } from '@agentmeter/http';
import {
  createLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
  TracingShutdown,
} from '@agentmeter/telemetry';
import { AdmissionController } from './admission/admission.controller';
import { AdmissionService } from './admission/admission.service';
import { SettlementService } from './admission/settlement.service';
import { ExpirySweeper } from './admission/expiry.sweeper';
import { DailyCapsRefresher } from './caps/daily-caps.refresher';
import { LimitsService } from './caps/limits.service';
import { CostCapConfig, loadConfig } from './config';
import { CountersStore } from './counters/counters.store';
import { CountersTransaction } from './settlement/counters-transaction';
import { RebuildService } from './settlement/rebuild.service';
import { CrossingsRepository } from './crossings/crossings.repository';
import { CrossingsService } from './crossings/crossings.service';
import { DailyCapsRepository } from './caps/daily-caps.repository';
import { SamplingRepository } from './sampling/sampling.repository';
import { CostCapDatabase } from './db/database';
import { COST_CAP_PROBLEMS } from './http/errors';
import { LOGGER } from './logger';
import { CostCapMetrics } from './metrics/cost-cap.metrics';
import { OutboxPublisher } from './outbox/outbox.publisher';
import { OutboxRepository } from './outbox/outbox.repository';
import { OverridesController } from './overrides/overrides.controller';
import { OverridesRepository } from './overrides/overrides.repository';
import { OverridesService } from './overrides/overrides.service';
import { PricingService } from './pricing/pricing.service';
import { SamplingController } from './sampling/sampling.controller';
import { SamplingService } from './sampling/sampling.service';
import { SettingsCache } from './settings/settings.cache';
import { SettingsRepository } from './settings/settings.repository';
import { LedgerRepository } from './ledger/ledger.repository';
import { SpendConsumer } from './spend/spend.consumer';
import { SpendService } from './spend/spend.service';
import { TimersProcessor } from './timers/timers.processor';
import { TimersQueue } from './queues/timers.queue';
import { TimersRecovery } from './timers/timers.recovery';
import { WallTimeService } from './timers/wall-time.service';

// Health, readiness and metrics are open; every /v1 route needs the service token.
Public()(ObservabilityController);

export interface CostCapOptions {
  /** Replaces the wall clock of every decision (tests pin "now"). */
  clock?: Clock;
}

@Module({})
export class CostCapModule {
  static forRoot(config: CostCapConfig, options: CostCapOptions = {}): DynamicModule {
    return {
      module: CostCapModule,
      imports: [
        // The pricing repository of libs/database reads through TypeORM; everything else uses CostCapDatabase.
        DatabaseModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: 2,
          applicationName: 'agentmeter-cost-cap-prices',
        }),
      ],
      controllers: [ObservabilityController, AdmissionController, OverridesController, SamplingController],
      providers: [
        TracingShutdown,
        { provide: CostCapConfig, useValue: config },
        { provide: LOGGER, useValue: createLogger('cost-cap', config.LOG_LEVEL) },
        { provide: Clock, useValue: options.clock ?? new Clock() },
        { provide: SERVICE_TOKEN, useValue: { setting: 'COST_CAP_API_TOKEN', value: config.COST_CAP_API_TOKEN } },
        { provide: APP_GUARD, useClass: ServiceTokenGuard },
        { provide: Redactor, useValue: Redactor.withKey(config.PSEUDONYM_KEY) },
        { provide: PricingRepository, inject: [DataSource], useFactory: (db: DataSource) => new PricingRepository(db) },
        CostCapDatabase,
        CostCapMetrics,
        CountersStore,
        LedgerRepository,
        RebuildService,
        CountersTransaction,
        SettingsRepository,
        SettingsCache,
        LimitsService,
        PricingService,
        OutboxRepository,
        OutboxPublisher,
        CrossingsRepository,
        DailyCapsRepository,
        CrossingsService,
        TimersQueue,
        TimersRecovery,
        WallTimeService,
        TimersProcessor,
        SpendService,
        SpendConsumer,
        SettlementService,
        AdmissionService,
        ExpirySweeper,
        OverridesRepository,
        OverridesService,
        SamplingRepository,
        SamplingService,
        DailyCapsRefresher,
        {
          provide: READINESS_CHECKS,
          inject: [CostCapDatabase, CountersStore, SpendConsumer, TimersRecovery],
          useFactory: (
            db: CostCapDatabase,
            counters: CountersStore,
            consumer: SpendConsumer,
            timers: TimersRecovery,
          ): ReadinessCheck[] => [
            { name: 'postgres', check: async () => void (await db.query('SELECT 1')) },
            {
              name: 'redis',
              check: async () => {
                if (!(await counters.epoch())) throw new Error('counters not rebuilt');
              },
            },
            { name: 'kafka', check: async () => consumer.assertRunning() },
            { name: 'scheduler', check: async () => timers.assertRecovered() },
          ],
        },
      ],
    };
  }
}

/** Starts the cost-cap service; tests call it with their own configuration (and clock). */
export function bootstrap(
  config: CostCapConfig = loadConfig(),
  options: CostCapOptions = {},
): Promise<INestApplication> {
  // Fastify first of all services (docs/decisions.md "Fastify for cost-cap"): admission is on the path of every
  // LLM call.
  return bootstrapService(CostCapModule.forRoot(config, options), {
    name: 'cost-cap',
    port: config.PORT,
    logLevel: config.LOG_LEVEL,
    bodyLimit: 1024 * 1024,
    problems: COST_CAP_PROBLEMS,
    redaction: true,
    openApi: {
      title: 'AgentMeter cost-cap API',
      description: 'Admission before spend, overrides with audit, validator sampling. docs/cost-cap.md',
    },
  });
}
