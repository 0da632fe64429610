import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { IngestMaintenanceQueue, JobNames } from '@agentmeter/contracts';
import { JobQueue, JobWorker } from '@agentmeter/jobs';
import { BULLMQ_CONNECTION, createRedis, RecoveryLoop } from '@agentmeter/telemetry';
import { IngestConfig } from '../config';
import { LOGGER } from '../logger';
import { RetentionService } from './retention.service';

/**
 * BullMQ edge of retention. A job scheduler (one per queue, whatever the number of ingest replicas)
 * runs it on a cron pattern; one run at start-up makes sure today's and the coming days' partitions exist.
 * The scheduler lives in Redis: a recovery loop upserts it again after Redis restarted empty.
 */
@Injectable()
export class RetentionProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly connection: Redis;
  private readonly queue: JobQueue<typeof IngestMaintenanceQueue.jobs>;
  private worker: JobWorker<typeof IngestMaintenanceQueue.jobs> | undefined;
  private readonly recovery: RecoveryLoop;

  constructor(
    @Inject(IngestConfig) private readonly config: IngestConfig,
    private readonly retention: RetentionService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.connection = createRedis(config.REDIS_URL, { ...BULLMQ_CONNECTION, lazyConnect: true, name: 'redis', logger });
    this.queue = new JobQueue(IngestMaintenanceQueue, { connection: this.connection, prefix: this.prefix, logger });
    this.recovery = new RecoveryLoop(
      'retention scheduler recovery',
      60_000,
      async () => {
        if (!(await this.queue.getJobScheduler(JobNames.Retention))) await this.upsertScheduler();
      },
      logger,
    );
  }

  private get prefix(): string {
    return `${this.config.REDIS_KEY_PREFIX}bull`;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.retention.run();
    await this.upsertScheduler();
    this.worker = new JobWorker(
      IngestMaintenanceQueue,
      { [JobNames.Retention]: (data) => this.retention.run(data.now ? new Date(data.now) : undefined) },
      { connection: this.connection, prefix: this.prefix, logger: this.logger, concurrency: 1 },
    );
    this.recovery.start([this.connection]);
  }

  private async upsertScheduler(): Promise<void> {
    await this.queue.upsertScheduler(
      JobNames.Retention,
      { pattern: this.config.RETENTION_CRON, tz: 'UTC' },
      JobNames.Retention,
      {},
      { attempts: 5, backoff: { type: 'exponential', delay: 30_000 } },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.recovery.stop();
    await this.worker?.close();
    await this.queue.close();
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
  }
}
