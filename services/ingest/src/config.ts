import { z } from 'zod';
import { kafkaEnv, parseEnv, pseudonymEnv, requirePseudonymKey, serviceEnv } from '@agentmeter/http';

/** The ingest service's configuration; the only place that reads the environment. */
const Fields = z.object({
  ...serviceEnv({ port: 3001, pool: { min: 1, max: 100, default: 10 } }),
  ...kafkaEnv,
  ...pseudonymEnv,
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
  INGEST_GROUP_ID: z.string().min(1).default('agentmeter-ingest'),
  INGEST_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(300_000).default(10_000),
  INGEST_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(3),
});
const Schema = Fields.superRefine(requirePseudonymKey);

/** Injection token of the frozen configuration. */
export const IngestConfig = Symbol('IngestConfig');
export type IngestConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return parseEnv('ingest', Schema, env);
}
