import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CostCapJobNames, CostCapQueues, type CostCapTimerJob } from '@agentmeter/contracts';
import { logConnectionErrors, tracedProcessor } from '@agentmeter/telemetry';
import { LOGGER } from '../logger';
import { OverridesService } from '../overrides/overrides.service';
import { TimersQueue } from '../queues/timers.queue';
import { WallTimeService } from './wall-time.service';

type Handlers = {
  [N in CostCapTimerJob['name']]: (job: Job<CostCapTimerJob & { name: N }>, token?: string) => Promise<void>;
};

/** BullMQ edge of cost-cap's timers: each job name has a handler, checked at start-up. */
@Injectable()
export class TimersProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker: Worker<CostCapTimerJob> | undefined;
  private connection: Redis | undefined;
  private readonly handlers: Handlers;

  constructor(
    private readonly timers: TimersQueue,
    private readonly wallTime: WallTimeService,
    private readonly overrides: OverridesService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.handlers = {
      [CostCapJobNames.WallTime]: async (job, token) => {
        const outcome = await this.wallTime.fire(job.data.tenantId, job.data.runId, job.data.threshold);
        if (outcome.status === 'later') await this.postpone(job, outcome.at, token);
      },
      [CostCapJobNames.OverrideExpiry]: async (job, token) => {
        const outcome = await this.overrides.recordExpiry(job.data.overrideId);
        if (outcome.status === 'later') await this.postpone(job, outcome.at, token);
      },
    };
  }

  onApplicationBootstrap(): void {
    for (const name of Object.values(CostCapJobNames)) {
      if (!this.handlers[name]) throw new Error(`cost-cap: no handler for job ${name}`);
    }
    // BullMQ does not close a connection it was given: this one is closed at shutdown.
    this.connection = this.timers.duplicateConnection();
    this.worker = new Worker<CostCapTimerJob>(
      CostCapQueues.Timers,
      tracedProcessor((job: Job<CostCapTimerJob>, token?: string) => this.handlers[job.data.name](job as never, token)),
      { connection: this.connection, prefix: this.timers.prefix, concurrency: 5 },
    );
    logConnectionErrors(this.worker, this.logger, 'timers worker');
    this.worker.on('failed', (job, error) =>
      this.logger.warn({ err: error, job: job?.name, attempts: job?.attemptsMade }, 'timer job failed'),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
    this.connection?.disconnect();
  }

  /** `at` is a time of the service clock; BullMQ wants a machine timestamp. */
  private async postpone(job: Job<CostCapTimerJob>, at: Date, token: string | undefined): Promise<never> {
    await job.moveToDelayed(Date.now() + this.timers.delayUntil(at), token);
    throw new DelayedError();
  }
}
