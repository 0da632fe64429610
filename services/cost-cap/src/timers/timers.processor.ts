import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { CostCapJobNames, CostCapTimersQueue } from '@agentmeter/contracts';
import { JobWorker } from '@agentmeter/jobs';
import { LOGGER } from '../logger';
import { OverridesService } from '../overrides/overrides.service';
import { TimersQueue } from '../queues/timers.queue';
import { WallTimeService } from './wall-time.service';

/** BullMQ edge of cost-cap's timers: each job name has a handler, checked at start-up (libs/jobs). */
@Injectable()
export class TimersProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker: JobWorker<typeof CostCapTimersQueue.jobs> | undefined;

  constructor(
    private readonly timers: TimersQueue,
    private readonly wallTime: WallTimeService,
    private readonly overrides: OverridesService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new JobWorker(
      CostCapTimersQueue,
      {
        [CostCapJobNames.WallTime]: async (data, job, token) => {
          const outcome = await this.wallTime.fire(data.tenantId, data.runId, data.threshold);
          if (outcome.status === 'later') await this.postpone(job, outcome.at, token);
        },
        [CostCapJobNames.OverrideExpiry]: async (data, job, token) => {
          const outcome = await this.overrides.recordExpiry(data.overrideId);
          if (outcome.status === 'later') await this.postpone(job, outcome.at, token);
        },
      },
      { connection: this.timers.connection, prefix: this.timers.prefix, logger: this.logger, concurrency: 5 },
    );
    this.worker.onFailed((job, error) =>
      this.logger.warn({ err: error, job: job?.name, attempts: job?.attemptsMade }, 'timer job failed'),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }

  /** `at` is a time of the service clock; BullMQ wants a machine timestamp. */
  private async postpone(job: Job, at: Date, token: string | undefined): Promise<never> {
    await job.moveToDelayed(Date.now() + this.timers.delayUntil(at), token);
    throw new DelayedError();
  }
}
