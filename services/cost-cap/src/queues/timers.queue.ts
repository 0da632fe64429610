import { createHash } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CostCapJobNames, CostCapTimersQueue } from '@agentmeter/contracts';
import { Clock } from '@agentmeter/domain';
import { JobQueue } from '@agentmeter/jobs';
import { BULLMQ_CONNECTION, createRedis } from '@agentmeter/telemetry';
import { CostCapConfig } from '../config';
import { LOGGER } from '../logger';

export const WALL_TIME_THRESHOLDS = [80, 100] as const;

/**
 * Schedules cost-cap's timers as delayed BullMQ jobs with deterministic ids (scheduling twice is a
 * no-op): the 80 % and 100 % points of a running run's wall-time cap, and the expiry of a temporary raise.
 * A timer is due at a time of the service clock (the one every decision uses); BullMQ fires on the machine
 * clock, so it gets the delay until then (delayUntil). With the real clock the two are the same.
 */
@Injectable()
export class TimersQueue implements OnApplicationShutdown {
  readonly connection: Redis;
  readonly queue: JobQueue<typeof CostCapTimersQueue.jobs>;
  readonly prefix: string;

  constructor(
    @Inject(CostCapConfig) config: CostCapConfig,
    private readonly clock: Clock,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.prefix = `${config.REDIS_KEY_PREFIX}bull`;
    this.connection = createRedis(config.REDIS_URL, { ...BULLMQ_CONNECTION, name: 'redis (timers)', logger });
    this.queue = new JobQueue(CostCapTimersQueue, {
      connection: this.connection,
      prefix: this.prefix,
      logger,
      defaultJobOptions: {
        removeOnComplete: true,
        removeOnFail: 1_000,
        attempts: 10,
        backoff: { type: 'exponential', delay: 1_000 },
      },
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close();
    this.connection.disconnect();
  }

  async ping(): Promise<void> {
    await this.connection.ping();
  }

  async scheduleWallTime(tenantId: string, runId: string, startedAt: Date, limitS: bigint): Promise<void> {
    for (const threshold of WALL_TIME_THRESHOLDS) {
      const at = startedAt.getTime() + Math.floor((Number(limitS) * 1000 * threshold) / 100);
      await this.queue.add(
        CostCapJobNames.WallTime,
        { tenantId, runId, threshold },
        { jobId: wallTimeJobId(tenantId, runId, threshold), delay: this.delayUntil(new Date(at)) },
      );
    }
  }

  /** The run ended: its wall-time timers are removed (a timer already running finds the run finished). */
  async cancelWallTime(tenantId: string, runId: string): Promise<void> {
    for (const threshold of WALL_TIME_THRESHOLDS) {
      await this.queue.remove(wallTimeJobId(tenantId, runId, threshold)).catch(() => 0);
    }
  }

  async scheduleOverrideExpiry(overrideId: string, expiresAt: Date): Promise<void> {
    await this.queue.add(
      CostCapJobNames.OverrideExpiry,
      { overrideId },
      { jobId: `raise-${overrideId}`, delay: this.delayUntil(expiresAt) },
    );
  }

  /** Milliseconds from the service clock's now until `at` (0 when it is due). */
  delayUntil(at: Date): number {
    return Math.max(0, at.getTime() - this.clock.now().getTime());
  }

  async wallTimeJob(tenantId: string, runId: string, threshold: 80 | 100) {
    return this.queue.getJob(wallTimeJobId(tenantId, runId, threshold));
  }
}

/** BullMQ job ids may not contain ":"; tenant and run ids may. */
export function wallTimeJobId(tenantId: string, runId: string, threshold: number): string {
  const hash = createHash('sha1').update(`${tenantId}\u0000${runId}`).digest('hex');
  return `wall-${hash}-${threshold}`;
}
