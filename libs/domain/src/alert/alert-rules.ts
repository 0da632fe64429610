import {
  AlertRules,
  PLATFORM_TENANT,
  type AlertAudience,
  type AlertRuleId,
  type AlertSeverity,
  type AlertThresholds,
} from '@agentmeter/contracts';
import { parseUsd } from '../money';

/**
 * The alert rules (docs/alert.md "Rules") as pure functions from facts to observations. The
 * alert service reads the facts (events, ingest tables) and feeds observations to the lifecycle.
 *
 * Two kinds of rules:
 * - event rules fire from one event or signal (a cap crossed, the Nth validation failure); nothing
 *   observes that they stopped, so they resolve quietly once nothing new came for their quiet period;
 * - evaluated rules run on a schedule over stored data and report every alert that holds now; an alert
 *   of that rule that is firing but no longer reported resolves.
 */

export interface RuleDefinition {
  audience: AlertAudience;
  severity: AlertSeverity;
  kind: 'event' | 'evaluated';
  title: string;
}

export const RULE_DEFINITIONS: Record<AlertRuleId, RuleDefinition> = {
  [AlertRules.CapWarning]: { audience: 'owner', severity: 'warning', kind: 'event', title: 'Cap nearly reached' },
  [AlertRules.CapHit]: { audience: 'owner', severity: 'critical', kind: 'event', title: 'Cap reached' },
  [AlertRules.ValidationFailures]: {
    audience: 'owner',
    severity: 'warning',
    kind: 'event',
    title: 'Repeated validation failures',
  },
  [AlertRules.PhaseStalled]: { audience: 'owner', severity: 'warning', kind: 'evaluated', title: 'Phase stalled' },
  [AlertRules.ProofOverdue]: { audience: 'owner', severity: 'warning', kind: 'evaluated', title: 'Proof overdue' },
  [AlertRules.TenantCapBreach]: {
    audience: 'admin',
    severity: 'critical',
    kind: 'event',
    title: 'Tenant cap breached',
  },
  [AlertRules.ModelErrorSpike]: {
    audience: 'admin',
    severity: 'critical',
    kind: 'evaluated',
    title: 'Model error spike',
  },
  [AlertRules.WebhookFailures]: {
    audience: 'admin',
    severity: 'warning',
    kind: 'evaluated',
    title: 'Alert deliveries failing',
  },
  [AlertRules.QueueLatency]: {
    audience: 'admin',
    severity: 'warning',
    kind: 'evaluated',
    title: 'Sustained queue latency',
  },
  [AlertRules.DailyTokens]: {
    audience: 'owner',
    severity: 'warning',
    kind: 'evaluated',
    title: 'Daily token usage over threshold',
  },
  [AlertRules.ToolErrorRate]: {
    audience: 'owner',
    severity: 'warning',
    kind: 'evaluated',
    title: 'Tool error rate over threshold',
  },
  [AlertRules.McpBreakerOpen]: {
    audience: 'owner',
    severity: 'critical',
    kind: 'evaluated',
    title: 'MCP circuit breaker open',
  },
  [AlertRules.ImplementerDrift]: {
    audience: 'admin',
    severity: 'warning',
    kind: 'evaluated',
    title: 'Implementer output drift',
  },
  [AlertRules.Alertmanager]: { audience: 'admin', severity: 'warning', kind: 'event', title: 'Alertmanager alert' },
};

/** The rules the scheduler evaluates. */
export const EVALUATED_RULES = (Object.keys(RULE_DEFINITIONS) as AlertRuleId[]).filter(
  (rule) => RULE_DEFINITIONS[rule].kind === 'evaluated',
);

const DAY_MS = 86_400_000;

/** How long an event rule's alert stays firing without a new observation before it resolves quietly. */
export function quietPeriodMs(rule: string, params: Record<string, unknown>): number {
  if (rule === AlertRules.ValidationFailures) return Number(params.window_minutes) * 60_000;
  return DAY_MS;
}

/** What a rule reports about one alert key. */
export interface RuleObservation {
  rule: string;
  tenantId: string;
  scope: string;
  period: string;
  firing: boolean;
  audience: AlertAudience;
  severity: AlertSeverity;
  title: string;
  body: string;
}

function observation(
  rule: AlertRuleId,
  tenantId: string,
  scope: string,
  period: string,
  body: string,
  firing = true,
): RuleObservation {
  const definition = RULE_DEFINITIONS[rule];
  return {
    rule,
    tenantId,
    scope,
    period,
    firing,
    audience: definition.audience,
    severity: definition.severity,
    title: definition.title,
    body,
  };
}

