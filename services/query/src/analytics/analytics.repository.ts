import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Dimensions of cost and usage answers (`group_by`, docs/query.md "Endpoints"), mapped to SQL over fixed column names. */
export const COST_DIMENSIONS = ['agent', 'tenant', 'project', 'model', 'user', 'mcp_server', 'phase'] as const;
export type CostDimension = (typeof COST_DIMENSIONS)[number];
export const USAGE_DIMENSIONS = [
  'agent',
  'tenant',
  'project',
  'model',
  'provider',
  'tool',
  'mcp_server',
  'user',
] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];
export type Interval = 'day' | 'week' | 'month';

export interface Window {
  /** null: every tenant (callers check the scope). */
  tenantId: string | null;
  fromDay: string;
  toDay: string;
  from: Date;
  to: Date;
}

export interface CostRow {
  bucket: string | null;
  tenant_id: string | null;
  key: string | null;
  llm_micros: string;
  external_micros: string;
  calls: string;
  input_tokens: string;
  output_tokens: string;
  cached_tokens: string;
}

export interface UsageRow {
  bucket: string | null;
  tenant_id: string | null;
  key: string | null;
  calls: string;
  successes: string;
  failures: string;
  total_latency_ms: string;
  latency_buckets: string[];
  /** Merged DDSketch bins (libs/domain latency-sketch.ts); null when no row has one. */
  latency_sketch: Record<string, number> | null;
  input_tokens: string;
  output_tokens: string;
  cached_tokens: string;
  cost_micros: string;
  unpriced_calls: string;
}

/** Key of a usage_daily row per dimension; '' (no value) becomes NULL. NULL: not attributable. */
const USAGE_KEY: Record<UsageDimension | 'phase', string> = {
  agent: `NULLIF(role, '')`,
  tenant: `tenant_id`,
  project: `project_id`,
  model: `NULLIF(model, '')`,
  provider: `NULLIF(provider, '')`,
  tool: `NULLIF(tool, '')`,
  mcp_server: `NULLIF(mcp_server, '')`,
  user: `NULLIF(user_id, '')`,
  phase: `NULL`,
};

/**
 * Key of an external charge per dimension: tenant, project and phase are on the charge, the user is its run's
 * (runs.user_id, from run_started); model, agent and MCP server are not known for charges.
 */
const EXTERNAL_KEY: Record<CostDimension, string> = {
  agent: 'NULL',
  tenant: 'tenant_id',
  project: 'project_id',
  model: 'NULL',
  user: `(SELECT r.user_id FROM runs r WHERE r.tenant_id = external_charges.tenant_id AND r.run_id = external_charges.run_id)`,
  mcp_server: 'NULL',
  phase: 'phase',
};

/**
 * The usage rollups of the UTC days [from, to] (SQL expressions of dates): usage_daily's days, and usage_monthly's
 * months (days retention folded, older than RETENTION_DAILY_USAGE_DAYS) that overlap the range. A day is in one
 * table or the other, never both; a month row counts whole (its `day` is the month's first day).
 */
function rollups(from: string, to: string): string {
  return `(SELECT * FROM usage_daily WHERE day >= ${from} AND day <= ${to}
           UNION ALL
           SELECT * FROM usage_monthly WHERE month >= date_trunc('month', ${from})::date AND month <= ${to}) AS rollups`;
}

function bucketOf(interval: Interval | null, dayExpression: string): string {
  return interval ? `date_trunc('${interval}', ${dayExpression})::date::text` : 'NULL::text';
}

/** Rows of a dimension are per tenant when they are project-like (a project id is unique per tenant). */
function tenantColumn(dimension: string): string {
  return dimension === 'tenant' || dimension === 'project' ? 'tenant_id' : 'NULL::text';
}

/**
 * Analytics reads. Costs and usage come from the daily rollups (usage_daily, one row per day and dimension
 * combination: their size does not grow with the number of calls); phase costs, which the rollups do not
 * key, come from the call rows of the period; external charges from their own (small) table.
 */
@Injectable()
export class AnalyticsRepository {
  constructor(private readonly db: DataSource) {}

