import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { logConnectionErrors } from './connections';

/**
 * What BullMQ requires of a connection it is given (Queue, Worker): a command waits for the reconnect instead of
 * failing after a few retries.
 */
export const BULLMQ_CONNECTION = { maxRetriesPerRequest: null } as const satisfies RedisOptions;

/** How a service's connection behaves: ioredis options (key prefix, retries, laziness) and who hears its errors. */
export interface RedisConnectionOptions extends RedisOptions {
  /** Named in the log line of its connection errors ('redis (counters)'). */
  name: string;
  /**
   * Where its connection errors go (logConnectionErrors: the first of an outage, and each new one). null: the
   * caller reports failures itself, as its commands reject; the 'error' events are then only kept from being
   * thrown.
   */
  logger: Logger | null;
}

/**
 * The one place a service opens a Redis connection (docs/decisions.md "One service skeleton"): every
 * connection has an 'error' listener, so an outage never crashes the process, and its options say what it is
 * for (BULLMQ_CONNECTION for queues; bounded retries for commands on a request's path).
 */
export function createRedis(url: string, { name, logger, ...options }: RedisConnectionOptions): Redis {
  const redis = new Redis(url, options);
  if (logger) return logConnectionErrors(redis, logger, name);
  redis.on('error', () => undefined);
  return redis;
}
