import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { queryPrepared } from '@agentmeter/database';

export interface RunRow {
  tenant_id: string;
  run_id: string;
  project_id: string;
  playbook: string | null;
  status: string;
  phase: string | null;
  role: string | null;
  model: string | null;
  error: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  tokens_in: string;
  tokens_out: string;
  cost_micros: string;
  external_micros: string;
  llm_calls: number;
  cached: boolean;
  interventions: number;
  environment: Record<string, string> | null;
  caps: Record<string, unknown> | null;
  first_event_at: Date;
  last_event_at: Date;
  updated_at: Date;
}

/** A run row with its keyset position (exact to the microsecond, which a JS Date is not). */
export type RunListRow = RunRow & { position: string; intervention_count: number };

export interface StageRow {
  phase: string;
  role: string | null;
  attempts: number;
  status: string;
  started_at: Date | null;
  finished_at: Date | null;
  prompt_tokens: string;
  completion_tokens: string;
  cost_micros: string;
  trace_id: string | null;
}

export interface CacheRow {
  cache_key_space: string;
  hits: string;
  misses: string;
}

/** A run with what its metrics need: its stages (one per phase) and its MCP cache counts. */
export type RunMetricsRow = RunRow & { stages: StageRow[]; cache: CacheRow[] };

export interface EventRow {
  source: string;
  event_id: string;
  type: string;
  time: Date;
  position: string;
  payload: Record<string, unknown>;
  trace_id: string | null;
}

export interface RunFilter {
  /** null: every tenant (callers whose scope is 'all'). */
  tenantId: string | null;
  projectId?: string;
  status?: string;
  phase?: string;
  model?: string;
  from: Date;
  to: Date;
  /** Keyset position of the last row of the previous page: [first_event_at, run_id]. */
  after: [string, string] | null;
  limit: number;
}

export interface RunChange {
  tenant_id: string;
  run_id: string;
  version: string;
}