  async costs(window: Window, dimension: CostDimension, interval: Interval | null): Promise<CostRow[]> {
    // [from, to) as timestamps; the rollups' days are the UTC days of that range.
    const params: unknown[] = [window.from, window.to, window.tenantId];
    if (dimension !== 'phase') params.push(window.fromDay, window.toDay);
    const tenant = tenantColumn(dimension);
    const llm =
      dimension === 'phase'
        ? `SELECT ${bucketOf(interval, `(time AT TIME ZONE 'UTC')::date`)} AS bucket, ${tenant} AS tenant_id,
                  phase AS key, COALESCE(sum(cost_micros), 0) AS llm, 0::numeric AS ext, count(*) AS calls,
                  sum(prompt_tokens) AS input_tokens, sum(completion_tokens) AS output_tokens,
                  sum(cached_tokens) AS cached_tokens
             FROM llm_calls
            WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3)
            GROUP BY 1, 2, 3`
        : `SELECT ${bucketOf(interval, 'day')} AS bucket, ${tenant} AS tenant_id, ${USAGE_KEY[dimension]} AS key,
                  sum(cost_micros) AS llm, 0::numeric AS ext, sum(call_count) AS calls,
                  sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                  sum(cached_tokens) AS cached_tokens
             FROM ${rollups('$4::date', '$5::date')}
            WHERE kind = 'llm' AND ($3::text IS NULL OR tenant_id = $3)
            GROUP BY 1, 2, 3`;
    return this.db.query(
      `WITH parts AS (
         ${llm}
         UNION ALL
         SELECT ${bucketOf(interval, `(time AT TIME ZONE 'UTC')::date`)}, ${tenant}, ${EXTERNAL_KEY[dimension]},
                0, sum(amount_micros), 0, 0, 0, 0
           FROM external_charges
          WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3)
          GROUP BY 1, 2, 3)
       SELECT bucket, tenant_id, key, sum(llm)::text AS llm_micros, sum(ext)::text AS external_micros,
              sum(calls)::text AS calls, sum(input_tokens)::text AS input_tokens,
              sum(output_tokens)::text AS output_tokens, sum(cached_tokens)::text AS cached_tokens
         FROM parts
        GROUP BY bucket, tenant_id, key
        ORDER BY bucket NULLS FIRST, sum(llm) + sum(ext) DESC, tenant_id NULLS LAST, key NULLS LAST`,
      params,
    );
  }

  async usage(
    window: Window,
    dimension: UsageDimension,
    kind: 'llm' | 'tool' | null,
    interval: Interval | null,
  ): Promise<UsageRow[]> {
    return this.db.query(
      `SELECT ${bucketOf(interval, 'day')} AS bucket, ${tenantColumn(dimension)} AS tenant_id,
              ${USAGE_KEY[dimension]} AS key,
              sum(call_count)::text AS calls, sum(success_count)::text AS successes,
              sum(failure_count)::text AS failures, sum(total_latency_ms)::text AS total_latency_ms,
              bigint_array_sum(latency_buckets)::text[] AS latency_buckets,
              jsonb_counts_sum(latency_sketch) AS latency_sketch,
              sum(input_tokens)::text AS input_tokens, sum(output_tokens)::text AS output_tokens,
              sum(cached_tokens)::text AS cached_tokens, sum(cost_micros)::text AS cost_micros,
              sum(unpriced_calls)::text AS unpriced_calls
         FROM ${rollups('$1::date', '$2::date')}
        WHERE ($3::text IS NULL OR tenant_id = $3) AND ($4::text IS NULL OR kind = $4)
        GROUP BY 1, 2, 3
        ORDER BY 1 NULLS FIRST, sum(call_count) DESC, 2 NULLS LAST, 3 NULLS LAST`,
      [window.fromDay, window.toDay, window.tenantId, kind],
    );
  }

  // Phase metrics (GET /api/v1/analytics/metrics) ----------------------------------------------------

