import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QueryJobNames, QueryQueues, type RepriceJob } from '@agentmeter/contracts';
import { logConnectionErrors, tracedProcessor } from '@agentmeter/telemetry';
import { LOGGER } from '../logger';
import { PricesService } from './prices.service';
import { RepriceQueue } from './reprice.queue';

/**
 * BullMQ edge of reprices asked for through the API: one job at a time per replica (a reprice takes an
 * advisory lock in PostgreSQL, so replicas run them one after another anyway). A failed attempt is retried
 * with backoff; the last one marks the request failed.
 */
@Injectable()
export class RepriceProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker: Worker<RepriceJob> | undefined;
  private connection: Redis | undefined;

  constructor(
    private readonly queue: RepriceQueue,
    private readonly prices: PricesService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.connection = this.queue.workerConnection();
    this.worker = logConnectionErrors(
      new Worker<RepriceJob>(
        QueryQueues.Reprice,
        tracedProcessor(async (job: Job<RepriceJob>) => {
          switch (job.data.name) {
            case QueryJobNames.Reprice:
              return this.prices.runReprice(job.data.requestId, job.attemptsMade + 1 >= (job.opts.attempts ?? 1));
          }
        }),
        { connection: this.connection, prefix: this.queue.prefix, concurrency: 1 },
      ),
      this.logger,
      'reprice worker',
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
    this.connection?.disconnect();
  }
}
