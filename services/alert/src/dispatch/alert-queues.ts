import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  ALERT_DELIVERY_BACKOFF,
  AlertDeliveryQueues,
  AlertJobNames,
  AlertRulesQueue,
  type DeliveryChannel,
} from '@agentmeter/contracts';
import { JobQueue } from '@agentmeter/jobs';
import { BULLMQ_CONNECTION, createRedis } from '@agentmeter/telemetry';
import { AlertConfig } from '../config';
import { LOGGER } from '../logger';

/**
 * The BullMQ queues the alert service writes to: its own rules queue (evaluations, group flushes, the
 * sweep) and one delivery queue per channel. Job ids are deterministic, so adding a job twice (a retry, a
 * replica, the sweep) adds it once.
 */
@Injectable()
export class AlertQueuesClient implements OnApplicationShutdown {
  readonly connection: Redis;
  readonly rules: JobQueue<typeof AlertRulesQueue.jobs>;
  private readonly deliveries: Record<DeliveryChannel, JobQueue<typeof AlertDeliveryQueues.email.jobs>>;

  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.connection = createRedis(config.REDIS_URL, { ...BULLMQ_CONNECTION, lazyConnect: true, name: 'redis', logger });
    const options = { connection: this.connection, prefix: this.prefix, logger };
    this.rules = new JobQueue(AlertRulesQueue, options);
    this.deliveries = {
      email: new JobQueue(AlertDeliveryQueues.email, options),
      slack: new JobQueue(AlertDeliveryQueues.slack, options),
      webhook: new JobQueue(AlertDeliveryQueues.webhook, options),
      pagerduty: new JobQueue(AlertDeliveryQueues.pagerduty, options),
      banner: new JobQueue(AlertDeliveryQueues.banner, options),
    };
  }

  get prefix(): string {
    return `${this.config.REDIS_KEY_PREFIX}bull`;
  }

  async flushGroupAt(groupId: string, delayMs: number): Promise<void> {
    await this.rules.add(
      AlertJobNames.FlushGroup,
      { groupId },
      {
        jobId: `flush-${groupId}`,
        delay: Math.max(0, delayMs),
        attempts: 10,
        backoff: { type: 'exponential', delay: 1_000 },
        removeOnComplete: { age: 3_600 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
  }

  /**
   * The replay of a mute's silenced alerts, `delayMs` from now (its end). Keyed by the mute: a job already
   * waiting is brought forward (the mute was cancelled early), a finished one is replaced (the replay claims the
   * mute in PostgreSQL, so running it again is harmless).
   */
  async muteEndedIn(muteId: string, delayMs: number): Promise<void> {
    const jobId = `mute-end-${muteId}`;
    const job = await this.rules.getJob(jobId);
    if (job) {
      const state = await job.getState();
      if (state === 'delayed' && delayMs <= 0) return void (await job.promote());
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return;
      await job.remove();
    }
    await this.rules.add(
      AlertJobNames.MuteEnded,
      { muteId },
      {
        jobId,
        delay: Math.max(0, delayMs),
        attempts: 10,
        backoff: { type: 'exponential', delay: 1_000 },
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
  }

  async deliver(channel: DeliveryChannel, deliveryId: string): Promise<void> {
    await this.deliveries[channel].add(
      AlertJobNames.Deliver,
      { deliveryId },
      {
        jobId: deliveryId,
        attempts: channel === 'banner' ? 10 : this.config.ALERT_DELIVERY_ATTEMPTS,
        backoff: { type: ALERT_DELIVERY_BACKOFF },
        removeOnComplete: { age: 3_600, count: 10_000 },
        // Failed jobs are the dead letters (with alert_deliveries.status = 'dead'): kept two weeks.
        removeOnFail: { age: 14 * 86_400 },
      },
    );
  }

  /**
   * Makes sure an open group past its flush time has a live flush job: adds it when missing (Redis lost it),
   * and replaces a finished one (its attempts ran out while PostgreSQL was away). Flushing twice is harmless:
   * the flush closes the group in the database first.
   */
  async ensureFlush(groupId: string): Promise<'alive' | 'added'> {
    const job = await this.rules.getJob(`flush-${groupId}`);
    if (job) {
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return 'alive';
      await job.remove();
    }
    await this.flushGroupAt(groupId, 0);
    return 'added';
  }

  /**
   * Makes sure an unfinished delivery has a live job: adds it when missing, and replaces a finished one (a
   * worker that died after its job stalled out leaves the row unfinished and the job failed).
   */
  async ensureDelivery(channel: DeliveryChannel, deliveryId: string): Promise<'alive' | 'added'> {
    const queue = this.deliveries[channel];
    const job = await queue.getJob(deliveryId);
    if (job) {
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed') return 'alive';
      await job.remove();
    }
    await this.deliver(channel, deliveryId);
    return 'added';
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.rules.close(), ...Object.values(this.deliveries).map((queue) => queue.close())]);
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
  }
}
