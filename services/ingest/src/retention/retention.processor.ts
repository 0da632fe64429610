import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { JobNames, Queues, type IngestMaintenanceJob } from '@agentmeter/contracts';
import {
  BULLMQ_CONNECTION,
  createRedis,
  logConnectionErrors,
  RecoveryLoop,
  tracedProcessor,
} from '@agentmeter/telemetry';
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
  private readonly queue: Queue<IngestMaintenanceJob>;
  private worker: Worker<IngestMaintenanceJob> | undefined;
  private workerConnection: Redis | undefined;
  private readonly recovery: RecoveryLoop;

  constructor(
    @Inject(IngestConfig) private readonly config: IngestConfig,
    private readonly retention: RetentionService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.connection = createRedis(config.REDIS_URL, { ...BULLMQ_CONNECTION, lazyConnect: true, name: 'redis', logger });
    this.queue = logConnectionErrors(
      new Queue(Queues.IngestMaintenance, { connection: this.connection, prefix: this.prefix }),
      logger,
      'retention queue',
    );
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
    this.workerConnection = logConnectionErrors(this.connection.duplicate(), this.logger, 'redis (worker)');
    this.worker = logConnectionErrors(
      new Worker<IngestMaintenanceJob>(
        Queues.IngestMaintenance,
        tracedProcessor(async (job: Job<IngestMaintenanceJob>) => {
          switch (job.data.name) {
            case JobNames.Retention:
              return this.retention.run(job.data.now ? new Date(job.data.now) : undefined);
          }
        }),
        { connection: this.workerConnection, prefix: this.prefix, concurrency: 1 },
      ),
      this.logger,
      'retention worker',
    );
    this.recovery.start([this.connection]);
  }

  private async upsertScheduler(): Promise<void> {
    await this.queue.upsertJobScheduler(
      JobNames.Retention,
      { pattern: this.config.RETENTION_CRON, tz: 'UTC' },
      {
        name: JobNames.Retention,
        data: { name: JobNames.Retention },
        opts: { attempts: 5, backoff: { type: 'exponential', delay: 30_000 } },
      },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.recovery.stop();
    await this.worker?.close();
    this.workerConnection?.disconnect();
    await this.queue.close();
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
  }
}
