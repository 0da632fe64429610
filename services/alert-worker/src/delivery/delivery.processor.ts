import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AlertDeliveryQueues, AlertJobNames } from '@agentmeter/contracts';
import { backoffDelayMs } from '@agentmeter/domain';
import { isLastAttempt, JobQueue, JobWorker } from '@agentmeter/jobs';
import { BULLMQ_CONNECTION, createRedis } from '@agentmeter/telemetry';
import { WorkerConfig } from '../config';
import { LOGGER } from '../logger';
import { WorkerMetrics } from '../worker.metrics';
import { DeliveryService, RetryDelivery } from './delivery.service';

type DeliveryJobs = (typeof AlertDeliveryQueues)[keyof typeof AlertDeliveryQueues]['jobs'];

/**
 * BullMQ edge of alert-worker: one worker per channel queue (email, slack, webhook, pagerduty, banner), each
 * delivering one delivery id per job. Backoff is exponential with jitter, or the server's Retry-After when
 * it sent one. Operators scale this process on its own (queue length).
 */
@Injectable()
export class DeliveryProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly connection: Redis;
  private readonly workers: JobWorker<DeliveryJobs>[] = [];
  /** Read by the queue metrics (lengths, oldest waiting job). */
  private readonly queues: JobQueue<DeliveryJobs>[] = [];

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
    const options = { connection: this.connection, prefix: this.prefix, logger: this.logger };
    for (const contract of Object.values(AlertDeliveryQueues)) {
      const worker = new JobWorker(
        contract,
        {
          [AlertJobNames.Deliver]: (data, job) => this.deliveries.deliver(data.deliveryId, isLastAttempt(job)),
        },
        {
          ...options,
          concurrency: this.config.ALERT_WORKER_CONCURRENCY,
          maxStalledCount: 3,
          settings: {
            backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
              error instanceof RetryDelivery && error.retryAfterMs !== null
                ? error.retryAfterMs
                : backoffDelayMs(attemptsMade, policy, Math.random),
          },
        },
      );
      this.workers.push(worker);
      this.queues.push(new JobQueue(contract, options));
    }
    this.metrics.watch(
      this.queues.map((queue) => ({
        name: queue.name,
        counts: () => queue.getJobCounts('waiting', 'delayed', 'active', 'failed'),
        oldestWaitingAgeMs: () => queue.oldestWaitingAgeMs(),
      })),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
    await Promise.all(this.queues.map((queue) => queue.close()));
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
    if (this.workers.some((worker) => !worker.isRunning())) throw new Error('a delivery worker is not running');
  }
}
