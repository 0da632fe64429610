import { z } from 'zod';

/**
 * The environment every AgentMeter service reads (docs/operations.md; docs/decisions.md "One service skeleton"):
 * its port, log level, PostgreSQL and Redis. Each service's config.ts spreads it into its own zod object, giving
 * only its port and its pool size, and adds kafkaEnv and pseudonymEnv where it uses them. Names, defaults and
 * limits are the ones every config.ts had.
 */
export function serviceEnv(defaults: { port: number; pool: { min: number; max: number; default: number } }) {
  return {
    PORT: z.coerce.number().int().min(0).max(65535).default(defaults.port),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/agentmeter'),
    DATABASE_POOL_SIZE: z.coerce
      .number()
      .int()
      .min(defaults.pool.min)
      .max(defaults.pool.max)
      .default(defaults.pool.default),
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    /** Prefix of every Redis key (BullMQ included); tests isolate runs with it. Equal in alert and alert-worker. */
    REDIS_KEY_PREFIX: z.string().default('agentmeter:'),
  };
}

/** Kafka: brokers (comma-separated) and the prefix of every topic name (tests isolate runs with it). */
export const kafkaEnv = {
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
};

/** The pseudonym key of the services that redact (docs/security.md); required in production (requirePseudonymKey). */
export const pseudonymEnv = {
  NODE_ENV: z.string().default('development'),
  /** Key of identifier pseudonyms (docs/security.md); required in production. */
  PSEUDONYM_KEY: z.string().min(32, 'PSEUDONYM_KEY must be at least 32 characters').optional(),
};

/** The production rule of pseudonymEnv, for a schema's superRefine. */
export function requirePseudonymKey(config: { NODE_ENV: string; PSEUDONYM_KEY?: string }, ctx: z.RefinementCtx): void {
  if (config.NODE_ENV === 'production' && config.PSEUDONYM_KEY === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['PSEUDONYM_KEY'],
      message: 'PSEUDONYM_KEY is required when NODE_ENV=production',
    });
  }
}

/**
 * Parses the environment once: a frozen typed object, or an error naming every variable at fault (its name and
 * the rule, never its value: a token must not reach a log).
 */
export function parseEnv<T extends z.ZodType>(
  service: string,
  schema: T,
  env: NodeJS.ProcessEnv,
): Readonly<z.output<T>> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`${service}: invalid configuration: ${problems}`);
  }
  return Object.freeze(parsed.data);
}
