import { Injectable } from '@nestjs/common';
import { Clock, formatUsd } from '@agentmeter/domain';
import { type Caller, tenantOf } from '../auth/caller';
import { NotFoundError } from '@agentmeter/http';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { Limits } from '../http/limits';
import { LinksService } from '../links/links.service';
import { type View, ViewPolicy } from '../tenants/view.policy';
import type { CacheSpace, McpCache, RunMetrics, StageMetrics } from './run-metrics.dto';
import {
  RunsRepository,
  type CacheRow,
  type RunListRow,
  type RunMetricsRow,
  type RunRow,
  type StageRow,
} from './runs.repository';
import type { EventPage, EventsQuery, RunPage, RunSummary, RunsQuery, TimelineEvent } from './runs.schemas';

export class AmbiguousRunError extends Error {
  readonly code = 'AMBIGUOUS';
}

/** Payload keys that only OP and Admin see (docs/security.md "Field policy"). */
const TRACE_KEYS = new Set(['trace_id', 'span_id', 'ancestor_span_ids', 'traceparent']);
/** Payload keys hidden from Owners of a tenant that shows them only $ and time. */
const TOKEN_KEYS = new Set([
  'prompt_tokens',
  'completion_tokens',
  'cached_tokens',
  'reasoning_tokens',
  'input_tokens',
  'output_tokens',
]);

/** Run lists, run detail panels and run timelines; what a caller sees depends on its role (docs/security.md). */
@Injectable()
export class RunsService {
  constructor(
    private readonly runs: RunsRepository,
    private readonly views: ViewPolicy,
    private readonly links: LinksService,
    private readonly limits: Limits,
    private readonly clock: Clock,
  ) {}

  async metrics(caller: Caller, runId: string): Promise<RunMetrics> {
    return this.metricsOf(caller, await this.findVisibleRunWithMetrics(caller, runId));
  }

  /** Metrics of a run already found visible, read with its stages and cache counts (the stream re-reads them). */
  async metricsOf(caller: Caller, run: RunMetricsRow): Promise<RunMetrics> {
    const view = await this.views.viewOf(caller.principal, run.tenant_id);
    const metrics = toRunMetrics(run, run.stages, run.cache, view, this.clock.now());
    if (view.traces) {
      metrics.grafana_url = this.links.runDashboard(run.run_id);
      for (const stage of metrics.stages) stage.trace_url = this.links.trace(stage.trace_id ?? null);
    }
    return metrics;
  }

