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
import { AlertConfig, loadConfig } from './config';

/** Health and metrics only, until its own issue gives it work. */
@Module({})
export class AlertModule {
  static forRoot(config: AlertConfig): DynamicModule {
    return {
      module: AlertModule,
      imports: [DatabaseModule.forRoot({ url: config.DATABASE_URL, poolSize: 2, applicationName: 'agentmeter-alert' })],
      controllers: [ObservabilityController],
      providers: [
        { provide: AlertConfig, useValue: config },
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

export async function bootstrap(config: AlertConfig = loadConfig()): Promise<INestApplication> {
  initMetrics('alert');
  const app = await NestFactory.create(AlertModule.forRoot(config), {
    logger: new JsonLogger(createLogger('alert', config.LOG_LEVEL)),
  });
  app.enableShutdownHooks();
  await app.listen(config.PORT, '0.0.0.0');
  return app;
}
