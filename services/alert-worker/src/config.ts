import { z } from 'zod';
import { parseEnv, serviceEnv } from '@agentmeter/http';
import { SecretBox } from '@agentmeter/domain';

const flag = z
  .enum(['true', 'false'])
  .default('false')
  .transform((value) => value === 'true');

/** alert-worker's configuration; the only place that reads the environment. */
const Schema = z.object({
  /** PORT: health and metrics only. */
  ...serviceEnv({ port: 3004, pool: { min: 1, max: 100, default: 5 } }),
  /** SMTP server of e-mail alerts: smtp://[user:password@]host:port (or smtps://). */
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'SMTP_URL must be smtp:// or smtps://')
    .default('smtp://127.0.0.1:25'),
  ALERT_SMTP_FROM: z.string().min(3).default('AgentMeter <alerts@agentmeter.local>'),
  /** The key the alert service encrypted webhook and Slack URLs with (32 bytes, base64 or hex). */
  ALERT_ENCRYPTION_KEY: z
    .string()
    .optional()
    .refine((value) => value === undefined || isKey(value), 'ALERT_ENCRYPTION_KEY must be 32 bytes as base64 or hex'),
  ALERT_SLACK_ALLOWED_HOSTS: z
    .string()
    .default('hooks.slack.com')
    .transform((value) =>
      value
        .split(',')
        .map((host) => host.trim().toLowerCase())
        .filter(Boolean),
    ),
  /** Tests only: webhooks and Slack may use http to loopback addresses. */
  ALERT_ALLOW_LOOPBACK_HTTP: flag,
  /** Jobs processed at once per channel queue, per process. */
  ALERT_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  /** Backoff: the step before the second attempt, doubling each time, with jitter, up to the max. */
  ALERT_DELIVERY_BACKOFF_MS: z.coerce.number().int().min(1).default(5_000),
  ALERT_DELIVERY_BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(1)
    .default(15 * 60_000),
  /** One send (connect, TLS, answer) gives up after this long. */
  ALERT_DELIVERY_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** A claimed delivery belongs to its worker this long; must exceed the timeout by far. */
  ALERT_DELIVERY_LEASE_MS: z.coerce.number().int().min(1_000).default(120_000),
});

function isKey(value: string): boolean {
  try {
    SecretBox.fromConfig(value);
    return true;
  } catch {
    return false;
  }
}

/** Injection token of the frozen configuration. */
export const WorkerConfig = Symbol('WorkerConfig');
export type WorkerConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const config = parseEnv('alert-worker', Schema, env);
  if (config.ALERT_DELIVERY_LEASE_MS <= config.ALERT_DELIVERY_TIMEOUT_MS * 2) {
    throw new Error(
      'alert-worker: invalid configuration: ALERT_DELIVERY_LEASE_MS must exceed twice ALERT_DELIVERY_TIMEOUT_MS',
    );
  }
  return config;
}
