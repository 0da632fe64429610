import { z } from 'zod';

/**
 * BullMQ queue and job names, and the zod schema of each job's data. Do not rename: waiting jobs in Redis
 * carry these names. Payloads carry ids and parameters, never secrets or whole records; they evolve only by
 * adding optional fields (a worker ignores fields it does not know). libs/jobs checks every payload against
 * its schema when it is enqueued and again when it is processed (docs/decisions.md "One job registry").
 */

/**
 * Every job may carry the W3C trace context of the span that enqueued it (libs/telemetry withJobTrace): its
 * `traceparent` and `tracestate`, as HTTP and Kafka headers carry them. The processor continues that trace.
 * Jobs of a job scheduler carry none.
 */
export const JobTraceContext = z.object({ trace: z.record(z.string(), z.string()).optional() });
export type JobTraceContext = z.infer<typeof JobTraceContext>;

/** The data of the job `name`: its name (as BullMQ's job name), its own fields, and the trace context. */
function jobData<N extends string, S extends z.ZodRawShape>(name: N, shape: S) {
  return JobTraceContext.extend({ name: z.literal(name) }).extend(shape);
}

/** A queue and the schema of each job it takes, keyed by job name (each schema's `name` is its key). */
export interface QueueContract<Jobs extends JobSchemas<Jobs> = Record<string, z.ZodType<{ name: string }>>> {
  readonly name: string;
  readonly jobs: Jobs;
}
export type JobSchemas<Jobs> = { [N in keyof Jobs & string]: z.ZodType<{ name: N } & JobTraceContext> };

function queueContract<const Jobs extends JobSchemas<Jobs>>(name: string, jobs: Jobs): QueueContract<Jobs> {
  return Object.freeze({ name, jobs: Object.freeze(jobs) });
}

const id = z.string().min(1).max(200);

export const Queues = {
  /** Ingest housekeeping: partitions ahead, retention, usage folding. */
  IngestMaintenance: 'ingest-maintenance',
} as const;

export const JobNames = {
  Retention: 'retention',
} as const;

export const RetentionJob = jobData(JobNames.Retention, {
  /** Overrides "now" (tests); ISO time. */
  now: z.iso.datetime({ offset: true }).optional(),
});
export type RetentionJob = z.infer<typeof RetentionJob>;

export const IngestMaintenanceQueue = queueContract(Queues.IngestMaintenance, { [JobNames.Retention]: RetentionJob });

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
export const AlertEvaluateJob = jobData(AlertJobNames.Evaluate, { rule: id });
export type AlertEvaluateJob = z.infer<typeof AlertEvaluateJob>;

/** Turns the notifications of one group into deliveries, once its group window has passed. */
export const AlertFlushGroupJob = jobData(AlertJobNames.FlushGroup, { groupId: id });
export type AlertFlushGroupJob = z.infer<typeof AlertFlushGroupJob>;

/** Re-enqueues what a crash left behind and resolves event-driven alerts that went quiet. */
export const AlertSweepJob = jobData(AlertJobNames.Sweep, {});
export type AlertSweepJob = z.infer<typeof AlertSweepJob>;

/** A one-off mute ended (expired or cancelled): the alerts it silenced are delivered once, as summaries. */
export const AlertMuteEndedJob = jobData(AlertJobNames.MuteEnded, { muteId: id });
export type AlertMuteEndedJob = z.infer<typeof AlertMuteEndedJob>;

export const AlertRulesQueue = queueContract(AlertQueues.Rules, {
  [AlertJobNames.Evaluate]: AlertEvaluateJob,
  [AlertJobNames.FlushGroup]: AlertFlushGroupJob,
  [AlertJobNames.Sweep]: AlertSweepJob,
  [AlertJobNames.MuteEnded]: AlertMuteEndedJob,
});

/** One delivery (a grouped message to one contact, or the banners of a group); the id keys the row. */
export const AlertDeliverJob = jobData(AlertJobNames.Deliver, { deliveryId: id });
export type AlertDeliverJob = z.infer<typeof AlertDeliverJob>;

/** The queue of each delivery channel. */
export const ALERT_DELIVERY_QUEUES = {
  email: AlertQueues.Email,
  slack: AlertQueues.Slack,
  webhook: AlertQueues.Webhook,
  pagerduty: AlertQueues.PagerDuty,
  banner: AlertQueues.Banner,
} as const;

/** The delivery queue of each channel, with its one job. */
export const AlertDeliveryQueues = {
  email: queueContract(AlertQueues.Email, { [AlertJobNames.Deliver]: AlertDeliverJob }),
  slack: queueContract(AlertQueues.Slack, { [AlertJobNames.Deliver]: AlertDeliverJob }),
  webhook: queueContract(AlertQueues.Webhook, { [AlertJobNames.Deliver]: AlertDeliverJob }),
  pagerduty: queueContract(AlertQueues.PagerDuty, { [AlertJobNames.Deliver]: AlertDeliverJob }),
  banner: queueContract(AlertQueues.Banner, { [AlertJobNames.Deliver]: AlertDeliverJob }),
} as const;

/** Backoff type of delivery jobs; alert-worker implements it (exponential with jitter, or Retry-After). */
export const ALERT_DELIVERY_BACKOFF = 'alert-delivery';

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
export const WallTimeJob = jobData(CostCapJobNames.WallTime, {
  tenantId: id,
  runId: id,
  threshold: z.union([z.literal(80), z.literal(100)]),
});
export type WallTimeJob = z.infer<typeof WallTimeJob>;

/** Records the expiry of a temporary raise (audit row, caches refreshed); enforcement never waits for it. */
export const OverrideExpiryJob = jobData(CostCapJobNames.OverrideExpiry, { overrideId: id });
export type OverrideExpiryJob = z.infer<typeof OverrideExpiryJob>;

export const CostCapTimersQueue = queueContract(CostCapQueues.Timers, {
  [CostCapJobNames.WallTime]: WallTimeJob,
  [CostCapJobNames.OverrideExpiry]: OverrideExpiryJob,
});

/** query queues. Do not rename (see above). */
export const QueryQueues = {
  /** Reprices asked for through the API (docs/query.md "Prices"). */
  Reprice: 'query-reprice',
} as const;

export const QueryJobNames = {
  Reprice: 'query-reprice',
} as const;

/**
 * Reprices one period. The request's parameters, actor and reason are in its audit_log row (redacted there);
 * the job carries only that row's id, which is also the job id (one job per request).
 */
export const RepriceJob = jobData(QueryJobNames.Reprice, { requestId: id });
export type RepriceJob = z.infer<typeof RepriceJob>;

export const QueryRepriceQueue = queueContract(QueryQueues.Reprice, { [QueryJobNames.Reprice]: RepriceJob });
