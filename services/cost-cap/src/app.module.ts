import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { DatabaseModule } from '@agentmeter/database';
import {
  createLogger,
  initMetrics,
  JsonLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
} from '@agentmeter/telemetry';
import { CostCapConfig, loadConfig } from './config';

/** Health and metrics only, until its own issue gives it work. */
@Module({})
export class CostCapModule {
  static forRoot(config: CostCapConfig): DynamicModule {
    return {
      module: CostCapModule,
      imports: [
        DatabaseModule.forRoot({ url: config.DATABASE_URL, poolSize: 2, applicationName: 'agentmeter-cost-cap' }),
      ],
      controllers: [ObservabilityController],
      providers: [
        { provide: CostCapConfig, useValue: config },
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

export async function bootstrap(config: CostCapConfig = loadConfig()): Promise<INestApplication> {
  initMetrics('cost-cap');
  const app = await NestFactory.create(CostCapModule.forRoot(config), {
    logger: new JsonLogger(createLogger('cost-cap', config.LOG_LEVEL)),
  });
  app.enableShutdownHooks();
  await app.listen(config.PORT, '0.0.0.0');
  return app;
}
