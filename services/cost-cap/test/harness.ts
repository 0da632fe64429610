import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { Clock } from '@agentmeter/domain';
import {
  createTestDatabase,
  createTestTopics,
  testEnvironment,
  testKafka,
  type TestDatabase,
} from '@agentmeter/testing';
import { bootstrap } from '../src/app.module';
import { loadConfig } from '../src/config';

/** A clock the test moves by hand. */
export class FakeClock extends Clock {
  constructor(private current: Date) {
    super();
  }
  override now(): Date {
    return new Date(this.current);
  }
  set(at: Date | string): void {
    this.current = new Date(at);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export const TOKEN = `test-token-${randomBytes(8).toString('hex')}`;

export interface Harness {
  app: INestApplication;
  url: string;
  db: TestDatabase;
  pg: Client;
  redis: Redis;
  kafka: Kafka;
  topicPrefix: string;
  redisPrefix: string;
  groupId: string;
  api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<ApiResponse<T>>;
  /** Deletes every Redis key of this service instance: Redis "lost its data". */
  flushRedis(): Promise<void>;
  close(): Promise<void>;
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** The run's isolation for one cost-cap: its own database, topics, Redis prefix and consumer group. */
export async function isolation(): Promise<{
  db: TestDatabase;
  kafka: Kafka;
  topicPrefix: string;
  redisPrefix: string;
  groupId: string;
  env: Record<string, string>;
}> {
  const test = testEnvironment();
  const db = await createTestDatabase();
  const kafka = testKafka();
  const topicPrefix = await createTestTopics(kafka);
  const suffix = randomBytes(4).toString('hex');
  const redisPrefix = `${test.redisPrefix}cc-${suffix}:`;
  const groupId = `${test.runId}-cost-cap-${suffix}`;
  return {
    db,
    kafka,
    topicPrefix,
    redisPrefix,
    groupId,
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: test.redisUrl,
      REDIS_KEY_PREFIX: redisPrefix,
      KAFKA_BROKERS: test.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: topicPrefix,
      COST_CAP_GROUP_ID: groupId,
      COST_CAP_SESSION_TIMEOUT_MS: '6000',
      COST_CAP_API_TOKEN: TOKEN,
      LOG_LEVEL: 'error',
    },
  };
}

/** cost-cap in this process (PORT 0), with a clock the test may control. */
export async function startInProcess(options: { clock?: Clock; env?: Record<string, string> } = {}): Promise<Harness> {
  const iso = await isolation();
  const config = loadConfig({ ...iso.env, PORT: '0', ...options.env });
  const app = await bootstrap(config, { clock: options.clock });
  const address = app.getHttpServer().address() as { port: number };
  const url = `http://127.0.0.1:${address.port}`;
  const pg = new Client({ connectionString: iso.db.url });
  await pg.connect();
  const redis = new Redis(testEnvironment().redisUrl);
  const flushRedis = async () => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${iso.redisPrefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  };
  return {
    app,
    url,
    pg,
    redis,
    ...iso,
    api: (method, path, body, token = TOKEN) => call(url, method, path, body, token),
    flushRedis,
    close: async () => {
      await app.close();
      await flushRedis();
      redis.disconnect();
      await pg.end();
      await iso.db.drop();
    },
  };
}

export async function call<T>(
  url: string,
  method: string,
  path: string,
  body: unknown,
  token: string | null = TOKEN,
): Promise<ApiResponse<T>> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : null) as T };
}

/** A reservation request with defaults. */
export function reserveBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tenant_id: 'acme',
    project_id: 'site',
    run_id: 'run-1',
    role: 'implementer',
    model: 'gpt-4.1',
    provider: 'openai',
    estimate: { cost_usd: '0.010000' },
    ...overrides,
  };
}

/** Runs tasks with at most `limit` in flight. */
export async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const index = next++;
        results[index] = await tasks[index]!();
      }
    }),
  );
  return results;
}
