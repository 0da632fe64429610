import { z } from 'zod';

/**
 * The alert service's wire formats: alert signals on agent.alerts.v1, the Alertmanager webhook it accepts,
 * its admin API bodies, the per-rule threshold parameters, and what a generic webhook receiver gets.
 * Evolve only by adding optional fields; rule ids, header names and column-facing enums do not change.
 */

const id = z.string().min(1).max(200);

/** Who an alert is for: the tenant's Owners, or the platform's Admins. */
export const AlertAudience = z.enum(['owner', 'admin']);
export type AlertAudience = z.infer<typeof AlertAudience>;

export const AlertSeverity = z.enum(['info', 'warning', 'critical']);
export type AlertSeverity = z.infer<typeof AlertSeverity>;

/** External delivery channels a contact can use (in-app banners need no contact: every alert gets one). */
export const ContactChannel = z.enum(['email', 'slack', 'webhook', 'pagerduty']);
export type ContactChannel = z.infer<typeof ContactChannel>;

/** Every channel a delivery can go through. Do not rename: stored in alert_deliveries and metric labels. */
export const DeliveryChannel = z.enum(['email', 'slack', 'webhook', 'pagerduty', 'banner']);
export type DeliveryChannel = z.infer<typeof DeliveryChannel>;

/** The tenant id of platform-wide alerts (model error spikes, queue latency, ...). */
export const PLATFORM_TENANT = '*';

/**
 * Rule ids. Do not rename: they key stored alerts, thresholds, mutes and metric labels.
 * docs/alert.md describes what each one watches.
 */
export const AlertRules = {
  CapWarning: 'owner.cap_warning',
  CapHit: 'owner.cap_hit',
  ValidationFailures: 'owner.validation_failures',
  PhaseStalled: 'owner.phase_stalled',
  ProofOverdue: 'owner.proof_overdue',
  TenantCapBreach: 'admin.tenant_cap_breach',
  ModelErrorSpike: 'admin.model_error_spike',
  WebhookFailures: 'admin.webhook_failures',
  QueueLatency: 'admin.queue_latency',
  DailyTokens: 'usage.daily_tokens',
  ToolErrorRate: 'usage.tool_error_rate',
  McpBreakerOpen: 'usage.mcp_breaker_open',
  ImplementerDrift: 'drift.implementer_output',
  /** Alerts received from Prometheus Alertmanager (POST /observability/alerts). */
  Alertmanager: 'external.alertmanager',
  /** Alerts raised by other services on agent.alerts.v1 (rule ids of their own, under this prefix). */
  ServicePrefix: 'service.',
} as const;

export type AlertRuleId = Exclude<(typeof AlertRules)[keyof typeof AlertRules], typeof AlertRules.ServicePrefix>;
export const ALERT_RULE_IDS = Object.values(AlertRules).filter(
  (rule): rule is AlertRuleId => rule !== AlertRules.ServicePrefix,
);

// ---------------------------------------------------------------------------------------------------
// Thresholds: one schema per rule, defaults included; a tenant override is a partial object merged over
// the defaults. Every rule also has the lifecycle parameters below.

const minutes = z
  .number()
  .int()
  .min(1)
  .max(60 * 24 * 31);
const percent = z.number().min(0).max(100);

const Lifecycle = {
  /** Re-send while still firing after this many minutes; null never repeats. */
  repeat_interval_minutes: z
    .number()
    .int()
    .min(1)
    .max(60 * 24 * 30)
    .nullable()
    .default(240),
  /** Send a "resolved" message when the alert stops firing (the banner is resolved either way). */
  notify_resolved: z.boolean().default(true),
};

/** Event-driven alerts have no "still firing" observation to repeat on and resolve quietly. */
const EventLifecycle = {
  repeat_interval_minutes: Lifecycle.repeat_interval_minutes.default(null),
  notify_resolved: z.boolean().default(false),
};

export const AlertThresholdSchemas = {
  [AlertRules.CapWarning]: z.object({ ...EventLifecycle, percent: percent.default(80) }),
  [AlertRules.CapHit]: z.object({ ...EventLifecycle }),
  [AlertRules.ValidationFailures]: z.object({
    ...EventLifecycle,
    count: z.number().int().min(1).max(1000).default(3),
    window_minutes: minutes.default(24 * 60),
  }),
  [AlertRules.PhaseStalled]: z.object({
    ...Lifecycle,
    hours: z
      .number()
      .int()
      .min(1)
      .max(24 * 90)
      .default(48),
  }),
  [AlertRules.ProofOverdue]: z.object({
    ...Lifecycle,
    grace_minutes: z
      .number()
      .int()
      .min(0)
      .max(60 * 24 * 30)
      .default(0),
  }),
  [AlertRules.TenantCapBreach]: z.object({ ...EventLifecycle }),
  [AlertRules.ModelErrorSpike]: z.object({
    ...Lifecycle,
    error_rate_percent: percent.default(20),
    window_minutes: minutes.default(15),
    min_calls: z.number().int().min(1).default(20),
  }),
  [AlertRules.WebhookFailures]: z.object({
    ...Lifecycle,
    min_failures: z.number().int().min(1).default(1),
    window_minutes: minutes.default(60),
  }),
  [AlertRules.QueueLatency]: z.object({
    ...Lifecycle,
    p95_seconds: z.number().int().min(1).default(300),
    duration_minutes: minutes.default(15),
    bucket_minutes: minutes.default(5),
  }),
  [AlertRules.DailyTokens]: z.object({ ...Lifecycle, tokens: z.number().int().min(1).default(5_000_000) }),
  [AlertRules.ToolErrorRate]: z.object({
    ...Lifecycle,
    error_rate_percent: percent.default(10),
    window_minutes: minutes.default(60),
    min_calls: z.number().int().min(1).default(20),
  }),
  [AlertRules.McpBreakerOpen]: z.object({
    ...Lifecycle,
    consecutive_errors: z.number().int().min(1).max(1000).default(5),
    window_minutes: minutes.default(10),
  }),
  [AlertRules.ImplementerDrift]: z.object({
    ...Lifecycle,
    /** Drift when recent/baseline (or baseline/recent) is at least this. */
    max_ratio: z.number().min(1.01).max(100).default(2),
    recent_hours: z
      .number()
      .int()
      .min(1)
      .max(24 * 7)
      .default(24),
    baseline_days: z.number().int().min(1).max(90).default(7),
    min_recent: z.number().int().min(1).default(20),
    min_baseline: z.number().int().min(1).default(50),
  }),
  [AlertRules.Alertmanager]: z.object({ ...Lifecycle }),
} as const satisfies Record<AlertRuleId, z.ZodObject>;

export type AlertThresholds<R extends AlertRuleId> = z.output<(typeof AlertThresholdSchemas)[R]>;

export function isAlertRuleId(value: string): value is AlertRuleId {
  return (ALERT_RULE_IDS as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------------
// agent.alerts.v1: alert signals other services (and the alert service itself) raise. Keyed by tenant_id.

export const AlertSignal = z.object({
  version: z.literal(1),
  /** Unique per signal; a repeat of (source, id) is a duplicate. */
  id,
  source: z.string().min(1).max(500),
  time: z.iso.datetime({ offset: true }),
  /** "service.<name>" for rules of other services (e.g. "service.cost_cap.publisher_frozen"). */
  rule: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[a-z0-9_.-]+$/),
  tenant_id: id,
  /** What the alert is about within the tenant (a run, a playbook, a queue...). */
  scope: z.string().max(500).default(''),
  /** The period the alert belongs to ("2026-11-25" for a daily alert); a new period fires anew. */
  period: z.string().max(100).default(''),
  status: z.enum(['firing', 'resolved']),
  severity: AlertSeverity.default('warning'),
  audience: AlertAudience.default('admin'),
  title: z.string().min(1).max(300),
  body: z.string().max(4000).optional(),
  /** Changing it while firing re-arms the alert (it is sent again). */
  threshold: z.string().max(200).optional(),
  labels: z.record(z.string(), z.string().max(1000)).optional(),
});
export type AlertSignal = z.output<typeof AlertSignal>;

// ---------------------------------------------------------------------------------------------------
// Prometheus Alertmanager webhook (webhook_config), payload version 4.

export const AlertmanagerAlert = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).default({}),
  startsAt: z.string(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().max(200).optional(),
});

export const AlertmanagerWebhook = z.object({
  version: z.literal('4'),
  groupKey: z.string().max(2000),
  truncatedAlerts: z.number().int().min(0).default(0),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().max(500),
  groupLabels: z.record(z.string(), z.string()).default({}),
  commonLabels: z.record(z.string(), z.string()).default({}),
  commonAnnotations: z.record(z.string(), z.string()).default({}),
  externalURL: z.string().max(2000).default(''),
  alerts: z.array(AlertmanagerAlert).max(1000),
});
export type AlertmanagerWebhook = z.output<typeof AlertmanagerWebhook>;

// ---------------------------------------------------------------------------------------------------
// Admin API bodies (alert service, behind ALERT_API_TOKEN). Every change names its actor and reason.

const Audited = {
  /** Who asks (the query API fills it with the verified principal). */
  actor: z.string().min(1).max(200),
  reason: z.string().min(1).max(2000),
};

