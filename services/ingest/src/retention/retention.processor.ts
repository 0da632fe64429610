import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { JobNames, Queues, type IngestMaintenanceJob } from '@agentmeter/contracts';
import { IngestConfig } from '../config';
import { RetentionService } from './retention.service';

/**
 * BullMQ edge of retention. A job scheduler (one per queue, whatever the number of ingest replicas)
 * runs it on a cron pattern; one run at start-up makes sure today's and the coming days' partitions exist.
 */
@Injectable()
export class RetentionProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly connection: Redis;
  private readonly queue: Queue<IngestMaintenanceJob>;
  private worker: Worker<IngestMaintenanceJob> | undefined;

  constructor(
    @Inject(IngestConfig) private readonly config: IngestConfig,
    private readonly retention: RetentionService,
  ) {
    this.connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: true });
    this.queue = new Queue(Queues.IngestMaintenance, { connection: this.connection, prefix: this.prefix });
  }

  private get prefix(): string {
    return `${this.config.REDIS_KEY_PREFIX}bull`;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.retention.run();
    await this.queue.upsertJobScheduler(
      JobNames.Retention,
      { pattern: this.config.RETENTION_CRON, tz: 'UTC' },
      {
        name: JobNames.Retention,
        data: { name: JobNames.Retention },
        opts: { attempts: 5, backoff: { type: 'exponential', delay: 30_000 } },
      },
    );
    this.worker = new Worker<IngestMaintenanceJob>(
      Queues.IngestMaintenance,
      async (job) => {
        switch (job.data.name) {
          case JobNames.Retention:
            return this.retention.run(job.data.now ? new Date(job.data.now) : undefined);
        }
      },
      { connection: this.connection.duplicate(), prefix: this.prefix, concurrency: 1 },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
  }
}