/** Microsecond-exact ISO text of a timestamp, for keyset cursors. */
export const POSITION = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * The columns of a RunRow, named: a prepared statement that said `runs.*` would fail ("cached plan must not
 * change result type") after a migration adds a column while the service runs.
 */
const RUN_COLUMNS = `tenant_id, run_id, project_id, playbook, status, phase, role, model, error, started_at, finished_at,
  tokens_in, tokens_out, cost_micros, external_micros, llm_calls, cached, environment, caps, first_event_at,
  last_event_at, updated_at`;

/**
 * The run (its own tenant's; with $3, else every tenant's with that id, at most two) with its stages and its MCP
 * cache counts as JSON, in one statement: one round trip per GET /runs/{id}/metrics (docs/benchmarks.md "Query
 * latency"). Stages: one row per phase, the status and trace those of the latest attempt. MCP cache: hits and
 * misses per key space (amtp:mcp:tree, amtp:mcp:blob, ...); the run's event time span bounds the scan to the day
 * partitions it touched (pruned when the statement runs), so the cost depends on the run, not on the table.
 */
const RUN_WITH_METRICS = `
  WITH own AS (SELECT ${RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND run_id = $2),
  found AS (
    SELECT * FROM own
    UNION ALL
    (SELECT ${RUN_COLUMNS} FROM runs WHERE $3::boolean AND run_id = $2 AND NOT EXISTS (SELECT FROM own) LIMIT 2)
  )
  SELECT r.*, COALESCE(s.stages, '[]') AS stages, COALESCE(c.cache, '[]') AS cache
    FROM found r
    LEFT JOIN LATERAL (
      SELECT json_agg(st ORDER BY st.started_at NULLS LAST, st.phase) AS stages
        FROM (SELECT phase,
                     (array_agg(role ORDER BY attempt DESC))[1]                                    AS role,
                     count(*)::int                                                                  AS attempts,
                     (array_agg(status ORDER BY attempt DESC))[1]                                  AS status,
                     min(started_at)                                                                AS started_at,
                     max(finished_at)                                                               AS finished_at,
                     sum(prompt_tokens)::text                                                       AS prompt_tokens,
                     sum(completion_tokens)::text                                                   AS completion_tokens,
                     sum(cost_micros)::text                                                         AS cost_micros,
                     (array_agg(trace_id ORDER BY attempt DESC) FILTER (WHERE trace_id IS NOT NULL))[1] AS trace_id
                FROM stages
               WHERE tenant_id = r.tenant_id AND run_id = r.run_id
               GROUP BY phase) st
    ) s ON true
    LEFT JOIN LATERAL (
      SELECT json_agg(t ORDER BY t.cache_key_space) AS cache
        FROM (SELECT cache_key_space,
                     count(*) FILTER (WHERE cache_hit)::text       AS hits,
                     count(*) FILTER (WHERE NOT cache_hit)::text   AS misses
                FROM tool_calls
               WHERE tenant_id = r.tenant_id AND run_id = r.run_id
                 AND time >= r.first_event_at AND time <= r.last_event_at
                 AND cache_key_space IS NOT NULL AND cache_hit IS NOT NULL
               GROUP BY cache_key_space) t
    ) c ON true`;

/** A StageRow as JSON carries its times as text. */
type JsonStageRow = Omit<StageRow, 'started_at' | 'finished_at'> & {
  started_at: string | null;
  finished_at: string | null;
};

function stageOfJson(row: JsonStageRow): StageRow {
  return {
    ...row,
    started_at: row.started_at === null ? null : new Date(row.started_at),
    finished_at: row.finished_at === null ? null : new Date(row.finished_at),
  };
}

/** Reads of runs. Tenant scope is a required argument; the cross-tenant reads say so by name. */
@Injectable()
export class RunsRepository {
  constructor(private readonly db: DataSource) {}

  async findRun(tenantId: string, runId: string): Promise<RunRow | undefined> {
    const rows: RunRow[] = await this.db.query(`SELECT * FROM runs WHERE tenant_id = $1 AND run_id = $2`, [
      tenantId,
      runId,
    ]);
    return rows[0];
  }

  /** The tenant's run with its stages and MCP cache counts (one round trip); undefined when there is none. */
  async findRunWithMetrics(tenantId: string, runId: string): Promise<RunMetricsRow | undefined> {
    return (await this.runsWithMetrics(tenantId, runId, false))[0];
  }

  /**
   * For roles that read every tenant: the run of the caller's own tenant with this id if there is one, else every
   * tenant's (at most two: more than one is ambiguous), each with its stages and MCP cache counts; one round trip.
   */
  async findRunWithMetricsAcrossTenants(ownTenantId: string, runId: string): Promise<RunMetricsRow[]> {
    return this.runsWithMetrics(ownTenantId, runId, true);
  }

  private async runsWithMetrics(tenantId: string, runId: string, acrossTenants: boolean): Promise<RunMetricsRow[]> {
    const rows = await queryPrepared<RunRow & { stages: JsonStageRow[]; cache: CacheRow[] }>(
      this.db,
      'query-run-with-metrics',
      RUN_WITH_METRICS,
      [tenantId, runId, acrossTenants],
    );
    return rows.map((row) => ({ ...row, stages: row.stages.map(stageOfJson) }));
  }

  /** For roles that read every tenant: every tenant's run with this id (normally one). */
  async findRunAcrossTenants(runId: string): Promise<RunRow[]> {
    return this.db.query(`SELECT * FROM runs WHERE run_id = $1 LIMIT 2`, [runId]);
  }

  /**
   * A page of runs, newest first by first event time (every run has one; started_at is null until
   * run_started arrives). A null tenant reads every tenant: callers check the caller's scope first.
   */
  async list(filter: RunFilter): Promise<RunListRow[]> {
    const where: string[] = ['first_event_at >= $1', 'first_event_at < $2'];
    const params: unknown[] = [filter.from, filter.to];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.tenantId !== null) add('tenant_id = ?', filter.tenantId);
    if (filter.projectId !== undefined) add('project_id = ?', filter.projectId);
    if (filter.status !== undefined) add('status = ?', filter.status);
    if (filter.phase !== undefined) add('phase = ?', filter.phase);
    if (filter.model !== undefined) add('model = ?', filter.model);
    if (filter.after) {
      params.push(filter.after[0], filter.after[1]);
      where.push(`(first_event_at, run_id) < ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    params.push(filter.limit);
    return this.db.query(
      `SELECT *, ${POSITION('first_event_at')} AS position,
              (SELECT count(*)::int FROM interventions i
                WHERE i.tenant_id = runs.tenant_id AND i.run_id = runs.run_id) AS intervention_count
         FROM runs
        WHERE ${where.join(' AND ')}
        ORDER BY first_event_at DESC, run_id DESC
        LIMIT $${params.length}`,
      params,
    );
  }

  /** A page of a run's timeline in event-time order, bounded to the run's partitions. */
  async events(
    run: Pick<RunRow, 'tenant_id' | 'run_id' | 'first_event_at' | 'last_event_at'>,
    types: string[] | null,
    after: [string, string, string] | null,
    limit: number,
  ): Promise<EventRow[]> {
    const params: unknown[] = [run.tenant_id, run.run_id, run.first_event_at, run.last_event_at, types, limit];
    let keyset = '';
    if (after) {
      params.push(...after);
      keyset = `AND (time, source, event_id) > ($7::timestamptz, $8, $9)`;
    }
    return this.db.query(
      `SELECT source, event_id, type, time, ${POSITION('time')} AS position, payload, trace_id
         FROM events
        WHERE tenant_id = $1 AND run_id = $2 AND time >= $3 AND time <= $4
          AND ($5::text[] IS NULL OR type = ANY($5::text[])) ${keyset}
        ORDER BY time, source, event_id
        LIMIT $6`,
      params,
    );
  }

  /**
   * Change versions of watched runs, read in one statement for all of them: the run row's and its stages'
   * latest update time. A different version means the run's metrics changed.
   */
  async versionsOfWatchedRuns(keys: Array<{ tenantId: string; runId: string }>): Promise<RunChange[]> {
    if (keys.length === 0) return [];
    return this.db.query(
      `SELECT r.tenant_id, r.run_id,
              ${POSITION('GREATEST(r.updated_at, (SELECT max(s.updated_at) FROM stages s WHERE s.tenant_id = r.tenant_id AND s.run_id = r.run_id))')} AS version
         FROM unnest($1::text[], $2::text[]) AS w(tenant_id, run_id)
         JOIN runs r ON r.tenant_id = w.tenant_id AND r.run_id = w.run_id`,
      [keys.map((k) => k.tenantId), keys.map((k) => k.runId)],
    );
  }
}
