import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { createDataSource } from '@agentmeter/database';
import { Clock } from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { testEnvironment } from '@agentmeter/testing';
import { AlertMetrics } from '../src/alert.metrics';
import { AuditRepository } from '../src/audit/audit.repository';
import { loadConfig, type AlertConfig } from '../src/config';
import { AlertQueuesClient } from '../src/dispatch/alert-queues';
import { GroupsRepository } from '../src/dispatch/groups.repository';
import { GroupsService } from '../src/dispatch/groups.service';
import { AlertEventsRepository } from '../src/events/alert-events.repository';
import { AlertEventsService } from '../src/events/alert-events.service';
import { LifecycleRepository } from '../src/lifecycle/lifecycle.repository';
import { LifecycleService } from '../src/lifecycle/lifecycle.service';
import { MuteReplayRepository } from '../src/mutes/mute-replay.repository';
import { MuteReplayService } from '../src/mutes/mute-replay.service';
import { MutesRepository } from '../src/mutes/mutes.repository';
import { MutesService } from '../src/mutes/mutes.service';
import { RulesRepository } from '../src/rules/rules.repository';
import { RulesService } from '../src/rules/rules.service';
import { ThresholdsRepository } from '../src/thresholds/thresholds.repository';
import { ThresholdsService } from '../src/thresholds/thresholds.service';

/** A clock the test moves. */
export class TestClock extends Clock {
  constructor(public at: Date) {
    super();
  }
  override now(): Date {
    return new Date(this.at);
  }
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms);
  }
}

/** One "replica" of the alert service's logic, wired by hand on its own connections (no HTTP, no Kafka). */
export interface AlertReplica {
  db: DataSource;
  queues: AlertQueuesClient;
  lifecycle: LifecycleService;
  groups: GroupsService;
  rules: RulesService;
  events: AlertEventsService;
  thresholds: ThresholdsService;
  mutes: MutesService;
  muteReplay: MuteReplayService;
  close(): Promise<void>;
}

// prom-client registers each metric name once per process: replicas in one test process share them.
let metrics: AlertMetrics | undefined;

export async function alertReplica(
  databaseUrl: string,
  clock: Clock,
  env: Record<string, string> = {},
): Promise<AlertReplica> {
  const test = testEnvironment();
  const config: AlertConfig = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: test.redisUrl,
    REDIS_KEY_PREFIX: `${test.redisPrefix}${randomBytes(3).toString('hex')}:`,
    ALERT_GROUP_WINDOW_MS: '0',
    ALERT_MAX_EVENT_AGE_MS: String(48 * 3_600_000),
    ...env,
  });
  const logger: Logger = createLogger('alert-test', 'silent');
  const db = await createDataSource({ url: databaseUrl, poolSize: 4 }).initialize();
  metrics ??= new AlertMetrics();
  const audit = new AuditRepository(db);
  const thresholds = new ThresholdsService(new ThresholdsRepository(db), audit);
  const mutesRepository = new MutesRepository(db);
  const queues = new AlertQueuesClient(config, logger);
  const lifecycleRepository = new LifecycleRepository(db);
  const lifecycle = new LifecycleService(
    config,
    logger,
    lifecycleRepository,
    mutesRepository,
    thresholds,
    queues,
    metrics,
    clock,
  );
  const groupsRepository = new GroupsRepository(db);
  const groups = new GroupsService(logger, groupsRepository, queues, metrics, clock);
  const muteReplay = new MuteReplayService(logger, new MuteReplayRepository(db), mutesRepository, queues, clock);
  const rules = new RulesService(
    config,
    logger,
    new RulesRepository(db),
    thresholds,
    lifecycle,
    lifecycleRepository,
    groupsRepository,
    queues,
    metrics,
    clock,
    muteReplay,
  );
  const events = new AlertEventsService(config, lifecycle, thresholds, new AlertEventsRepository(db), clock);
  return {
    db,
    queues,
    lifecycle,
    groups,
    rules,
    events,
    thresholds,
    mutes: new MutesService(mutesRepository, audit, clock, muteReplay),
    muteReplay,
    async close() {
      await queues.onApplicationShutdown();
      await db.destroy();
    },
  };
}
