import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Worker } from 'bullmq';
import { AlertJobNames, AlertQueues, type AlertRulesJob } from '@agentmeter/contracts';
import { AlertConfig } from '../config';
import { AlertQueuesClient } from '../delivery/alert-queues';
import { GroupsService } from '../delivery/groups.service';
import { RulesService } from './rules.service';

/**
 * BullMQ edge of the alert service. Job schedulers (one per rule, whatever the number of replicas:
 * upserting a scheduler is idempotent and BullMQ produces one job per tick) evaluate the time-based rules
 * and run the sweep; delayed jobs flush groups when their window ends. Any replica's worker may take any job.
 */
@Injectable()
export class RulesProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker: Worker<AlertRulesJob> | undefined;

  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    private readonly queues: AlertQueuesClient,
    private readonly rules: RulesService,
    private readonly groups: GroupsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const every = this.config.ALERT_EVALUATE_EVERY_MS;
    for (const rule of RulesService.evaluatedRules) {
      await this.queues.rules.upsertJobScheduler(
        `evaluate-${rule}`,
        { every },
        {
          name: AlertJobNames.Evaluate,
          data: { name: AlertJobNames.Evaluate, rule },
          opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
        },
      );
    }
    await this.queues.rules.upsertJobScheduler(
      'sweep',
      { every: this.config.ALERT_SWEEP_EVERY_MS },
      {
        name: AlertJobNames.Sweep,
        data: { name: AlertJobNames.Sweep },
        opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
    this.worker = new Worker<AlertRulesJob>(
      AlertQueues.Rules,
      async (job) => {
        switch (job.data.name) {
          case AlertJobNames.Evaluate:
            return void (await this.rules.evaluate(job.data.rule));
          case AlertJobNames.FlushGroup:
            return void (await this.groups.flush(job.data.groupId));
          case AlertJobNames.Sweep:
            return this.rules.sweep();
        }
      },
      { connection: this.queues.connection.duplicate(), prefix: this.queues.prefix, concurrency: 4 },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }

  isRunning(): boolean {
    return this.worker?.isRunning() ?? false;
  }
}
