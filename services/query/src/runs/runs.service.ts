import { Injectable } from '@nestjs/common';
import { formatUsd } from '@agentmeter/domain';
import { readsAllTenants, seesObservabilityLinks, type Principal } from '../auth/principal';
import { NotFoundError } from '../errors/problem.filter';
import type { CacheSpace, McpCache, RunMetrics, StageMetrics } from './run-metrics.dto';
import { RunsRepository, type CacheRow, type RunRow, type StageRow } from './runs.repository';

export class AmbiguousRunError extends Error {
  readonly code = 'AMBIGUOUS';
}

/** Builds the run detail panels; what a caller sees depends on its role (docs/security.md). */
@Injectable()
export class RunsService {
  constructor(private readonly runs: RunsRepository) {}

  async metrics(principal: Principal, runId: string, now = new Date()): Promise<RunMetrics> {
    const run = await this.findVisibleRun(principal, runId);
    const [stages, cache] = await Promise.all([
      this.runs.stages(run.tenant_id, run.run_id),
      this.runs.mcpCache(run.tenant_id, run.run_id),
    ]);
    return toRunMetrics(run, stages, cache, seesObservabilityLinks(principal), now);
  }

  /** Another tenant's run answers exactly like a missing one: 404. */
  private async findVisibleRun(principal: Principal, runId: string): Promise<RunRow> {
    if (!readsAllTenants(principal)) {
      const run = await this.runs.findRun(principal.tenantId, runId);
      if (!run) throw new NotFoundError(`run ${runId} not found`);
      return run;
    }
    const own = await this.runs.findRun(principal.tenantId, runId);
    if (own) return own;
    const matches = await this.runs.findRunAcrossTenants(runId);
    if (matches.length === 0) throw new NotFoundError(`run ${runId} not found`);
    if (matches.length > 1) throw new AmbiguousRunError(`run id ${runId} exists in several tenants`);
    return matches[0]!;
  }
}

export function toRunMetrics(
  run: RunRow,
  stageRows: StageRow[],
  cacheRows: CacheRow[],
  withTraces: boolean,
  now: Date,
): RunMetrics {
  const stages = stageRows.map((row) => toStage(row, withTraces));
  const longest = stages.reduce<StageMetrics | undefined>(
    (best, stage) =>
      stage.elapsed_ms !== null && (best === undefined || stage.elapsed_ms > best.elapsed_ms!) ? stage : best,
    undefined,
  );
  if (longest) longest.longest = true;
  const prompt = Number(run.tokens_in);
  const completion = Number(run.tokens_out);
  return {
    run_id: run.run_id,
    tenant_id: run.tenant_id,
    project_id: run.project_id,
    status: run.status,
    phase: run.phase,
    model: run.model,
    started_at: iso(run.started_at),
    finished_at: iso(run.finished_at),
    server_time: now.toISOString(),
    totals: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      cost_usd: formatUsd(BigInt(run.cost_micros)),
      llm_calls: run.llm_calls,
    },
    stages,
    mcp_cache: toMcpCache(cacheRows),
    freshness: { last_event_at: run.last_event_at.toISOString(), last_synced_at: run.updated_at.toISOString() },
    environment: run.environment,
  };
}

function toStage(row: StageRow, withTraces: boolean): StageMetrics {
  const running = row.status === 'running' || row.status === 'pending';
  const prompt = Number(row.prompt_tokens);
  const completion = Number(row.completion_tokens);
  const stage: StageMetrics = {
    stage: row.phase,
    role: row.role,
    status: row.status,
    attempts: row.attempts,
    prompt_tokens: running ? null : prompt,
    completion_tokens: running ? null : completion,
    total_tokens: running ? null : prompt + completion,
    started_at: iso(row.started_at),
    finished_at: running ? null : iso(row.finished_at),
    elapsed_ms:
      !running && row.started_at && row.finished_at ? row.finished_at.getTime() - row.started_at.getTime() : null,
    longest: false,
  };
  if (running) stage.note = 'Stage in progress — token usage will appear when complete';
  if (withTraces) stage.trace_id = row.trace_id;
  return stage;
}

function toMcpCache(rows: CacheRow[]): McpCache | null {
  if (rows.length === 0) return null;
  const space = (name: string): CacheSpace => {
    const row = rows.find((r) => r.cache_key_space === name);
    const hits = Number(row?.hits ?? 0);
    const misses = Number(row?.misses ?? 0);
    return { hits, misses, ratio: hits + misses === 0 ? null : round4(hits / (hits + misses)) };
  };
  const hits = rows.reduce((sum, r) => sum + Number(r.hits), 0);
  const total = rows.reduce((sum, r) => sum + Number(r.hits) + Number(r.misses), 0);
  return {
    tree: space('amtp:mcp:tree'),
    blob: space('amtp:mcp:blob'),
    overall_hit_pct: total === 0 ? 0 : Math.round((hits / total) * 10_000) / 100,
  };
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function iso(value: Date | null): string | null {
  return value ? value.toISOString() : null;
}