  /** Per phase: (run, phase) outcomes, attempts and time-to-gate over stages started in the window. */
  async phaseStats(window: Window): Promise<PhaseStatsRow[]> {
    return this.db.query(
      `WITH pairs AS (
         SELECT tenant_id, run_id, phase, count(*) AS attempts,
                (array_agg(status ORDER BY attempt DESC))[1] AS last_status,
                min(started_at) AS entered_at,
                max(finished_at) FILTER (WHERE status = 'passed') AS passed_at,
                count(*) FILTER (WHERE status = 'failed') AS failed_attempts,
                count(*) FILTER (WHERE status IN ('passed', 'failed')) AS finished_attempts
           FROM stages
          WHERE started_at >= $1 AND started_at < $2 AND ($3::text IS NULL OR tenant_id = $3)
          GROUP BY tenant_id, run_id, phase)
       SELECT pairs.phase,
              count(*)::int AS pairs,
              count(*) FILTER (WHERE last_status IN ('passed', 'failed'))::int AS finished_pairs,
              count(*) FILTER (WHERE last_status = 'passed')::int AS passed_pairs,
              sum(attempts - 1)::int AS retries,
              sum(failed_attempts)::int AS failed_attempts,
              sum(finished_attempts)::int AS finished_attempts,
              (avg(extract(epoch FROM passed_at - entered_at) * 1000)
                 FILTER (WHERE passed_at IS NOT NULL))::float8 AS ttg_avg_ms,
              (percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM passed_at - entered_at) * 1000)
                 FILTER (WHERE passed_at IS NOT NULL))::float8 AS ttg_p50_ms,
              (percentile_disc(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM passed_at - entered_at) * 1000)
                 FILTER (WHERE passed_at IS NOT NULL))::float8 AS ttg_p95_ms,
              (CASE WHEN $3::text IS NOT NULL THEN max(t.target_ms) END)::float8 AS target_ms,
              count(*) FILTER (WHERE passed_at IS NOT NULL AND t.target_ms IS NOT NULL)::int AS targeted_pairs,
              count(*) FILTER (WHERE passed_at IS NOT NULL
                                 AND passed_at - entered_at <= t.target_ms * interval '1 millisecond')::int AS within_pairs
         FROM pairs
         LEFT JOIN phase_targets t ON t.tenant_id = pairs.tenant_id AND t.phase = pairs.phase
        GROUP BY pairs.phase
        ORDER BY min(entered_at), pairs.phase`,
      [window.from, window.to, window.tenantId],
    );
  }

  /** Runs whose first event is in the window. */
  async runStats(window: Window): Promise<RunStatsRow> {
    const rows: RunStatsRow[] = await this.db.query(
      `SELECT count(*)::int AS runs,
              count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
              count(*) FILTER (WHERE status = 'failed')::int AS failed,
              count(*) FILTER (WHERE status = 'running')::int AS running,
              count(*) FILTER (WHERE EXISTS (
                SELECT 1 FROM interventions i WHERE i.tenant_id = runs.tenant_id AND i.run_id = runs.run_id)
              )::int AS with_interventions,
              COALESCE(sum(tokens_in + tokens_out), 0)::text AS tokens,
              COALESCE(sum(cost_micros), 0)::text AS cost_micros
         FROM runs
        WHERE first_event_at >= $1 AND first_event_at < $2 AND ($3::text IS NULL OR tenant_id = $3)`,
      [window.from, window.to, window.tenantId],
    );
    return rows[0]!;
  }

  /** LLM cost from the rollups plus external charges, per UTC day and tenant. */
  async dailyCost(window: Window): Promise<Array<{ day: string; tenant_id: string; micros: string }>> {
    return this.db.query(
      `SELECT day, tenant_id, sum(micros)::text AS micros FROM (
         SELECT day::text AS day, tenant_id, sum(cost_micros) AS micros
           FROM usage_daily
          WHERE day >= $1::date AND day <= $2::date AND kind = 'llm' AND ($5::text IS NULL OR tenant_id = $5)
          GROUP BY 1, 2
         UNION ALL
         SELECT (time AT TIME ZONE 'UTC')::date::text, tenant_id, sum(amount_micros)
           FROM external_charges
          WHERE time >= $3 AND time < $4 AND ($5::text IS NULL OR tenant_id = $5)
          GROUP BY 1, 2) AS parts
        GROUP BY day, tenant_id
        ORDER BY day, tenant_id`,
      [window.fromDay, window.toDay, window.from, window.to, window.tenantId],
    );
  }

