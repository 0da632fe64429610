import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { QueryJobNames, QueryRepriceQueue } from '@agentmeter/contracts';
import { isLastAttempt, JobWorker } from '@agentmeter/jobs';
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
  private worker: JobWorker<typeof QueryRepriceQueue.jobs> | undefined;

  constructor(
    private readonly queue: RepriceQueue,
    private readonly prices: PricesService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new JobWorker(
      QueryRepriceQueue,
      {
        [QueryJobNames.Reprice]: (data, job) => this.prices.runReprice(data.requestId, isLastAttempt(job)),
      },
      { connection: this.queue.connection, prefix: this.queue.prefix, logger: this.logger, concurrency: 1 },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
