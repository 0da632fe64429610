import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Logger } from 'pino';
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
import { AuthGuard, Public } from './auth/auth.guard';
import { JwtVerifier } from './auth/jwt.verifier';
import { loadConfig, QueryConfig } from './config';
import { ProblemFilter } from './errors/problem.filter';
import { LOGGER } from './logger';
import { RunsController } from './runs/runs.controller';
import { RunsRepository } from './runs/runs.repository';
import { RunsService } from './runs/runs.service';

// Health and metrics are the only routes open without a credential.
Public()(ObservabilityController);

@Module({})
export class QueryModule {
  static forRoot(config: QueryConfig): DynamicModule {
    return {
      module: QueryModule,
      imports: [
        DatabaseModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'agentmeter-query',
        }),
      ],
      controllers: [ObservabilityController, RunsController],
      providers: [
        { provide: QueryConfig, useValue: config },
        { provide: LOGGER, useValue: createLogger('query', config.LOG_LEVEL) },
        JwtVerifier,
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, inject: [LOGGER], useFactory: (logger: Logger) => new ProblemFilter(logger) },
        RunsRepository,
        RunsService,
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

/** Starts the query API; tests call it with their own configuration. */
export async function bootstrap(config: QueryConfig = loadConfig()): Promise<INestApplication> {
  initMetrics('query');
  const app = await NestFactory.create(QueryModule.forRoot(config), {
    logger: new JsonLogger(createLogger('query', config.LOG_LEVEL)),
  });
  app.enableShutdownHooks();
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder().setTitle('AgentMeter query API').setVersion('1').addBearerAuth().build(),
  );
  SwaggerModule.setup('docs', app, document);
  await app.listen(config.PORT, '0.0.0.0');
  return app;
}
