import type { OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerStorageService, type ThrottlerStorage } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { Redis } from 'ioredis';
import { createRedis } from '@agentmeter/telemetry';
import type { Logger } from 'pino';
import type { QueryConfig } from '../config';

type HitRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** At most one warning this often while Redis fails. */
const WARN_EVERY_MS = 10_000;

/**
 * Rate-limit counters shared by every query replica, in Redis (the sliding-window script of
 * @nest-lab/throttler-storage-redis), so a credential's limit holds however many replicas serve it.
 * While Redis fails, this process's own counters answer instead: the API stays up with a per-replica
 * limit rather than refusing every read because of the limiter. Commands fail fast (no offline queue,
 * one attempt), so a Redis outage adds no latency beyond a refused connection.
 */
export class SharedRateLimitStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly shared: ThrottlerStorageRedisService;
  private readonly local = new ThrottlerStorageService();
  private warnedAt = 0;
  private connecting: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {
    this.shared = new ThrottlerStorageRedisService(redis);
  }

  static fromConfig(config: QueryConfig, logger: Logger): SharedRateLimitStorage {
    // Errors are reported by increment(), once in a while.
    const redis = createRedis(config.REDIS_URL, {
      name: 'redis (rate limit)',
      logger: null,
      lazyConnect: true, // on the first request: defining the module opens nothing
      keyPrefix: `${config.REDIS_KEY_PREFIX}query:rate:`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      // Shutdown waits this long at most for a socket that never connected (ioredis' default is 2 s).
      disconnectTimeout: 200,
    });
    return new SharedRateLimitStorage(redis, logger);
  }

  async increment(key: string, ttl: number, limit: number, blockDuration: number, name: string): Promise<HitRecord> {
    try {
      if (this.redis.status === 'wait') await (this.connecting ??= this.redis.connect());
      return await this.shared.increment(key, ttl, limit, blockDuration, name);
    } catch (error) {
      if (Date.now() - this.warnedAt > WARN_EVERY_MS) {
        this.warnedAt = Date.now();
        this.logger.warn({ err: error }, 'rate limit: Redis unavailable, counting in this process meanwhile');
      }
      return this.local.increment(key, ttl, limit, blockDuration, name);
    }
  }

  onApplicationShutdown(): void {
    this.local.onApplicationShutdown();
    this.redis.disconnect();
  }
}
