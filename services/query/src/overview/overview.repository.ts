import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { RunRow } from '../runs/runs.repository';

export interface OverviewFilter {
  /** null: every tenant (Admin). */
  tenantId: string | null;
  model?: string;
  phase?: string;
}

export interface FailureRow {
  tenant_id: string;
  run_id: string;
  project_id: string | null;
  run_status: string | null;
  model: string | null;
  phase: string;
  role: string | null;
  reason: string;
  artifact_ref: string;
  last_artifact: string | null;
  trace_id: string | null;
  first_seen: Date;
  last_seen: Date;
  count: number;
}

export interface StuckRow {
  tenant_id: string;
  project_id: string;
  running_runs: number;
  oldest_event_at: Date;
  phases: string[];
  run_ids: string[];
}

export interface CapRunRow {
  tenant_id: string;
  project_id: string;
  run_id: string;
  phase: string | null;
  model: string | null;
  caps: Record<string, unknown>;
  tokens: string;
  cost_micros: string;
  external_micros: string;
  started_at: Date | null;
}

export interface DayTrendRow {
  day: string;
  input_tokens: string;
  output_tokens: string;
  llm_micros: string;
  external_micros: string;
}

/**
 * Reads of the Admin, Tenant and Project overviews (docs/query.md "Dashboards"). Every read is bounded: by the
 * day rollups, by a LIMIT over an index, or by the partial index of running runs. The Admin Overview's
 * spend and trends read usage_model_daily (one row per day, tenant, model and provider), whose size does
 * not grow with projects, roles or users as usage_daily's does.
 */
@Injectable()
export class OverviewRepository {
  constructor(private readonly db: DataSource) {}

  /** Today's LLM spend per model from the per-model day rollups (usage_model_daily). */
  async spendByModel(
    day: string,
    filter: OverviewFilter,
  ): Promise<Array<{ model: string; provider: string; micros: string; calls: string; tokens: string }>> {
    return this.db.query(
      `SELECT model, provider, sum(cost_micros)::text AS micros, sum(call_count)::text AS calls,
              sum(input_tokens + output_tokens)::text AS tokens
         FROM usage_model_daily
        WHERE day = $1::date AND ($2::text IS NULL OR tenant_id = $2) AND ($3::text IS NULL OR model = $3)
        GROUP BY model, provider
        ORDER BY sum(cost_micros) DESC, model, provider`,
      [day, filter.tenantId, filter.model ?? null],
    );
  }

  /** Today's spend per tenant: LLM calls from the per-model rollups, plus external charges (unless a model is asked). */
  async spendByTenant(
    day: string,
    filter: OverviewFilter,
  ): Promise<Array<{ tenant_id: string; llm_micros: string; external_micros: string }>> {
    return this.db.query(
      `SELECT tenant_id, sum(llm)::text AS llm_micros, sum(ext)::text AS external_micros FROM (
         SELECT tenant_id, sum(cost_micros) AS llm, 0::numeric AS ext
           FROM usage_model_daily
          WHERE day = $1::date AND ($2::text IS NULL OR tenant_id = $2) AND ($3::text IS NULL OR model = $3)
          GROUP BY tenant_id
         UNION ALL
         SELECT tenant_id, 0, sum(amount_micros)
           FROM external_charges
          WHERE time >= $1::date AND time < $1::date + 1 AND $3::text IS NULL
            AND ($2::text IS NULL OR tenant_id = $2)
          GROUP BY tenant_id) AS parts
        GROUP BY tenant_id
        ORDER BY sum(llm) + sum(ext) DESC, tenant_id`,
      [day, filter.tenantId, filter.model ?? null],
    );
  }

