import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type Job, type Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AlertJobNames, AlertQueues, AlertRules, type AlertRulesJob } from '@agentmeter/contracts';
import { logConnectionErrors, RecoveryLoop, tracedProcessor } from '@agentmeter/telemetry';
import { AlertConfig } from '../config';
import { AlertQueuesClient } from '../dispatch/alert-queues';
import { GroupsService } from '../dispatch/groups.service';
import { LOGGER } from '../logger';
import { MuteReplayService } from '../mutes/mute-replay.service';
import { RulesService } from './rules.service';

/**
 * BullMQ edge of the alert service. Job schedulers (one per rule, whatever the number of replicas:
 * upserting a scheduler is idempotent and BullMQ produces one job per tick) evaluate the time-based rules
 * and run the sweep; delayed jobs flush groups when their window ends. Any replica's worker may take any job.
 *
 * All of that lives in Redis, which may restart empty: a recovery loop (in-process timer, and at once when
 * Redis is back) upserts the schedulers again and re-enqueues, from PostgreSQL, the flushes and deliveries
 * whose jobs are gone (RulesService.recoverScheduled). docs/operations.md.
 */
@Injectable()
export class RulesProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker: Worker<AlertRulesJob> | undefined;
  private readonly workerConnection: Redis;
  private readonly recovery: RecoveryLoop;

  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    private readonly queues: AlertQueuesClient,
    private readonly rules: RulesService,
    private readonly groups: GroupsService,
    private readonly muteReplay: MuteReplayService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    // BullMQ does not close a connection it was given: this one is closed at shutdown.
    this.workerConnection = queues.duplicateConnection();
    this.recovery = new RecoveryLoop(
      'alert scheduler recovery',
      config.ALERT_RECOVERY_EVERY_MS,
      async () => {
        await this.upsertSchedulers(true);
        await this.rules.recoverScheduled();
      },
      logger,
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.upsertSchedulers();
    this.worker = logConnectionErrors(
      new Worker<AlertRulesJob>(
        AlertQueues.Rules,
        tracedProcessor(async (job: Job<AlertRulesJob>) => {
          switch (job.data.name) {
            case AlertJobNames.Evaluate:
              return void (await this.rules.evaluate(job.data.rule));
            case AlertJobNames.FlushGroup:
              return void (await this.groups.flush(job.data.groupId));
            case AlertJobNames.Sweep:
              return this.rules.sweep();
            case AlertJobNames.MuteEnded:
              return void (await this.muteReplay.replay(job.data.muteId));
          }
        }),
        { connection: this.workerConnection, prefix: this.queues.prefix, concurrency: 4 },
      ),
      this.logger,
      'rules worker',
    );
    this.recovery.start([this.queues.connection, this.workerConnection]);
  }

  /**
   * At start-up every scheduler is upserted (its settings may have changed); the recovery only puts back the
   * missing ones, so the ticks of the others are left alone.
   */
  private async upsertSchedulers(onlyMissing = false): Promise<void> {
    const upsert = async (...args: Parameters<Queue<AlertRulesJob>['upsertJobScheduler']>): Promise<void> => {
      if (onlyMissing && (await this.queues.rules.getJobScheduler(args[0]))) return;
      await this.queues.rules.upsertJobScheduler(...args);
    };
    for (const rule of RulesService.evaluatedRules) {
      // Drift compares days of calls: every 15 minutes at most is plenty, and spares the database.
      const every =
        rule === AlertRules.ImplementerDrift
          ? Math.max(this.config.ALERT_EVALUATE_EVERY_MS, 15 * 60_000)
          : this.config.ALERT_EVALUATE_EVERY_MS;
      await upsert(
        `evaluate-${rule}`,
        { every },
        {
          name: AlertJobNames.Evaluate,
          data: { name: AlertJobNames.Evaluate, rule },
          opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
        },
      );
    }
    await upsert(
      'sweep',
      { every: this.config.ALERT_SWEEP_EVERY_MS },
      {
        name: AlertJobNames.Sweep,
        data: { name: AlertJobNames.Sweep },
        opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.recovery.stop();
    await this.worker?.close();
    this.workerConnection.disconnect();
  }

  /**
   * The scheduler's readiness: the worker runs, the last recovery succeeded, and the sweep's scheduler is in
   * Redis (it is not after Redis restarted empty, until the recovery put it back).
   */
  async assertScheduling(): Promise<void> {
    if (!(this.worker?.isRunning() ?? false)) throw new Error('rules worker not running');
    if (!this.recovery.healthy()) throw new Error('scheduled work not recovered yet');
    if (!(await this.queues.rules.getJobScheduler('sweep'))) throw new Error('job schedulers missing from Redis');
  }
}