  /** Calls and failures per agent (role), LLM and tool calls together. */
  async agentErrors(window: Window): Promise<Array<{ agent: string; calls: string; failures: string }>> {
    return this.db.query(
      `SELECT role AS agent, sum(call_count)::text AS calls, sum(failure_count)::text AS failures
         FROM usage_daily
        WHERE day >= $1::date AND day <= $2::date AND ($3::text IS NULL OR tenant_id = $3)
        GROUP BY role ORDER BY role`,
      [window.fromDay, window.toDay, window.tenantId],
    );
  }

  /** Queue waits (task_dequeued: event time - enqueued_at), through the partial index of the log. */
  async queueLatency(window: Window): Promise<{ tasks: number; avg_ms: number | null; p95_ms: number | null }> {
    const rows: Array<{ tasks: number; avg_ms: number | null; p95_ms: number | null }> = await this.db.query(
      `WITH waits AS (
         SELECT extract(epoch FROM time - (payload->>'enqueued_at')::timestamptz) * 1000 AS ms
           FROM events
          WHERE type = 'task_dequeued' AND time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3))
       SELECT count(*)::int AS tasks, avg(ms)::float8 AS avg_ms,
              (percentile_disc(0.95) WITHIN GROUP (ORDER BY ms))::float8 AS p95_ms
         FROM waits`,
      [window.from, window.to, window.tenantId],
    );
    return rows[0]!;
  }

  /** Failed runs finished in the window and, for each, when the project next had a successful run. */
  async recoveries(window: Window): Promise<Array<{ run_id: string; recovered_ms: number | null }>> {
    return this.db.query(
      `SELECT f.run_id, (extract(epoch FROM next.finished_at - f.finished_at) * 1000)::float8 AS recovered_ms
         FROM runs f
         LEFT JOIN LATERAL (
           SELECT s.finished_at FROM runs s
            WHERE s.tenant_id = f.tenant_id AND s.project_id = f.project_id AND s.status = 'succeeded'
              AND s.finished_at > f.finished_at
            ORDER BY s.finished_at LIMIT 1) AS next ON true
        WHERE f.status = 'failed' AND f.finished_at >= $1 AND f.finished_at < $2
          AND ($3::text IS NULL OR f.tenant_id = $3)
        ORDER BY f.finished_at LIMIT 10000`,
      [window.from, window.to, window.tenantId],
    );
  }

  /** Counts of the few event types the metrics read from the log, through its partial index. */
  async eventCounts(window: Window): Promise<EventCountsRow> {
    const rows: EventCountsRow[] = await this.db.query(
      `SELECT count(*) FILTER (WHERE type = 'cap_hit')::int AS cap_hits,
              count(*) FILTER (WHERE type = 'proof_due')::int AS proofs_due,
              count(*) FILTER (WHERE type = 'proof_completed')::int AS proofs_completed,
              count(*) FILTER (WHERE type = 'proof_completed' AND (payload->>'passed')::boolean)::int AS proofs_passed,
              count(*) FILTER (WHERE type = 'publish_done')::int AS ships
         FROM events
        WHERE type IN ('cap_hit', 'proof_due', 'proof_completed', 'publish_done')
          AND time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3)`,
      [window.from, window.to, window.tenantId],
    );
    return rows[0]!;
  }
}

export interface PhaseStatsRow {
  phase: string;
  pairs: number;
  finished_pairs: number;
  passed_pairs: number;
  retries: number;
  failed_attempts: number;
  finished_attempts: number;
  ttg_avg_ms: number | null;
  ttg_p50_ms: number | null;
  ttg_p95_ms: number | null;
  /** The tenant's target for the phase (tenant scope only; null without one). */
  target_ms: number | null;
  /** Passed pairs whose tenant has a target for the phase, and those of them within it. */
  targeted_pairs: number;
  within_pairs: number;
}

export interface RunStatsRow {
  runs: number;
  succeeded: number;
  failed: number;
  running: number;
  with_interventions: number;
  tokens: string;
  cost_micros: string;
}

export interface EventCountsRow {
  cap_hits: number;
  proofs_due: number;
  proofs_completed: number;
  proofs_passed: number;
  ships: number;
}