  /**
   * The latest failures with their run, the trace of the failing phase's latest attempt and, when the
   * failure names no artifact, the phase's latest written artifact (looked up in the run's partitions).
   */
  async lastFailures(filter: OverviewFilter, limit: number): Promise<FailureRow[]> {
    return this.db.query(
      `SELECT f.tenant_id, f.run_id, r.project_id, r.status AS run_status, r.model, f.phase, f.role, f.reason,
              f.artifact_ref, art.ref AS last_artifact, st.trace_id, f.first_seen, f.last_seen, f.count
         FROM failures f
         LEFT JOIN runs r ON r.tenant_id = f.tenant_id AND r.run_id = f.run_id
         LEFT JOIN LATERAL (
           SELECT s.trace_id FROM stages s
            WHERE s.tenant_id = f.tenant_id AND s.run_id = f.run_id AND s.phase = f.phase AND s.trace_id IS NOT NULL
            ORDER BY s.attempt DESC LIMIT 1) AS st ON true
         LEFT JOIN LATERAL (
           SELECT (e.payload->>'artifact_path') || '@' || (e.payload->>'artifact_version') AS ref
             FROM events e
            WHERE f.artifact_ref = '' AND r.run_id IS NOT NULL
              AND e.tenant_id = f.tenant_id AND e.run_id = f.run_id AND e.type = 'artifact_written'
              AND e.time >= r.first_event_at AND e.time <= f.last_seen AND e.payload->>'phase' = f.phase
            ORDER BY e.time DESC LIMIT 1) AS art ON true
        WHERE ($1::text IS NULL OR f.tenant_id = $1) AND ($2::text IS NULL OR r.model = $2)
          AND ($3::text IS NULL OR f.phase = $3)
        ORDER BY f.last_seen DESC
        LIMIT $4`,
      [filter.tenantId, filter.model ?? null, filter.phase ?? null, limit],
    );
  }

  /** Projects whose running runs have been silent since before `silentSince`, most stuck first. */
  async stuckProjects(filter: OverviewFilter, silentSince: Date, limit: number): Promise<StuckRow[]> {
    return this.db.query(
      `SELECT tenant_id, project_id, count(*)::int AS running_runs, min(last_event_at) AS oldest_event_at,
              array_agg(DISTINCT phase) FILTER (WHERE phase IS NOT NULL) AS phases,
              (array_agg(run_id ORDER BY last_event_at))[1:5] AS run_ids
         FROM runs
        WHERE status = 'running' AND last_event_at < $1
          AND ($2::text IS NULL OR tenant_id = $2) AND ($3::text IS NULL OR model = $3)
          AND ($4::text IS NULL OR phase = $4)
        GROUP BY tenant_id, project_id
        ORDER BY min(last_event_at), tenant_id, project_id
        LIMIT $5`,
      [silentSince, filter.tenantId, filter.model ?? null, filter.phase ?? null, limit],
    );
  }

  /** Running runs that carry caps (run_started), for the caps-approaching panel (partial index). */
  async runningRunsWithCaps(filter: OverviewFilter, limit: number): Promise<CapRunRow[]> {
    return this.db.query(
      `SELECT tenant_id, project_id, run_id, phase, model, caps, (tokens_in + tokens_out)::text AS tokens,
              cost_micros::text, external_micros::text, started_at
         FROM runs
        WHERE status = 'running' AND caps IS NOT NULL
          AND ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR model = $2)
          AND ($3::text IS NULL OR phase = $3)
        ORDER BY last_event_at DESC
        LIMIT $4`,
      [filter.tenantId, filter.model ?? null, filter.phase ?? null, limit],
    );
  }

  /** Per UTC day: tokens and LLM cost from the per-model rollups, external charges from their table. */
  async dailyTrend(fromDay: string, toDay: string, filter: OverviewFilter): Promise<DayTrendRow[]> {
    return this.db.query(
      `SELECT d.day::date::text AS day,
              COALESCE(u.input_tokens, 0)::text AS input_tokens, COALESCE(u.output_tokens, 0)::text AS output_tokens,
              COALESCE(u.micros, 0)::text AS llm_micros, COALESCE(x.micros, 0)::text AS external_micros
         FROM generate_series($1::date, $2::date, interval '1 day') AS d(day)
         LEFT JOIN (
           SELECT day, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_micros) AS micros
             FROM usage_model_daily
            WHERE day >= $1::date AND day <= $2::date AND ($3::text IS NULL OR tenant_id = $3)
              AND ($4::text IS NULL OR model = $4)
            GROUP BY day) AS u ON u.day = d.day::date
         LEFT JOIN (
           SELECT (time AT TIME ZONE 'UTC')::date AS day, sum(amount_micros) AS micros
             FROM external_charges
            WHERE time >= $1::date AND time < $2::date + 1 AND ($3::text IS NULL OR tenant_id = $3) AND $4::text IS NULL
            GROUP BY 1) AS x ON x.day = d.day::date
        ORDER BY d.day`,
      [fromDay, toDay, filter.tenantId, filter.model ?? null],
    );
  }

