import { z } from 'zod';
import { kafkaEnv, parseEnv, pseudonymEnv, requirePseudonymKey, serviceEnv } from '@agentmeter/http';

const usd = z
  .string()
  .regex(/^\d{1,12}(\.\d{1,6})?$/, 'a decimal USD amount such as "50" or "12.50"')
  .optional();
const count = z.coerce.number().int().min(0).optional();

/** The cost-cap service's configuration; the only place that reads the environment. */
const Fields = z.object({
  ...serviceEnv({ port: 3002, pool: { min: 2, max: 200, default: 20 } }),
  ...kafkaEnv,
  ...pseudonymEnv,
  COST_CAP_GROUP_ID: z.string().min(1).default('agentmeter-cost-cap'),
  COST_CAP_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(300_000).default(10_000),
  COST_CAP_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(3),
  /**
   * The shared secret every /v1 call presents as "Authorization: Bearer <token>" (the Coordinator, and the
   * query API on behalf of operators). Required; never logged.
   */
  COST_CAP_API_TOKEN: z.string().min(16, 'at least 16 characters'),
  /** Deployment defaults, used where neither the tenant nor the project sets a cap. Unset: no cap. */
  COST_CAP_DEFAULT_DAILY_USD: usd,
  COST_CAP_DEFAULT_RUN_USD: usd,
  COST_CAP_DEFAULT_RUN_EXTERNAL_USD: usd,
  COST_CAP_DEFAULT_RUN_TOKENS: count,
  COST_CAP_DEFAULT_RUN_WALL_TIME_S: count,
  /**
   * Fail closed: deny every admission of a tenant without a daily $ cap (its own, its raise, or the deployment's
   * COST_CAP_DEFAULT_DAILY_USD). Off by default: a tenant without caps has no limit.
   */
  COST_CAP_REQUIRE_DAILY_CAP: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((value) => value === 'true' || value === '1'),
  /**
   * When a reservation's call is expected to be over (a request may ask for less or more). Past it the
   * reservation is expired but its hold counts until committed or released; the caller may extend it.
   */
  COST_CAP_RESERVATION_TTL_S: z.coerce.number().int().min(1).max(86_400).default(300),
  /** Validator sampling: freeze a playbook's Publisher above this failure share of its recent samples. */
  COST_CAP_VALIDATOR_FAILURE_THRESHOLD: z.coerce.number().min(0).max(1).default(0.2),
  COST_CAP_VALIDATOR_MIN_SAMPLES: z.coerce.number().int().min(1).default(5),
  COST_CAP_VALIDATOR_WINDOW_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
  /** Remaining-budget gauges: at most this many tenants (those closest to their cap). */
  COST_CAP_METRICS_TENANTS: z.coerce.number().int().min(0).max(1000).default(50),
  /**
   * How often each replica checks that Redis still holds the counters (and so the BullMQ timers); when they
   * are gone (Redis restarted empty) it rebuilds them from PostgreSQL and reschedules the timers. Also done
   * at once when Redis is back. docs/operations.md.
   */
  COST_CAP_RECOVERY_EVERY_MS: z.coerce.number().int().min(200).default(10_000),
  /** Run counters idle this long leave Redis (a rebuild skips them; a run that spends again is loaded from the ledger). */
  COST_CAP_RUN_IDLE_DAYS: z.coerce.number().int().min(1).max(365).default(30),
});
const Schema = Fields.superRefine(requirePseudonymKey);

/** Injection token of the frozen configuration. */
export const CostCapConfig = Symbol('CostCapConfig');
export type CostCapConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): CostCapConfig {
  return parseEnv('cost-cap', Schema, env);
}
