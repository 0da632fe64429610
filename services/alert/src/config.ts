import { z } from 'zod';
import { kafkaEnv, parseEnv, pseudonymEnv, requirePseudonymKey, serviceEnv } from '@agentmeter/http';
import { SecretBox } from '@agentmeter/domain';

const flag = z
  .enum(['true', 'false'])
  .default('false')
  .transform((value) => value === 'true');

/** The alert service's configuration; the only place that reads the environment. */
const Fields = z.object({
  ...serviceEnv({ port: 3003, pool: { min: 1, max: 100, default: 5 } }),
  ...kafkaEnv,
  ...pseudonymEnv,
  /** Consumer group of agent.events.v1; agent.alerts.v1 is read by "<group>-signals". */
  ALERT_GROUP_ID: z.string().min(1).default('agentmeter-alert'),
  ALERT_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(300_000).default(10_000),
  /**
   * Events older than this (event time) raise no alert: a new consumer group reads the topic from the
   * beginning, and weeks-old cap crossings are history, not news.
   */
  ALERT_MAX_EVENT_AGE_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .default(24 * 3_600_000),
  /** Bearer token of the admin API and of Alertmanager's webhook. Unset: those routes answer 503. */
  ALERT_API_TOKEN: z.string().min(32, 'ALERT_API_TOKEN must be at least 32 characters').optional(),
  /** 32 bytes, base64 or hex: encrypts webhook and Slack URLs at rest. Unset: such contacts are refused. */
  ALERT_ENCRYPTION_KEY: z
    .string()
    .optional()
    .refine((value) => value === undefined || isKey(value), 'ALERT_ENCRYPTION_KEY must be 32 bytes as base64 or hex'),
  /** Hosts a Slack contact may point at, comma-separated. */
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
  /** Notifications of one tenant and rule within this window go out as one message (docs/alert.md "Grouping, muting, routing"). */
  ALERT_GROUP_WINDOW_MS: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
  /** How often each time-based rule is evaluated. */
  ALERT_EVALUATE_EVERY_MS: z.coerce.number().int().min(200).default(60_000),
  /** How often the sweep re-enqueues stuck work and resolves quiet event alerts. */
  ALERT_SWEEP_EVERY_MS: z.coerce.number().int().min(200).default(60_000),
  /**
   * How often each replica re-creates, from PostgreSQL, the BullMQ work a Redis restart lost (schedulers,
   * group flushes, deliveries); also done at once when Redis is back. docs/operations.md.
   */
  ALERT_RECOVERY_EVERY_MS: z.coerce.number().int().min(200).default(10_000),
  /** A delivery still unfinished after this long without a live job is enqueued again by the sweep. */
  ALERT_STALE_AFTER_MS: z.coerce.number().int().min(1_000).default(300_000),
  /** Attempts per delivery (the worker's backoff spaces them); the last failure dead-letters it. */
  ALERT_DELIVERY_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
});
const Schema = Fields.superRefine(requirePseudonymKey);

function isKey(value: string): boolean {
  try {
    SecretBox.fromConfig(value);
    return true;
  } catch {
    return false;
  }
}

/** Injection token of the frozen configuration. */
export const AlertConfig = Symbol('AlertConfig');
export type AlertConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AlertConfig {
  return parseEnv('alert', Schema, env);
}