  async list(caller: Caller, query: RunsQuery, csv: boolean): Promise<RunPage> {
    const tenantId = tenantOf(caller, query.tenant_id);
    const limit = this.limits.pageSize(query.limit, csv);
    const { from, to } = this.limits.timeRange(query.from, query.to, this.clock.now());
    const after = decodeCursor(query.cursor, 2) as [string, string] | null;
    const rows = await this.runs.list({
      tenantId,
      projectId: query.project_id,
      status: query.status,
      phase: query.phase,
      model: query.model,
      from,
      to,
      after,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const items: RunSummary[] = [];
    for (const row of page) items.push(toSummary(row, await this.views.viewOf(caller.principal, row.tenant_id)));
    return {
      items,
      next_cursor: rows.length > limit && last ? encodeCursor([last.position, last.run_id]) : null,
      limit,
    };
  }

  async events(caller: Caller, runId: string, query: EventsQuery, csv: boolean): Promise<EventPage> {
    const run = await this.findVisibleRun(caller, runId);
    const view = await this.views.viewOf(caller.principal, run.tenant_id);
    const limit = this.limits.pageSize(query.limit, csv);
    const after = decodeCursor(query.cursor, 3) as [string, string, string] | null;
    const rows = await this.runs.events(run, query.types ?? null, after, limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      run_id: run.run_id,
      tenant_id: run.tenant_id,
      items: page.map((row) => {
        const data = redactPayload(row.payload, view);
        const event: TimelineEvent = {
          time: row.time.toISOString(),
          type: row.type,
          source: row.source,
          id: row.event_id,
          phase: typeof row.payload.phase === 'string' ? row.payload.phase : null,
          role: typeof row.payload.role === 'string' ? row.payload.role : null,
          attempt: typeof row.payload.attempt === 'number' ? row.payload.attempt : null,
          data,
        };
        if (view.traces) event.trace_id = row.trace_id;
        return event;
      }),
      next_cursor: rows.length > limit && last ? encodeCursor([last.position, last.source, last.event_id]) : null,
      limit,
    };
  }

  /** Another tenant's run answers exactly like a missing one: 404. */
  async findVisibleRun(caller: Caller, runId: string): Promise<RunRow> {
    const own = await this.runs.findRun(caller.principal.tenantId, runId);
    if (own) return own;
    if (caller.scope !== 'all') throw new NotFoundError(`run ${runId} not found`);
    return onlyMatch(await this.runs.findRunAcrossTenants(runId), runId);
  }

  /** findVisibleRun's rules, with the run's stages and cache counts read in the same round trip. */
  async findVisibleRunWithMetrics(caller: Caller, runId: string): Promise<RunMetricsRow> {
    const tenantId = caller.principal.tenantId;
    if (caller.scope === 'all')
      return onlyMatch(await this.runs.findRunWithMetricsAcrossTenants(tenantId, runId), runId);
    const own = await this.runs.findRunWithMetrics(tenantId, runId);
    if (!own) throw new NotFoundError(`run ${runId} not found`);
    return own;
  }
}

/** The one run with this id: none is 404, several (in different tenants) is ambiguous. */
function onlyMatch<T>(matches: T[], runId: string): T {
  if (matches.length === 0) throw new NotFoundError(`run ${runId} not found`);
  if (matches.length > 1) throw new AmbiguousRunError(`run id ${runId} exists in several tenants`);
  return matches[0]!;
}

export function toRunMetrics(
  run: RunRow,
  stageRows: StageRow[],
  cacheRows: CacheRow[],
  view: View,
  now: Date,
): RunMetrics {
  const stages = stageRows.map((row) => toStage(row, view));
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
      ...(view.tokens
        ? { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
        : {}),
      cost_usd: formatUsd(BigInt(run.cost_micros)),
      llm_calls: run.llm_calls,
    },
    cost_breakdown_usd: {
      stages_usd: formatUsd(stageRows.reduce((sum, row) => sum + BigInt(row.cost_micros), 0n)),
      external_usd: formatUsd(BigInt(run.external_micros)),
      total_usd: formatUsd(BigInt(run.cost_micros)),
    },
    stages,
    mcp_cache: toMcpCache(cacheRows),
    freshness: { last_event_at: run.last_event_at.toISOString(), last_synced_at: run.updated_at.toISOString() },
    environment: run.environment,
  };
}

function toStage(row: StageRow, view: View): StageMetrics {
  const running = row.status === 'running' || row.status === 'pending';
  const prompt = Number(row.prompt_tokens);
  const completion = Number(row.completion_tokens);
  const stage: StageMetrics = {
    stage: row.phase,
    role: row.role,
    status: row.status,
    attempts: row.attempts,
    ...(view.tokens
      ? {
          prompt_tokens: running ? null : prompt,
          completion_tokens: running ? null : completion,
          total_tokens: running ? null : prompt + completion,
        }
      : {}),
    cost_usd: formatUsd(BigInt(row.cost_micros)),
    started_at: iso(row.started_at),
    finished_at: running ? null : iso(row.finished_at),
    elapsed_ms:
      !running && row.started_at && row.finished_at ? row.finished_at.getTime() - row.started_at.getTime() : null,
    longest: false,
  };
  if (running) stage.note = 'Stage in progress — token usage will appear when complete';
  if (view.traces) stage.trace_id = row.trace_id;
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

export function toSummary(run: RunListRow, view: View): RunSummary {
  const prompt = Number(run.tokens_in);
  const completion = Number(run.tokens_out);
  return {
    run_id: run.run_id,
    tenant_id: run.tenant_id,
    project_id: run.project_id,
    playbook: run.playbook,
    status: run.status as RunSummary['status'],
    phase: run.phase,
    role: run.role,
    model: run.model,
    started_at: iso(run.started_at),
    finished_at: iso(run.finished_at),
    first_event_at: run.first_event_at.toISOString(),
    last_event_at: run.last_event_at.toISOString(),
    duration_ms: run.started_at && run.finished_at ? run.finished_at.getTime() - run.started_at.getTime() : null,
    ...(view.tokens ? { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } : {}),
    cost_usd: formatUsd(BigInt(run.cost_micros)),
    external_cost_usd: formatUsd(BigInt(run.external_micros)),
    llm_calls: run.llm_calls,
    cached: run.cached,
    interventions: run.intervention_count,
    error: run.error,
  };
}

/** An event's data as the caller may see it: no trace ids unless OP/Admin, no tokens when hidden. */
export function redactPayload(payload: Record<string, unknown>, view: View): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(payload)) {
    if (!view.traces && TRACE_KEYS.has(key)) continue;
    if (!view.tokens && TOKEN_KEYS.has(key)) continue;
    out[key] = value;
  }
  return out;
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function iso(value: Date | null): string | null {
  return value ? value.toISOString() : null;
}
