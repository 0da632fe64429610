import 'reflect-metadata';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DatabaseModule } from '@agentmeter/database';
import { Clock, Redactor } from '@agentmeter/domain';
import {
  createLogger,
  ObservabilityController,
  READINESS_CHECKS,
  type ReadinessCheck,
  TracingShutdown,
} from '@agentmeter/telemetry';
import { AlertMetrics } from './alert.metrics';
import { AlertmanagerController } from './alertmanager/alertmanager.controller';
import { AlertmanagerService } from './alertmanager/alertmanager.service';
import { AuditRepository } from './audit/audit.repository';
import { AlertConfig, loadConfig } from './config';
import { ContactsController } from './contacts/contacts.controller';
import { ContactsRepository } from './contacts/contacts.repository';
import { ContactsService } from './contacts/contacts.service';
import { TargetChecker } from './contacts/target-checker';
import { AlertQueuesClient } from './dispatch/alert-queues';
import { GroupsRepository } from './dispatch/groups.repository';
import { GroupsService } from './dispatch/groups.service';
import { bootstrapService, SERVICE_TOKEN, ServiceTokenGuard } from '@agentmeter/http';
import { ALERT_PROBLEMS } from './errors/problems';
import { AlertEventsConsumer } from './events/alert-events.consumer';
import { AlertEventsRepository } from './events/alert-events.repository';
import { AlertEventsService } from './events/alert-events.service';
import { AlertsController } from './lifecycle/alerts.controller';
import { LifecycleRepository } from './lifecycle/lifecycle.repository';
import { LifecycleService } from './lifecycle/lifecycle.service';
import { LOGGER } from './logger';
import { MutesController } from './mutes/mutes.controller';
import { MuteReplayRepository } from './mutes/mute-replay.repository';
import { MuteReplayService } from './mutes/mute-replay.service';
import { MutesRepository } from './mutes/mutes.repository';
import { MutesService } from './mutes/mutes.service';
import { RulesProcessor } from './rules/rules.processor';
import { RulesRepository } from './rules/rules.repository';
import { RulesService } from './rules/rules.service';
import { AlertSignalsConsumer } from './signals/alert-signals.consumer';
import { AlertSignalsService } from './signals/alert-signals.service';
import { ThresholdsController } from './thresholds/thresholds.controller';
import { ThresholdsRepository } from './thresholds/thresholds.repository';
import { ThresholdsService } from './thresholds/thresholds.service';

/**
 * The alert service: decides alerts (event rules from Kafka, time-based rules on BullMQ schedulers,
 * Alertmanager and service signals), records notifications, groups them and creates deliveries for
 * alert-worker. Also the admin API for contacts, thresholds and mutes.
 */
@Module({})
export class AlertModule {
  static forRoot(config: AlertConfig): DynamicModule {
    return {
      module: AlertModule,
      imports: [
        DatabaseModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: config.DATABASE_POOL_SIZE,
          applicationName: 'agentmeter-alert',
        }),
      ],
      controllers: [
        ObservabilityController,
        AlertmanagerController,
        ContactsController,
        MutesController,
        ThresholdsController,
        AlertsController,
      ],
      providers: [
        TracingShutdown,
        { provide: AlertConfig, useValue: config },
        { provide: LOGGER, useValue: createLogger('alert', config.LOG_LEVEL) },
        Clock,
        AlertMetrics,
        { provide: Redactor, useValue: Redactor.withKey(config.PSEUDONYM_KEY) },
        { provide: SERVICE_TOKEN, useValue: { setting: 'ALERT_API_TOKEN', value: config.ALERT_API_TOKEN } },
        ServiceTokenGuard,
        AuditRepository,
        ThresholdsRepository,
        ThresholdsService,
        MutesRepository,
        MuteReplayRepository,
        MuteReplayService,
        MutesService,
        ContactsRepository,
        ContactsService,
        TargetChecker,
        LifecycleRepository,
        LifecycleService,
        AlertQueuesClient,
        GroupsRepository,
        GroupsService,
        RulesRepository,
        RulesService,
        RulesProcessor,
        AlertEventsRepository,
        AlertEventsService,
        AlertEventsConsumer,
        AlertSignalsService,
        AlertSignalsConsumer,
        AlertmanagerService,
        {
          provide: READINESS_CHECKS,
          inject: [DataSource, AlertQueuesClient, AlertEventsConsumer, AlertSignalsConsumer, RulesProcessor],
          useFactory: (
            db: DataSource,
            queues: AlertQueuesClient,
            events: AlertEventsConsumer,
            signals: AlertSignalsConsumer,
            rules: RulesProcessor,
          ): ReadinessCheck[] => [
            { name: 'postgres', check: async () => void (await db.query('SELECT 1')) },
            { name: 'redis', check: () => queues.ping() },
            { name: 'kafka', check: async () => (events.assertRunning(), signals.assertRunning()) },
            { name: 'scheduler', check: () => rules.assertScheduling() },
          ],
        },
      ],
    };
  }
}

/** Starts the alert service; tests call it with their own configuration. */
export function bootstrap(config: AlertConfig = loadConfig()): Promise<INestApplication> {
  return bootstrapService(AlertModule.forRoot(config), {
    name: 'alert',
    port: config.PORT,
    logLevel: config.LOG_LEVEL,
    // 1 MiB holds an Alertmanager notification of many alerts.
    bodyLimit: 1024 * 1024,
    problems: ALERT_PROBLEMS,
    redaction: true,
    openApi: {
      title: 'AgentMeter alert service',
      description: 'Admin API for contacts, thresholds and mutes (ALERT_API_TOKEN), and the Alertmanager webhook.',
    },
    setup: (_app, logger) => {
      if (config.ALERT_ALLOW_LOOPBACK_HTTP) {
        logger.warn('ALERT_ALLOW_LOOPBACK_HTTP is on: webhooks may use http to loopback (test configurations only)');
      }
    },
  });
}