  // Tenant overview -----------------------------------------------------------------------------------------

  async tenantExists(tenantId: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(`SELECT 1 FROM tenants WHERE tenant_id = $1`, [tenantId]);
    return rows.length > 0;
  }

  /** The latest ships (publish_done) of a tenant, through the partial index of the log. */
  async recentShips(
    tenantId: string,
    limit: number,
  ): Promise<Array<{ time: Date; run_id: string; payload: Record<string, unknown> }>> {
    return this.db.query(
      `SELECT time, run_id, payload FROM events
        WHERE tenant_id = $1 AND type = 'publish_done'
        ORDER BY time DESC LIMIT $2`,
      [tenantId, limit],
    );
  }

  // Project overview ----------------------------------------------------------------------------------------

  /** The tenants that have a project with this id (the caller's tenant first). */
  async projectTenants(projectId: string, tenantId: string | null): Promise<string[]> {
    const rows: Array<{ tenant_id: string }> = await this.db.query(
      `SELECT tenant_id FROM projects WHERE project_id = $1 AND ($2::text IS NULL OR tenant_id = $2)
        ORDER BY tenant_id LIMIT 2`,
      [projectId, tenantId],
    );
    return rows.map((row) => row.tenant_id);
  }

  async projectRuns(tenantId: string, projectId: string, limit: number): Promise<RunRow[]> {
    return this.db.query(
      `SELECT * FROM runs WHERE tenant_id = $1 AND project_id = $2
        ORDER BY first_event_at DESC, run_id DESC LIMIT $3`,
      [tenantId, projectId, limit],
    );
  }

  /** Every attempt of one run's phases, in order. */
  async attempts(
    tenantId: string,
    runId: string,
  ): Promise<
    Array<{
      phase: string;
      attempt: number;
      role: string | null;
      status: string;
      started_at: Date | null;
      finished_at: Date | null;
    }>
  > {
    return this.db.query(
      `SELECT phase, attempt, role, status, started_at, finished_at FROM stages
        WHERE tenant_id = $1 AND run_id = $2 ORDER BY started_at NULLS LAST, phase, attempt`,
      [tenantId, runId],
    );
  }

  /** Artifact versions written per phase across some runs (bounded to their partitions). */
  async artifactVersions(
    tenantId: string,
    runs: RunRow[],
  ): Promise<Array<{ phase: string; version: string; writes: number; runs: number }>> {
    if (runs.length === 0) return [];
    const from = new Date(Math.min(...runs.map((r) => r.first_event_at.getTime())));
    const to = new Date(Math.max(...runs.map((r) => r.last_event_at.getTime())));
    return this.db.query(
      `SELECT payload->>'phase' AS phase, payload->>'artifact_version' AS version, count(*)::int AS writes,
              count(DISTINCT run_id)::int AS runs
         FROM events
        WHERE tenant_id = $1 AND run_id = ANY($2::text[]) AND time >= $3 AND time <= $4 AND type = 'artifact_written'
        GROUP BY 1, 2 ORDER BY 1, 2`,
      [tenantId, runs.map((r) => r.run_id), from, to],
    );
  }

  /** Failures of runs that have not succeeded (the project's open flags). */
  async openFlags(tenantId: string, runIds: string[], limit: number): Promise<FailureRow[]> {
    return this.db.query(
      `SELECT f.tenant_id, f.run_id, r.project_id, r.status AS run_status, r.model, f.phase, f.role, f.reason,
              f.artifact_ref, NULL AS last_artifact, NULL AS trace_id, f.first_seen, f.last_seen, f.count
         FROM failures f JOIN runs r ON r.tenant_id = f.tenant_id AND r.run_id = f.run_id
        WHERE f.tenant_id = $1 AND f.run_id = ANY($2::text[]) AND r.status <> 'succeeded'
        ORDER BY f.last_seen DESC LIMIT $3`,
      [tenantId, runIds, limit],
    );
  }
}
