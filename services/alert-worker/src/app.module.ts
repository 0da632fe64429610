import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DatabaseModule } from '@agentmeter/database';
import { Clock } from '@agentmeter/domain';
import {
  createLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
  TracingShutdown,
} from '@agentmeter/telemetry';
import { EmailSender } from './channels/email.sender';
import { SafeHttp } from './channels/safe-http';
import { PagerDutySender } from './channels/pagerduty.sender';
import { SlackSender } from './channels/slack.sender';
import { WebhookSender } from './channels/webhook.sender';
import { loadConfig, WorkerConfig } from './config';
import { DeliveryProcessor } from './delivery/delivery.processor';
import { DeliveryRepository } from './delivery/delivery.repository';
import { DeliveryService } from './delivery/delivery.service';
import { LOGGER } from './logger';
import { WorkerMetrics } from './worker.metrics';
import { bootstrapService } from '@agentmeter/http';

/** alert-worker: delivers what the alert service decided, on every channel; HTTP only for health and metrics. */
@Module({})
export class AlertWorkerModule {
  static forRoot(config: WorkerConfig): DynamicModule {
    return {
      module: AlertWorkerModule,
      imports: [
        DatabaseModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'agentmeter-alert-worker',
        }),
      ],
      controllers: [ObservabilityController],
      providers: [
        TracingShutdown,
        { provide: WorkerConfig, useValue: config },
        { provide: LOGGER, useValue: createLogger('alert-worker', config.LOG_LEVEL) },
        Clock,
        WorkerMetrics,
        SafeHttp,
        EmailSender,
        SlackSender,
        WebhookSender,
        PagerDutySender,
        DeliveryRepository,
        DeliveryService,
        DeliveryProcessor,
        {
          provide: READINESS_CHECKS,
          inject: [DataSource, DeliveryProcessor],
          useFactory: (db: DataSource, processor: DeliveryProcessor): ReadinessCheck[] => [
            { name: 'postgres', check: async () => void (await db.query('SELECT 1')) },
            { name: 'redis', check: () => processor.ping() },
          ],
        },
      ],
    };
  }
}

/** Starts alert-worker; tests call it with their own configuration. */
export function bootstrap(config: WorkerConfig = loadConfig()): Promise<INestApplication> {
  // Only health and metrics over HTTP: no write route, Nest's default body limit.
  return bootstrapService(AlertWorkerModule.forRoot(config), {
    name: 'alert-worker',
    port: config.PORT,
    logLevel: config.LOG_LEVEL,
    bodyLimit: 100 * 1024,
    setup: (_app, logger) => {
      if (config.ALERT_ALLOW_LOOPBACK_HTTP) {
        logger.warn('ALERT_ALLOW_LOOPBACK_HTTP is on: webhooks may use http to loopback (test configurations only)');
      }
    },
  });
}
