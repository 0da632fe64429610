import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QueryJobNames, QueryRepriceQueue } from '@agentmeter/contracts';
import { JobQueue } from '@agentmeter/jobs';
import { logConnectionErrors } from '@agentmeter/telemetry';
import { QueryConfig } from '../config';
import { LOGGER } from '../logger';

/** Jobs of a reprice: attempts before the request is marked failed, and the backoff between them. */
export const REPRICE_ATTEMPTS = 3;

/** Queues reprices asked for through the API; reprice.processor.ts runs them. */
@Injectable()
export class RepriceQueue implements OnApplicationShutdown {
  readonly connection: Redis;
  private readonly queue: JobQueue<typeof QueryRepriceQueue.jobs>;

  constructor(
    @Inject(QueryConfig) private readonly config: QueryConfig,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.connection = logConnectionErrors(
      new Redis(config.REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: true }),
      logger,
      'redis (reprice queue)',
    );
    this.queue = new JobQueue(QueryRepriceQueue, { connection: this.connection, prefix: this.prefix, logger });
  }

  get prefix(): string {
    return `${this.config.REDIS_KEY_PREFIX}bull`;
  }

  /** Queues the reprice of a request; the job id is the request's (adding it twice queues one job). */
  async add(requestId: string): Promise<void> {
    await this.queue.add(
      QueryJobNames.Reprice,
      { requestId },
      {
        jobId: `reprice-${requestId}`,
        attempts: REPRICE_ATTEMPTS,
        backoff: { type: 'exponential', delay: 5_000 },
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close();
    this.connection.disconnect();
  }
}
