import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ALERT_DELIVERY_QUEUES, AlertJobNames, type AlertDeliverJob } from '@agentmeter/contracts';
import { backoffDelayMs } from '@agentmeter/domain';
import { BULLMQ_CONNECTION, createRedis, logConnectionErrors, tracedProcessor } from '@agentmeter/telemetry';
import { WorkerConfig } from '../config';
import { LOGGER } from '../logger';
import { WorkerMetrics } from '../worker.metrics';
import { DeliveryService, RetryDelivery } from './delivery.service';

/**
 * BullMQ edge of alert-worker: one worker per channel queue (email, slack, webhook, banner), each
 * delivering one delivery id per job. Backoff is exponential with jitter, or the server's Retry-After when
 * it sent one. Operators scale this process on its own (queue length).
 */
@Injectable()
export class DeliveryProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly connection: Redis;
  private readonly workers: Worker<AlertDeliverJob>[] = [];
  /** BullMQ does not close connections it was given. */
  private readonly workerConnections: Redis[] = [];
  private readonly queues: Queue[] = [];

  constructor(
    @Inject(WorkerConfig) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly deliveries: DeliveryService,
    private readonly metrics: WorkerMetrics,
  ) {
    this.connection = createRedis(config.REDIS_URL, { ...BULLMQ_CONNECTION, lazyConnect: true, name: 'redis', logger });
  }

  private get prefix(): string {
    return `${this.config.REDIS_KEY_PREFIX}bull`;
  }

  async onApplicationBootstrap(): Promise<void> {
    const policy = { baseMs: this.config.ALERT_DELIVERY_BACKOFF_MS, maxMs: this.config.ALERT_DELIVERY_BACKOFF_MAX_MS };
    for (const name of Object.values(ALERT_DELIVERY_QUEUES)) {
      const workerConnection = logConnectionErrors(this.connection.duplicate(), this.logger, 'redis (worker)');
      this.workerConnections.push(workerConnection);
      const worker = new Worker<AlertDeliverJob>(name, tracedProcessor(this.process), {
        connection: workerConnection,
        prefix: this.prefix,
        concurrency: this.config.ALERT_WORKER_CONCURRENCY,
        maxStalledCount: 3,
        settings: {
          backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
            error instanceof RetryDelivery && error.retryAfterMs !== null
              ? error.retryAfterMs
              : backoffDelayMs(attemptsMade, policy, Math.random),
        },
      });
      logConnectionErrors(worker, this.logger, `delivery worker ${name}`);
      this.workers.push(worker);
      this.queues.push(
        logConnectionErrors(new Queue(name, { connection: this.connection, prefix: this.prefix }), this.logger, name),
      );
    }
    this.metrics.watch(
      this.queues.map((queue) => ({
        name: queue.name,
        counts: () => queue.getJobCounts('waiting', 'delayed', 'active', 'failed'),
        oldestWaitingAgeMs: async () => {
          const [oldest] = await queue.getJobs(['waiting'], -1, -1, true);
          return oldest ? Math.max(0, Date.now() - oldest.timestamp) : 0;
        },
      })),
    );
  }

  private readonly process = async (job: Job<AlertDeliverJob>): Promise<string> => {
    if (job.data.name !== AlertJobNames.Deliver) throw new Error(`unknown job ${job.data.name as string}`);
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    return this.deliveries.deliver(job.data.deliveryId, lastAttempt);
  };

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
    await Promise.all(this.queues.map((queue) => queue.close()));
    for (const connection of this.workerConnections) connection.disconnect();
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
    if (this.workers.some((worker) => !worker.isRunning())) throw new Error('a delivery worker is not running');
  }
}
