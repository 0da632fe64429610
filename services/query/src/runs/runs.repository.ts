import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

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
  environment: Record<string, string> | null;
  first_event_at: Date;
  last_event_at: Date;
  updated_at: Date;
}

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

/** Reads of run metrics. Tenant scope is a required argument; the cross-tenant lookup says so by name. */
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

  /** For roles that read every tenant: every tenant's run with this id (normally one). */
  async findRunAcrossTenants(runId: string): Promise<RunRow[]> {
    return this.db.query(`SELECT * FROM runs WHERE run_id = $1 LIMIT 2`, [runId]);
  }

  /** One row per phase; the status and trace are those of the latest attempt. */
  async stages(tenantId: string, runId: string): Promise<StageRow[]> {
    return this.db.query(
      `SELECT phase,
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
        WHERE tenant_id = $1 AND run_id = $2
        GROUP BY phase
        ORDER BY min(started_at) NULLS LAST, phase`,
      [tenantId, runId],
    );
  }

  /** MCP cache hits and misses per key space (amtp:mcp:tree, amtp:mcp:blob, ...). */
  async mcpCache(tenantId: string, runId: string): Promise<CacheRow[]> {
    return this.db.query(
      `SELECT cache_key_space,
              count(*) FILTER (WHERE cache_hit)::text       AS hits,
              count(*) FILTER (WHERE NOT cache_hit)::text   AS misses
         FROM tool_calls
        WHERE tenant_id = $1 AND run_id = $2 AND cache_key_space IS NOT NULL AND cache_hit IS NOT NULL
        GROUP BY cache_key_space
        ORDER BY cache_key_space`,
      [tenantId, runId],
    );
  }
}