/** The UTC day of an instant: the period of daily alerts. */
export function dayPeriod(at: Date): string {
  return at.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------------
// Caps (owner 80% / 100%, admin tenant cap breaches), from cap_warning and cap_hit events.

export interface CapCrossing {
  /** "cap_warning" (80% crossing) or "cap_hit" (100%); a cap_hit below its limit is read by its ratio. */
  type: 'cap_warning' | 'cap_hit';
  tenantId: string;
  runId: string;
  scope: 'run' | 'tenant';
  cap: string;
  limit: string;
  observed: string;
  time: Date;
  /** Tenant scope: the tenant's local day the spend belongs to (cost-cap sets it); else the UTC day. */
  day?: string;
}

/** A cap amount as an integer in millionths, so that ratios compare exactly (no floats). */
function millionths(value: string): bigint | null {
  try {
    return parseUsd(value);
  } catch {
    return null;
  }
}

/**
 * Which cap alerts a crossing raises: at or over the limit, Cap reached (and Tenant cap breached for a
 * tenant cap); from the warning percentage (80% by default) up to the limit, Cap nearly reached. Run caps
 * are keyed by run (once per run); tenant caps by the UTC day (once per tenant-day).
 */
export function capObservations(
  crossing: CapCrossing,
  warning: AlertThresholds<typeof AlertRules.CapWarning>,
): RuleObservation[] {
  const limit = millionths(crossing.limit);
  const observed = millionths(crossing.observed);
  const reached = limit !== null && observed !== null && limit > 0n ? observed >= limit : crossing.type === 'cap_hit';
  const scope = crossing.scope === 'run' ? `run:${crossing.runId}:${crossing.cap}` : `tenant:${crossing.cap}`;
  const period = crossing.scope === 'run' ? '' : (crossing.day ?? dayPeriod(crossing.time));
  const what = crossing.scope === 'run' ? `run ${crossing.runId}` : `tenant ${crossing.tenantId} today`;
  if (reached) {
    const body = `The ${crossing.cap} cap of ${what} is reached: ${crossing.observed} of ${crossing.limit}.`;
    const out = [observation(AlertRules.CapHit, crossing.tenantId, scope, period, body)];
    if (crossing.scope === 'tenant')
      out.push(observation(AlertRules.TenantCapBreach, crossing.tenantId, scope, period, body));
    return out;
  }
  if (limit === null || observed === null || limit <= 0n) return [];
  // observed / limit >= percent / 100, in integers: observed * 10000 >= limit * percent * 100
  if (observed * 10_000n < limit * BigInt(Math.round(warning.percent * 100))) return [];
  const percent = Number((observed * 1000n) / limit) / 10;
  return [
    observation(
      AlertRules.CapWarning,
      crossing.tenantId,
      scope,
      period,
      `The ${crossing.cap} cap of ${what} is at ${percent}%: ${crossing.observed} of ${crossing.limit}.`,
    ),
  ];
}

// ---------------------------------------------------------------------------------------------------
// Repeated validation failures: N failures of one run within the window.

export function validationFailuresObservation(
  tenantId: string,
  runId: string,
  failuresInWindow: number,
  params: AlertThresholds<typeof AlertRules.ValidationFailures>,
  lastReason: string,
): RuleObservation | null {
  if (failuresInWindow < params.count) return null;
  return observation(
    AlertRules.ValidationFailures,
    tenantId,
    `run:${runId}`,
    '',
    `Run ${runId} failed validation ${failuresInWindow} times within ${params.window_minutes} minutes. Last reason: ${lastReason}`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Evaluated rules. Each takes the facts of every tenant and the thresholds of each, and returns the
// observations that hold now (firing ones; the service resolves the rest).

export type ThresholdsOf<R extends AlertRuleId> = (tenantId: string) => AlertThresholds<R>;

export interface RunningPhase {
  tenantId: string;
  runId: string;
  phase: string;
  role: string | null;
  since: Date;
}

export function stalledPhases(
  rows: readonly RunningPhase[],
  now: Date,
  thresholds: ThresholdsOf<typeof AlertRules.PhaseStalled>,
): RuleObservation[] {
  return rows.flatMap((row) => {
    const hours = thresholds(row.tenantId).hours;
    const stalledMs = now.getTime() - row.since.getTime();
    if (stalledMs < hours * 3_600_000) return [];
    const role = row.role ? ` (${row.role})` : '';
    return [
      observation(
        AlertRules.PhaseStalled,
        row.tenantId,
        `run:${row.runId}:phase:${row.phase}`,
        '',
        `Run ${row.runId} has been in phase ${row.phase}${role} for ${Math.floor(stalledMs / 3_600_000)} h (threshold ${hours} h).`,
      ),
    ];
  });
}

export interface OpenProof {
  tenantId: string;
  runId: string;
  proofId: string;
  dueAt: Date;
}

export function overdueProofs(
  rows: readonly OpenProof[],
  now: Date,
  thresholds: ThresholdsOf<typeof AlertRules.ProofOverdue>,
): RuleObservation[] {
  return rows.flatMap((row) => {
    const grace = thresholds(row.tenantId).grace_minutes * 60_000;
    if (now.getTime() < row.dueAt.getTime() + grace) return [];
    return [
      observation(
        AlertRules.ProofOverdue,
        row.tenantId,
        `run:${row.runId}:proof:${row.proofId}`,
        '',
        `Proof ${row.proofId} of run ${row.runId} was due at ${row.dueAt.toISOString()} and is not completed.`,
      ),
    ];
  });
}

export interface CallCounts {
  calls: number;
  errors: number;
}

/** errors / calls >= percent, with at least `minCalls` calls (integers; no rounding surprises). */
export function errorRateAbove(counts: CallCounts, percent: number, minCalls: number): boolean {
  return (
    counts.calls >= minCalls && counts.calls > 0 && counts.errors * 10_000 >= counts.calls * Math.round(percent * 100)
  );
}

function rate(counts: CallCounts): string {
  return `${((counts.errors * 100) / Math.max(1, counts.calls)).toFixed(1)}%`;
}

export function modelErrorSpikes(
  rows: ReadonlyArray<CallCounts & { model: string; provider: string }>,
  params: AlertThresholds<typeof AlertRules.ModelErrorSpike>,
): RuleObservation[] {
  return rows.flatMap((row) =>
    errorRateAbove(row, params.error_rate_percent, params.min_calls)
      ? [
          observation(
            AlertRules.ModelErrorSpike,
            PLATFORM_TENANT,
            `model:${row.provider}/${row.model}`,
            '',
            `${row.provider}/${row.model}: ${row.errors} of ${row.calls} calls failed (${rate(row)}) in the last ${params.window_minutes} minutes (threshold ${params.error_rate_percent}%).`,
          ),
        ]
      : [],
  );
}

export function toolErrorRates(
  rows: ReadonlyArray<CallCounts & { tenantId: string; tool: string }>,
  thresholds: ThresholdsOf<typeof AlertRules.ToolErrorRate>,
): RuleObservation[] {
  return rows.flatMap((row) => {
    const params = thresholds(row.tenantId);
    if (!errorRateAbove(row, params.error_rate_percent, params.min_calls)) return [];
    return [
      observation(
        AlertRules.ToolErrorRate,
        row.tenantId,
        `tool:${row.tool}`,
        '',
        `Tool ${row.tool}: ${row.errors} of ${row.calls} calls failed (${rate(row)}) in the last ${params.window_minutes} minutes (threshold ${params.error_rate_percent}%).`,
      ),
    ];
  });
}

export function dailyTokenUsage(
  rows: ReadonlyArray<{ tenantId: string; tokens: bigint }>,
  now: Date,
  thresholds: ThresholdsOf<typeof AlertRules.DailyTokens>,
): RuleObservation[] {
  return rows.flatMap((row) => {
    const limit = thresholds(row.tenantId).tokens;
    if (row.tokens < BigInt(limit)) return [];
    return [
      observation(
        AlertRules.DailyTokens,
        row.tenantId,
        '',
        dayPeriod(now),
        `Tenant ${row.tenantId} used ${row.tokens} tokens today (UTC), over the threshold of ${limit}.`,
      ),
    ];
  });
}

/**
 * MCP circuit breaker, as observed from tool_call events: a server's breaker is open when its latest
 * `consecutive_errors` calls within the window all failed (what a consecutive-failure breaker in the
 * gateway reacts to; while open, calls fail fast and keep it so). It closes with the first success, or when
 * no call reached the server within the window. `latest` is newest first.
 */
export function mcpBreakers(
  rows: ReadonlyArray<{ tenantId: string; server: string; latest: ReadonlyArray<'ok' | 'error'> }>,
  thresholds: ThresholdsOf<typeof AlertRules.McpBreakerOpen>,
): RuleObservation[] {
  return rows.flatMap((row) => {
    const params = thresholds(row.tenantId);
    const recent = row.latest.slice(0, params.consecutive_errors);
    if (recent.length < params.consecutive_errors || recent.some((status) => status !== 'error')) return [];
    return [
      observation(
        AlertRules.McpBreakerOpen,
        row.tenantId,
        `mcp:${row.server}`,
        '',
        `MCP server ${row.server}: the last ${params.consecutive_errors} calls failed; its circuit breaker is open.`,
      ),
    ];
  });
}

/**
 * Sustained queue latency: the p95 wait of a queue is over the threshold in every bucket of the duration
 * (a bucket with no dequeued task is no evidence, so it breaks the streak). Buckets are whole
 * `bucket_minutes` slices ending at the evaluation; `buckets` maps bucket index (0 = most recent) to p95.
 */
export function sustainedQueueLatency(
  rows: ReadonlyArray<{ queue: string; buckets: ReadonlyMap<number, number> }>,
  params: AlertThresholds<typeof AlertRules.QueueLatency>,
): RuleObservation[] {
  const required = Math.max(1, Math.ceil(params.duration_minutes / params.bucket_minutes));
  return rows.flatMap((row) => {
    const values: number[] = [];
    for (let index = 0; index < required; index++) {
      const p95 = row.buckets.get(index);
      if (p95 === undefined || p95 <= params.p95_seconds) return [];
      values.push(p95);
    }
    return [
      observation(
        AlertRules.QueueLatency,
        PLATFORM_TENANT,
        `queue:${row.queue}`,
        '',
        `Queue ${row.queue}: p95 wait above ${params.p95_seconds} s for ${params.duration_minutes} minutes (lowest ${Math.min(...values)} s).`,
      ),
    ];
  });
}

export interface DeliveryFailures {
  tenantId: string;
  contactId: string;
  channel: string;
  /** Deliveries to this contact dead-lettered within the window. */
  failures: number;
  /** Whether a delivery to it succeeded after the last dead-lettered one. */
  recovered: boolean;
}

export function failingContacts(
  rows: readonly DeliveryFailures[],
  params: AlertThresholds<typeof AlertRules.WebhookFailures>,
): RuleObservation[] {
  return rows.flatMap((row) =>
    row.failures >= params.min_failures && !row.recovered
      ? [
          observation(
            AlertRules.WebhookFailures,
            row.tenantId,
            `contact:${row.contactId}`,
            '',
            `${row.failures} ${row.channel} deliveries of tenant ${row.tenantId} were dead-lettered in the last ${params.window_minutes} minutes (contact ${row.contactId}).`,
          ),
        ]
      : [],
  );
}

/**
 * Drift of Implementer outputs (docs/alert.md "Rules": output length and structure), kept simple: two means
 * compared with their rolling baseline, each an alert of its own:
 * - length: completion tokens per Implementer LLM call;
 * - structure: artifacts written per Implementer phase attempt.
 * The recent window is `recent_hours`; the baseline the `baseline_days` before it. Drift is a ratio of at
 * least `max_ratio` either way, with enough samples on both sides.
 */
export interface DriftSample {
  tenantId: string;
  measure: 'length' | 'structure';
  recentMean: number;
  recentSamples: number;
  baselineMean: number;
  baselineSamples: number;
}

export function driftRatio(recent: number, baseline: number): number {
  if (recent === baseline) return 1;
  if (recent <= 0 || baseline <= 0) return Number.POSITIVE_INFINITY;
  return Math.max(recent / baseline, baseline / recent);
}

export function implementerDrift(
  rows: readonly DriftSample[],
  thresholds: ThresholdsOf<typeof AlertRules.ImplementerDrift>,
): RuleObservation[] {
  return rows.flatMap((row) => {
    const params = thresholds(row.tenantId);
    if (row.recentSamples < params.min_recent || row.baselineSamples < params.min_baseline) return [];
    const ratio = driftRatio(row.recentMean, row.baselineMean);
    if (ratio < params.max_ratio) return [];
    const what = row.measure === 'length' ? 'completion tokens per call' : 'artifacts per phase attempt';
    return [
      observation(
        AlertRules.ImplementerDrift,
        row.tenantId,
        `implementer:${row.measure}`,
        '',
        `Implementer ${what}: ${row.recentMean.toFixed(1)} over the last ${params.recent_hours} h against a baseline of ${row.baselineMean.toFixed(1)} (ratio ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'inf'}, threshold ${params.max_ratio}).`,
      ),
    ];
  });
}
