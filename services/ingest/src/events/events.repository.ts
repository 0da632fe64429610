import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import { traceIdOf, type Projection, type Ranked } from '@agentmeter/domain';

type LlmCall = AgentEvent & { type: 'llm_call' };
type ToolCall = AgentEvent & { type: 'tool_call' };

/** Writes of the ingest path. Every statement is a set-based upsert over unnest()ed arrays. */
@Injectable()
export class EventsRepository {
  constructor(private readonly dataSource: DataSource) {}

  transaction<T>(work: (tx: EventsWriter) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(new EventsWriter(manager)));
  }
}

export class EventsWriter {
  constructor(private readonly manager: EntityManager) {}

  /** Appends events to the log; returns the keys that were new (the rest are duplicates). */
  async insertEvents(events: AgentEvent[]): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    await this.ensureTenantsAndProjects(events);
    const rows: Array<{ source: string; event_id: string }> = await this.manager.query(
      `INSERT INTO events (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::timestamptz[], $7::jsonb[], $8::text[])
       ON CONFLICT (source, event_id) DO NOTHING
       RETURNING source, event_id`,
      [
        events.map((e) => e.source),
        events.map((e) => e.id),
        events.map((e) => e.data.tenant_id),
        events.map((e) => ('run_id' in e.data ? e.data.run_id : null)),
        events.map((e) => e.type),
        events.map((e) => e.time),
        events.map((e) => JSON.stringify(e.data)),
        events.map((e) => traceIdOf(e.traceparent) ?? ('trace_id' in e.data ? (e.data.trace_id ?? null) : null)),
      ],
    );
    return new Set(rows.map((row) => eventKey({ source: row.source, id: row.event_id })));
  }

  async insertCalls(events: AgentEvent[], costOf: (event: LlmCall) => bigint | null): Promise<void> {
    const llm = events.filter((e): e is LlmCall => e.type === 'llm_call');
    const tools = events.filter((e): e is ToolCall => e.type === 'tool_call');
    if (llm.length > 0) {
      await this.manager.query(
        `INSERT INTO llm_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model,
           provider, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros, cost_source,
           latency_ms, cached, status, trace_id, span_id, user_id, time)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
           $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
           $15::bigint[], $16::text[], $17::int[], $18::bool[], $19::text[], $20::text[], $21::text[],
           $22::text[], $23::timestamptz[])
         ON CONFLICT (source, event_id) DO NOTHING`,
        [
          llm.map((e) => e.source),
          llm.map((e) => e.id),
          llm.map((e) => e.data.tenant_id),
          llm.map((e) => e.data.project_id),
          llm.map((e) => e.data.run_id),
          llm.map((e) => e.data.phase),
          llm.map((e) => e.data.attempt),
          llm.map((e) => e.data.role),
          llm.map((e) => e.data.model),
          llm.map((e) => e.data.provider),
          llm.map((e) => e.data.prompt_tokens),
          llm.map((e) => e.data.completion_tokens),
          llm.map((e) => e.data.cached_tokens),
          llm.map((e) => e.data.reasoning_tokens),
          llm.map((e) => costOf(e)?.toString() ?? null),
          llm.map((e) => (e.data.cost_usd !== undefined ? 'provided' : costOf(e) === null ? 'unpriced' : 'computed')),
          llm.map((e) => e.data.latency_ms),
          llm.map((e) => e.data.cached),
          llm.map((e) => e.data.status),
          llm.map((e) => e.data.trace_id ?? traceIdOf(e.traceparent)),
          llm.map((e) => e.data.span_id ?? null),
          llm.map((e) => e.data.user_id ?? null),
          llm.map((e) => e.time),
        ],
      );
    }
    if (tools.length > 0) {
      await this.manager.query(
        `INSERT INTO tool_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, tool,
           mcp_server, cache_key_space, cache_hit, latency_ms, status, trace_id, time)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
           $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::int[], $14::text[], $15::text[],
           $16::timestamptz[])
         ON CONFLICT (source, event_id) DO NOTHING`,
        [
          tools.map((e) => e.source),
          tools.map((e) => e.id),
          tools.map((e) => e.data.tenant_id),
          tools.map((e) => e.data.project_id),
          tools.map((e) => e.data.run_id),
          tools.map((e) => e.data.phase),
          tools.map((e) => e.data.attempt),
          tools.map((e) => e.data.role),
          tools.map((e) => e.data.tool),
          tools.map((e) => e.data.mcp_server ?? null),
          tools.map((e) => e.data.cache_key_space ?? null),
          tools.map((e) => e.data.cache_hit ?? null),
          tools.map((e) => e.data.latency_ms),
          tools.map((e) => e.data.status),
          tools.map((e) => e.data.trace_id ?? traceIdOf(e.traceparent)),
          tools.map((e) => e.time),
        ],
      );
    }
  }

  /**
   * Merges run and stage deltas into the stored rows: sums add, earliest/latest times widen, and
   * ranked values replace the stored one only when they rank higher or, at equal rank, are later.
   * Rows are written in key order so concurrent batches (during a rebalance) cannot deadlock.
   */
  async applyProjection({ runs, stages }: Projection): Promise<void> {
    if (runs.length > 0) {
      const sorted = [...runs].sort((a, b) => compareKeys([a.tenantId, a.runId], [b.tenantId, b.runId]));
      await this.manager.query(
        `INSERT INTO runs AS r (tenant_id, run_id, project_id, playbook, status, status_rank, status_at, error,
           phase, role, phase_at, model, model_at, started_at, finished_at, tokens_in, tokens_out, cost_micros,
           external_micros, llm_calls, cached_calls, environment, caps, first_event_at, last_event_at)
         SELECT tenant_id, run_id, project_id, playbook, COALESCE(status, 'unknown'), COALESCE(status_rank, 0),
           status_at, error, phase, role, phase_at, model, model_at, started_at, finished_at, tokens_in,
           tokens_out, cost_micros, external_micros, llm_calls, cached_calls, environment, caps,
           first_event_at, last_event_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],
           $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[],
           $13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::bigint[], $17::bigint[],
           $18::bigint[], $19::bigint[], $20::int[], $21::int[], $22::jsonb[], $23::jsonb[],
           $24::timestamptz[], $25::timestamptz[])
           AS d(tenant_id, run_id, project_id, playbook, status, status_rank, status_at, error, phase, role,
             phase_at, model, model_at, started_at, finished_at, tokens_in, tokens_out, cost_micros,
             external_micros, llm_calls, cached_calls, environment, caps, first_event_at, last_event_at)
         ON CONFLICT (tenant_id, run_id) DO UPDATE SET
           playbook        = COALESCE(EXCLUDED.playbook, r.playbook),
           status          = CASE WHEN ${wins('status')} THEN EXCLUDED.status ELSE r.status END,
           error           = CASE WHEN ${wins('status')} THEN EXCLUDED.error ELSE r.error END,
           status_rank     = CASE WHEN ${wins('status')} THEN EXCLUDED.status_rank ELSE r.status_rank END,
           status_at       = CASE WHEN ${wins('status')} THEN EXCLUDED.status_at ELSE r.status_at END,
           phase           = CASE WHEN ${later('phase')} THEN EXCLUDED.phase ELSE r.phase END,
           role            = CASE WHEN ${later('phase')} THEN EXCLUDED.role ELSE r.role END,
           phase_at        = CASE WHEN ${later('phase')} THEN EXCLUDED.phase_at ELSE r.phase_at END,
           model           = CASE WHEN ${later('model')} THEN EXCLUDED.model ELSE r.model END,
           model_at        = CASE WHEN ${later('model')} THEN EXCLUDED.model_at ELSE r.model_at END,
           started_at      = LEAST(r.started_at, EXCLUDED.started_at),
           finished_at     = GREATEST(r.finished_at, EXCLUDED.finished_at),
           tokens_in       = r.tokens_in + EXCLUDED.tokens_in,
           tokens_out      = r.tokens_out + EXCLUDED.tokens_out,
           cost_micros     = r.cost_micros + EXCLUDED.cost_micros,
           external_micros = r.external_micros + EXCLUDED.external_micros,
           llm_calls       = r.llm_calls + EXCLUDED.llm_calls,
           cached_calls    = r.cached_calls + EXCLUDED.cached_calls,
           environment     = COALESCE(EXCLUDED.environment, r.environment),
           caps            = COALESCE(EXCLUDED.caps, r.caps),
           first_event_at  = LEAST(r.first_event_at, EXCLUDED.first_event_at),
           last_event_at   = GREATEST(r.last_event_at, EXCLUDED.last_event_at),
           updated_at      = now()`,
        [
          sorted.map((r) => r.tenantId),
          sorted.map((r) => r.runId),
          sorted.map((r) => r.projectId),
          sorted.map((r) => r.playbook),
          sorted.map((r) => r.status?.value.status ?? null),
          sorted.map((r) => r.status?.rank ?? null),
          sorted.map((r) => at(r.status)),
          sorted.map((r) => r.status?.value.error ?? null),
          sorted.map((r) => r.phase?.value.phase ?? null),
          sorted.map((r) => r.phase?.value.role ?? null),
          sorted.map((r) => at(r.phase)),
          sorted.map((r) => r.model?.value ?? null),
          sorted.map((r) => at(r.model)),
          sorted.map((r) => r.startedAt?.toISOString() ?? null),
          sorted.map((r) => r.finishedAt?.toISOString() ?? null),
          sorted.map((r) => r.tokensIn.toString()),
          sorted.map((r) => r.tokensOut.toString()),
          sorted.map((r) => r.costMicros.toString()),
          sorted.map((r) => r.externalMicros.toString()),
          sorted.map((r) => r.llmCalls),
          sorted.map((r) => r.cachedCalls),
          sorted.map((r) => (r.environment == null ? null : JSON.stringify(r.environment))),
          sorted.map((r) => (r.caps == null ? null : JSON.stringify(r.caps))),
          sorted.map((r) => r.firstEventAt.toISOString()),
          sorted.map((r) => r.lastEventAt.toISOString()),
        ],
      );
    }
    if (stages.length > 0) {
      const sorted = [...stages].sort((a, b) =>
        compareKeys([a.tenantId, a.runId, a.phase, a.attempt], [b.tenantId, b.runId, b.phase, b.attempt]),
      );
      await this.manager.query(
        `INSERT INTO stages AS s (tenant_id, run_id, phase, attempt, role, status, status_rank, status_at,
           started_at, finished_at, trace_id, prompt_tokens, completion_tokens, cached_tokens, cost_micros, llm_calls)
         SELECT tenant_id, run_id, phase, attempt, role, COALESCE(status, 'pending'), COALESCE(status_rank, 0),
           status_at, started_at, finished_at, trace_id, prompt_tokens, completion_tokens, cached_tokens,
           cost_micros, llm_calls
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::smallint[],
           $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::bigint[], $13::bigint[],
           $14::bigint[], $15::bigint[], $16::int[])
           AS d(tenant_id, run_id, phase, attempt, role, status, status_rank, status_at, started_at, finished_at,
             trace_id, prompt_tokens, completion_tokens, cached_tokens, cost_micros, llm_calls)
         ON CONFLICT (tenant_id, run_id, phase, attempt) DO UPDATE SET
           status            = CASE WHEN ${wins('status', 's')} THEN EXCLUDED.status ELSE s.status END,
           status_rank       = CASE WHEN ${wins('status', 's')} THEN EXCLUDED.status_rank ELSE s.status_rank END,
           status_at         = CASE WHEN ${wins('status', 's')} THEN EXCLUDED.status_at ELSE s.status_at END,
           started_at        = LEAST(s.started_at, EXCLUDED.started_at),
           finished_at       = GREATEST(s.finished_at, EXCLUDED.finished_at),
           trace_id          = COALESCE(s.trace_id, EXCLUDED.trace_id),
           prompt_tokens     = s.prompt_tokens + EXCLUDED.prompt_tokens,
           completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
           cached_tokens     = s.cached_tokens + EXCLUDED.cached_tokens,
           cost_micros       = s.cost_micros + EXCLUDED.cost_micros,
           llm_calls         = s.llm_calls + EXCLUDED.llm_calls,
           updated_at        = now()`,
        [
          sorted.map((s) => s.tenantId),
          sorted.map((s) => s.runId),
          sorted.map((s) => s.phase),
          sorted.map((s) => s.attempt),
          sorted.map((s) => s.role),
          sorted.map((s) => s.status?.value ?? null),
          sorted.map((s) => s.status?.rank ?? null),
          sorted.map((s) => at(s.status)),
          sorted.map((s) => s.startedAt?.toISOString() ?? null),
          sorted.map((s) => s.finishedAt?.toISOString() ?? null),
          sorted.map((s) => s.traceId),
          sorted.map((s) => s.promptTokens.toString()),
          sorted.map((s) => s.completionTokens.toString()),
          sorted.map((s) => s.cachedTokens.toString()),
          sorted.map((s) => s.costMicros.toString()),
          sorted.map((s) => s.llmCalls),
        ],
      );
    }
  }

  private async ensureTenantsAndProjects(events: AgentEvent[]): Promise<void> {
    const tenants = [...new Set(events.map((e) => e.data.tenant_id))].sort();
    const projects = new Map<string, [string, string]>();
    for (const e of events) {
      if ('project_id' in e.data)
        projects.set(`${e.data.tenant_id}\u0000${e.data.project_id}`, [e.data.tenant_id, e.data.project_id]);
    }
    const sortedProjects = [...projects.values()].sort((a, b) => compareKeys(a, b));
    await this.manager.query(
      `INSERT INTO tenants (tenant_id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`,
      [tenants],
    );
    if (sortedProjects.length > 0) {
      await this.manager.query(
        `INSERT INTO projects (tenant_id, project_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
        [sortedProjects.map(([t]) => t), sortedProjects.map(([, p]) => p)],
      );
    }
  }
}

/** SQL condition: the incoming ranked value beats the stored one (higher rank, or same rank and later). */
function wins(column: string, alias = 'r'): string {
  return `(EXCLUDED.${column}_at IS NOT NULL AND (${alias}.${column}_at IS NULL
    OR (EXCLUDED.${column}_rank, EXCLUDED.${column}_at) > (${alias}.${column}_rank, ${alias}.${column}_at)))`;
}

/** SQL condition: the incoming time-ordered value is later than the stored one. */
function later(column: string, alias = 'r'): string {
  return `(EXCLUDED.${column}_at IS NOT NULL AND (${alias}.${column}_at IS NULL OR EXCLUDED.${column}_at > ${alias}.${column}_at))`;
}

function at(ranked: Ranked<unknown> | null): string | null {
  return ranked ? ranked.at.toISOString() : null;
}

function compareKeys(a: ReadonlyArray<string | number>, b: ReadonlyArray<string | number>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}
