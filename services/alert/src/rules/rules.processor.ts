import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { AlertJobNames, AlertRules, AlertRulesQueue } from '@agentmeter/contracts';
import { JobWorker } from '@agentmeter/jobs';
import { RecoveryLoop } from '@agentmeter/telemetry';
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
  private worker: JobWorker<typeof AlertRulesQueue.jobs> | undefined;
  private readonly recovery: RecoveryLoop;

  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    private readonly queues: AlertQueuesClient,
    private readonly rules: RulesService,
    private readonly groups: GroupsService,
    private readonly muteReplay: MuteReplayService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
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
    this.worker = new JobWorker(
      AlertRulesQueue,
      {
        [AlertJobNames.Evaluate]: async (data) => void (await this.rules.evaluate(data.rule)),
        [AlertJobNames.FlushGroup]: async (data) => void (await this.groups.flush(data.groupId)),
        [AlertJobNames.Sweep]: () => this.rules.sweep(),
        [AlertJobNames.MuteEnded]: async (data) => void (await this.muteReplay.replay(data.muteId)),
      },
      { connection: this.queues.connection, prefix: this.queues.prefix, logger: this.logger, concurrency: 4 },
    );
    this.recovery.start([this.queues.connection, this.worker.connection]);
  }

  /**
   * At start-up every scheduler is upserted (its settings may have changed); the recovery only puts back the
   * missing ones, so the ticks of the others are left alone.
   */
  private async upsertSchedulers(onlyMissing = false): Promise<void> {
    const rules = this.queues.rules;
    const wanted = async (schedulerId: string) => !onlyMissing || !(await rules.getJobScheduler(schedulerId));
    for (const rule of RulesService.evaluatedRules) {
      // Drift compares days of calls: every 15 minutes at most is plenty, and spares the database.
      const every =
        rule === AlertRules.ImplementerDrift
          ? Math.max(this.config.ALERT_EVALUATE_EVERY_MS, 15 * 60_000)
          : this.config.ALERT_EVALUATE_EVERY_MS;
      const id = `evaluate-${rule}`;
      if (await wanted(id)) {
        await rules.upsertScheduler(id, { every }, AlertJobNames.Evaluate, { rule }, schedulerJobOptions);
      }
    }
    if (await wanted('sweep')) {
      await rules.upsertScheduler(
        'sweep',
        { every: this.config.ALERT_SWEEP_EVERY_MS },
        AlertJobNames.Sweep,
        {},
        schedulerJobOptions,
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.recovery.stop();
    await this.worker?.close();
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

/** Jobs of the schedulers: a failed tick is not retried (the next one comes soon), and few are kept. */
const schedulerJobOptions = { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };
