/**
 * BullMQ queue and job names. Do not rename: waiting jobs in Redis carry these names.
 * Payloads carry ids and parameters, never secrets or whole records.
 */

/**
 * Every job may carry the W3C trace context of the span that enqueued it (libs/telemetry withJobTrace); the
 * processor continues that trace. Jobs of a job scheduler carry none.
 */
export interface JobTraceContext {
  /** `traceparent` and `tracestate`, as HTTP and Kafka headers carry them. */
  trace?: Record<string, string>;
}
export const Queues = {
  /** Ingest housekeeping: partitions ahead, retention, usage folding. */
  IngestMaintenance: 'ingest-maintenance',
} as const;

export const JobNames = {
  Retention: 'retention',
} as const;

export interface RetentionJob extends JobTraceContext {
  name: typeof JobNames.Retention;
  /** Overrides "now" (tests); ISO time. */
  now?: string;
}

export type IngestMaintenanceJob = RetentionJob;

/** Alert queues. Do not rename (see above). Deliveries have one queue per channel, consumed by alert-worker. */
export const AlertQueues = {
  /** Alert service: rule evaluation schedulers, group flushes and the sweep. */
  Rules: 'alert-rules',
  Email: 'alert-email',
  Slack: 'alert-slack',
  Webhook: 'alert-webhook',
  PagerDuty: 'alert-pagerduty',
  Banner: 'alert-banner',
} as const;

export const AlertJobNames = {
  Evaluate: 'alert-evaluate',
  FlushGroup: 'alert-flush-group',
  Sweep: 'alert-sweep',
  MuteEnded: 'alert-mute-ended',
  Deliver: 'alert-deliver',
} as const;

/** Evaluates one time-based rule over the stored data. */
export interface AlertEvaluateJob extends JobTraceContext {
  name: typeof AlertJobNames.Evaluate;
  rule: string;
}

/** Turns the notifications of one group into deliveries, once its group window has passed. */
export interface AlertFlushGroupJob extends JobTraceContext {
  name: typeof AlertJobNames.FlushGroup;
  groupId: string;
}

/** Re-enqueues what a crash left behind and resolves event-driven alerts that went quiet. */
export interface AlertSweepJob extends JobTraceContext {
  name: typeof AlertJobNames.Sweep;
}

/** A one-off mute ended (expired or cancelled): the alerts it silenced are delivered once, as summaries. */
export interface AlertMuteEndedJob extends JobTraceContext {
  name: typeof AlertJobNames.MuteEnded;
  muteId: string;
}

export type AlertRulesJob = AlertEvaluateJob | AlertFlushGroupJob | AlertSweepJob | AlertMuteEndedJob;

/** One delivery (a grouped message to one contact, or the banners of a group); the id keys the row. */
export interface AlertDeliverJob extends JobTraceContext {
  name: typeof AlertJobNames.Deliver;
  deliveryId: string;
}

/** The queue of each delivery channel. */
export const ALERT_DELIVERY_QUEUES = {
  email: AlertQueues.Email,
  slack: AlertQueues.Slack,
  webhook: AlertQueues.Webhook,
  pagerduty: AlertQueues.PagerDuty,
  banner: AlertQueues.Banner,
} as const;

/** cost-cap queues. Do not rename (see above). */
export const CostCapQueues = {
  /** Timers of cost-cap: wall-time caps of running runs and the expiry of temporary raises. */
  Timers: 'cost-cap-timers',
} as const;

export const CostCapJobNames = {
  WallTime: 'cost-cap-wall-time',
  OverrideExpiry: 'cost-cap-override-expiry',
} as const;

/** Fires at a threshold (80 or 100 %) of a running run's wall-time cap; removed when the run ends. */
export interface WallTimeJob extends JobTraceContext {
  name: typeof CostCapJobNames.WallTime;
  tenantId: string;
  runId: string;
  threshold: 80 | 100;
}

/** Records the expiry of a temporary raise (audit row, caches refreshed); enforcement never waits for it. */
export interface OverrideExpiryJob extends JobTraceContext {
  name: typeof CostCapJobNames.OverrideExpiry;
  overrideId: string;
}

export type CostCapTimerJob = WallTimeJob | OverrideExpiryJob;

/** Backoff type of delivery jobs; alert-worker implements it (exponential with jitter, or Retry-After). */
export const ALERT_DELIVERY_BACKOFF = 'alert-delivery';