export const CreateContactBody = z
  .object({
    ...Audited,
    /** The tenant whose Owners this contact reaches; null (or absent) for a platform Admin contact. */
    tenant_id: id.nullable().default(null),
    audience: AlertAudience,
    channel: ContactChannel,
    /**
     * An e-mail address for "email"; an https URL for "slack" and "webhook" (stored encrypted); for "pagerduty"
     * the Events v2 endpoint, https://events.pagerduty.com/v2/enqueue (or an EU/proxy address).
     */
    target: z.string().min(3).max(2000),
    /** For "webhook": the HMAC signing secret (at least 32 characters); generated when absent. */
    signing_secret: z.string().min(32).max(200).optional(),
    /** For "pagerduty": the integration (routing) key of the service to page (stored encrypted). */
    routing_key: z.string().min(20).max(64).optional(),
  })
  .superRefine((body, ctx) => {
    if (body.audience === 'owner' && body.tenant_id === null) {
      ctx.addIssue({ code: 'custom', path: ['tenant_id'], message: 'owner contacts belong to a tenant' });
    }
    if (body.channel === 'email' && !z.email().safeParse(body.target).success) {
      ctx.addIssue({ code: 'custom', path: ['target'], message: 'an e-mail address' });
    }
    if (body.channel !== 'webhook' && body.signing_secret !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['signing_secret'], message: 'only webhooks are signed' });
    }
    if ((body.channel === 'pagerduty') !== (body.routing_key !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['routing_key'], message: 'pagerduty contacts, and only they, need one' });
    }
  });
export type CreateContactBody = z.output<typeof CreateContactBody>;

/** Body of DELETEs: who and why; the tenant may come here instead of the tenant_id query parameter. */
export const AuditedBody = z.object({ ...Audited, tenant_id: id.nullable().optional() });
export type AuditedBody = z.output<typeof AuditedBody>;

export const CreateMuteBody = z
  .object({
    ...Audited,
    tenant_id: id,
    /** One rule; absent mutes every Owner and usage rule of the tenant (Admin rules only when named). */
    rule: z.string().min(1).max(200).optional(),
    starts_at: z.iso.datetime({ offset: true }).optional(),
    ends_at: z.iso.datetime({ offset: true }),
  })
  .refine((body) => !body.starts_at || Date.parse(body.starts_at) < Date.parse(body.ends_at), {
    path: ['ends_at'],
    message: 'ends_at must be after starts_at',
  });
export type CreateMuteBody = z.output<typeof CreateMuteBody>;

const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'HH:MM (00:00 to 24:00)');
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

export const CreateMuteTimingBody = z
  .object({
    ...Audited,
    tenant_id: id,
    rule: z.string().min(1).max(200).optional(),
    name: z.string().min(1).max(200),
    weekdays: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    /** Local time of day in time_zone; start < end (e.g. 00:00 to 24:00 for whole days). */
    start: clock.default('00:00'),
    end: clock.default('24:00'),
    time_zone: z.string().min(1).max(100).default('UTC'),
  })
  .superRefine((body, ctx) => {
    if (body.start >= body.end) ctx.addIssue({ code: 'custom', path: ['end'], message: 'end must be after start' });
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: body.time_zone });
    } catch {
      ctx.addIssue({ code: 'custom', path: ['time_zone'], message: 'an IANA time zone such as Europe/Paris' });
    }
  });
export type CreateMuteTimingBody = z.output<typeof CreateMuteTimingBody>;

export const PutThresholdBody = z.object({
  ...Audited,
  /** A partial object of the rule's parameters (see GET /admin/thresholds); unknown keys are refused. */
  params: z.record(z.string(), z.unknown()),
});
export type PutThresholdBody = z.output<typeof PutThresholdBody>;

// ---------------------------------------------------------------------------------------------------
// What a generic webhook receiver gets. The body is signed: see AlertWebhookHeaders and docs/alert.md.

/** Header names of signed webhook deliveries. Do not rename: receivers verify with them. */
export const AlertWebhookHeaders = {
  /** Unix seconds when the request was signed; receivers reject old ones (replay). */
  Timestamp: 'x-agentmeter-timestamp',
  /** "v1=" + hex HMAC-SHA256(secret, timestamp + "." + raw body). */
  Signature: 'x-agentmeter-signature',
  /** The delivery id: the same on every attempt of one delivery (receivers deduplicate on it). */
  Delivery: 'x-agentmeter-delivery',
  /** The attempt number, from 1. */
  Attempt: 'x-agentmeter-attempt',
} as const;

export const AlertMessageItem = z.object({
  alert_key: z.string(),
  rule: z.string(),
  kind: z.enum(['firing', 'repeat', 'resolved']),
  severity: AlertSeverity,
  scope: z.string(),
  period: z.string(),
  title: z.string(),
  body: z.string(),
  at: z.string(),
});
export type AlertMessageItem = z.output<typeof AlertMessageItem>;

/** One grouped message: every alert of one tenant and rule within the group window. */
export const AlertMessage = z.object({
  version: z.literal(1),
  delivery_id: z.string(),
  tenant_id: z.string(),
  rule: z.string(),
  audience: AlertAudience,
  severity: AlertSeverity,
  subject: z.string(),
  text: z.string(),
  alerts: z.array(AlertMessageItem),
  /** Set on the summary delivered when a mute ends: `mute:<id>`, the mute that silenced these alerts. */
  muted_by: z.string().optional(),
});
export type AlertMessage = z.output<typeof AlertMessage>;
