import { z } from 'zod';

/** The ingest service's configuration; the only place that reads the environment. */
const Fields = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/agentmeter'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  /** Prefix of every Redis key (BullMQ included); tests isolate runs with it. */
  REDIS_KEY_PREFIX: z.string().default('agentmeter:'),
  /** Raw events and call rows are kept this many days (14 to 30; docs/operations.md "Retention"). */
  RETENTION_RAW_DAYS: z.coerce.number().int().min(14).max(30).default(30),
  /** Daily usage rollups older than this are folded into monthly rows (docs/operations.md "Retention"). */
  RETENTION_DAILY_USAGE_DAYS: z.coerce.number().int().min(1).default(90),
  /** Runs, stages, failures and monthly usage are kept this many months (docs/operations.md "Retention"). */
  RETENTION_AGGREGATE_MONTHS: z.coerce.number().int().min(1).default(13),
  RETENTION_CRON: z.string().default('17 3 * * *'),
  /**
   * Credentials of the OTLP receiver: "tenant=token" pairs, comma-separated ("*=token" for a collector
   * that forwards every tenant). Tokens must be at least 24 characters. Empty: the receiver refuses all.
   */
  OTLP_TOKENS: z
    .string()
    .default('')
    .transform((value, ctx) =>
      value
        .split(',')
        .map((pair) => pair.trim())
        .filter(Boolean)
        .map((pair) => {
          const [tenant = '', token = ''] = pair.split('=', 2);
          if (!tenant || token.length < 24) {
            ctx.addIssue({ code: 'custom', message: 'expected tenant=token pairs with tokens of 24+ characters' });
          }
          return { tenant, token };
        }),
    ),
  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((value) =>
      value
        .split(',')
        .map((broker) => broker.trim())
        .filter(Boolean),
    ),
  KAFKA_TOPIC_PREFIX: z.string().default(''),
  INGEST_GROUP_ID: z.string().min(1).default('agentmeter-ingest'),
  INGEST_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(300_000).default(10_000),
  INGEST_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(3),
  NODE_ENV: z.string().default('development'),
  /** Key of identifier pseudonyms (docs/security.md); required in production. */
  PSEUDONYM_KEY: z.string().min(32, 'PSEUDONYM_KEY must be at least 32 characters').optional(),
});
const Schema = Fields.refine((config) => config.NODE_ENV !== 'production' || config.PSEUDONYM_KEY !== undefined, {
  path: ['PSEUDONYM_KEY'],
  message: 'PSEUDONYM_KEY is required when NODE_ENV=production',
});

/** Injection token of the frozen configuration. */
export const IngestConfig = Symbol('IngestConfig');
export type IngestConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  const parsed = Schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`ingest: invalid configuration: ${problems}`);
  }
  return Object.freeze(parsed.data);
}
