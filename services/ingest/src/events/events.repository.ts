import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import { parseUsd, traceIdOf, type Projection, type Ranked, type UsageDelta } from '@agentmeter/domain';

type LlmCall = AgentEvent & { type: 'llm_call' };
type ToolCall = AgentEvent & { type: 'tool_call' };
type Of<T extends AgentEvent['type']> = AgentEvent & { type: T };

/** The price decided for an llm_call: micros and where they came from. */
export interface CallCost {
  micros: bigint | null;
  source: 'provided' | 'computed' | 'unpriced';
}

/** Writes of the ingest path. Every statement is a set-based upsert over unnest()ed arrays. */
@Injectable()
export class EventsRepository {
  /** Tenants and "tenant\0project" keys known to exist. */
  private readonly known = new Set<string>();

  constructor(private readonly dataSource: DataSource) {}

  /**
   * Creates the tenants and projects a batch mentions, committed on their own before the batch
   * transaction: inside it, concurrent partitions inserting the same new tenant would wait for each
   * other's commit. Known keys are cached, so this is usually a no-op without a round trip.
   */
  async ensureTenantsAndProjects(events: AgentEvent[]): Promise<void> {
    const tenants = [...new Set(events.map((e) => e.data.tenant_id))].filter((t) => !this.known.has(t)).sort();
    const projects = new Map<string, [string, string]>();
    for (const e of events) {
      if (!('project_id' in e.data)) continue;
      const key = `${e.data.tenant_id}\u0000${e.data.project_id}`;
      if (!this.known.has(key)) projects.set(key, [e.data.tenant_id, e.data.project_id]);
    }
    if (tenants.length > 0) {
      await this.dataSource.query(
        `INSERT INTO tenants (tenant_id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`,
        [tenants],
      );
    }
    const sortedProjects = [...projects.values()].sort((a, b) => compareKeys(a, b));
    if (sortedProjects.length > 0) {
      await this.dataSource.query(
        `INSERT INTO projects (tenant_id, project_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
        [sortedProjects.map(([t]) => t), sortedProjects.map(([, p]) => p)],
      );
    }
    for (const tenant of tenants) this.known.add(tenant);
    for (const key of projects.keys()) this.known.add(key);
  }

  transaction<T>(work: (tx: EventsWriter) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(new EventsWriter(manager)));
  }
}

export class EventsWriter {
  constructor(private readonly manager: EntityManager) {}

  /** Appends events to the log; returns the keys that were new (the rest are duplicates). */
  async insertEvents(events: AgentEvent[]): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    const rows: Array<{ source: string; event_id: string }> = await this.manager.query(
      `INSERT INTO events (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::timestamptz[], $7::jsonb[], $8::text[])
       ON CONFLICT (source, event_id, time) DO NOTHING
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

  async insertCalls(events: AgentEvent[], costOf: (event: LlmCall) => CallCost): Promise<void> {
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
         ON CONFLICT (source, event_id, time) DO NOTHING`,
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
          llm.map((e) => costOf(e).micros?.toString() ?? null),
          llm.map((e) => costOf(e).source),
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
         ON CONFLICT (source, event_id, time) DO NOTHING`,
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
    const charges = events.filter((e): e is Of<'external_charge'> => e.type === 'external_charge');
    if (charges.length > 0) {
      await this.manager.query(
        `INSERT INTO external_charges (source, event_id, tenant_id, project_id, run_id, phase, vendor, amount_micros,
           description, time)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
           $8::bigint[], $9::text[], $10::timestamptz[])
         ON CONFLICT DO NOTHING`,
        [
          charges.map((e) => e.source),
          charges.map((e) => e.id),
          charges.map((e) => e.data.tenant_id),
          charges.map((e) => e.data.project_id),
          charges.map((e) => e.data.run_id),
          charges.map((e) => e.data.phase ?? null),
          charges.map((e) => e.data.vendor),
          charges.map((e) => parseUsd(e.data.amount_usd).toString()),
          charges.map((e) => e.data.description ?? null),
          charges.map((e) => e.time),
        ],
      );
    }
  }

  /** Failures (seed 001): one row per run, phase, reason and artifact, counting repeats. */
  async applyFailures(events: AgentEvent[]): Promise<void> {
    const rows = new Map<
      string,
      {
        tenant: string;
        run: string;
        phase: string;
        role: string | null;
        reason: string;
        artifact: string;
        first: string;
        last: string;
        count: number;
      }
    >();
    for (const e of events) {
      if (e.type !== 'validation_failed' && e.type !== 'run_failed') continue;
      const reason = e.type === 'validation_failed' ? e.data.reason : e.data.error;
      const phase = e.data.phase ?? '';
      const artifact =
        e.type === 'validation_failed' && e.data.artifact_path
          ? `${e.data.artifact_path}@${e.data.artifact_version ?? ''}`
          : '';
      const key = [e.data.tenant_id, e.data.run_id, phase, reason, artifact].join('\u0000');
      const row = rows.get(key);
      if (row) {
        row.count += 1;
        if (e.time < row.first) row.first = e.time;
        if (e.time > row.last) row.last = e.time;
      } else {
        rows.set(key, {
          tenant: e.data.tenant_id,
          run: e.data.run_id,
          phase,
          role: e.data.role ?? null,
          reason,
          artifact,
          first: e.time,
          last: e.time,
          count: 1,
        });
      }
    }
    if (rows.size === 0) return;
    const sorted = [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
    await this.manager.query(
      `INSERT INTO failures AS f (tenant_id, run_id, phase, role, reason, artifact_ref, first_seen, last_seen, count)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::timestamptz[], $8::timestamptz[], $9::int[])
       ON CONFLICT (tenant_id, run_id, phase, reason, artifact_ref) DO UPDATE SET
         role       = COALESCE(f.role, EXCLUDED.role),
         first_seen = LEAST(f.first_seen, EXCLUDED.first_seen),
         last_seen  = GREATEST(f.last_seen, EXCLUDED.last_seen),
         count      = f.count + EXCLUDED.count`,
      [
        sorted.map((r) => r.tenant),
        sorted.map((r) => r.run),
        sorted.map((r) => r.phase),
        sorted.map((r) => r.role),
        sorted.map((r) => r.reason),
        sorted.map((r) => r.artifact),
        sorted.map((r) => r.first),
        sorted.map((r) => r.last),
        sorted.map((r) => r.count),
      ],
    );
  }

  /** Human interventions (user_override) and impersonation sessions. */
  async applyAudit(events: AgentEvent[]): Promise<void> {
    const overrides = events.filter((e): e is Of<'user_override'> => e.type === 'user_override');
    if (overrides.length > 0) {
      await this.manager.query(
        `INSERT INTO interventions (source, event_id, tenant_id, run_id, user_id, action, reason, phase, time)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
           $8::text[], $9::timestamptz[])
         ON CONFLICT DO NOTHING`,
        [
          overrides.map((e) => e.source),
          overrides.map((e) => e.id),
          overrides.map((e) => e.data.tenant_id),
          overrides.map((e) => e.data.run_id),
          overrides.map((e) => e.data.user_id),
          overrides.map((e) => e.data.action),
          overrides.map((e) => e.data.reason),
          overrides.map((e) => e.data.phase ?? null),
          overrides.map((e) => e.time),
        ],
      );
    }
    const sessions = events
      .filter(
        (e): e is Of<'impersonation_started'> | Of<'impersonation_ended'> =>
          e.type === 'impersonation_started' || e.type === 'impersonation_ended',
      )
      .sort((a, b) => compareKeys([a.data.tenant_id, a.data.session_id], [b.data.tenant_id, b.data.session_id]));
    for (const e of sessions) {
      const started = e.type === 'impersonation_started';
      await this.manager.query(
        `INSERT INTO impersonation_sessions AS s (tenant_id, session_id, actor_id, target_user_id, reason, started_at, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, session_id) DO UPDATE SET
           target_user_id = COALESCE(s.target_user_id, EXCLUDED.target_user_id),
           reason         = COALESCE(s.reason, EXCLUDED.reason),
           started_at     = LEAST(s.started_at, EXCLUDED.started_at),
           ended_at       = GREATEST(s.ended_at, EXCLUDED.ended_at)`,
        [
          e.data.tenant_id,
          e.data.session_id,
          e.data.actor_id,
          started ? e.data.target_user_id : null,
          started ? (e.data.reason ?? null) : null,
          started ? e.time : null,
          started ? null : e.time,
        ],
      );
    }
  }

  /** Adds usage deltas to the daily rollups, bucket by bucket for the latency histogram. */
  async applyUsage(deltas: UsageDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.manager.query(
      `INSERT INTO usage_daily AS u (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id,
         call_count, success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens,
         cached_tokens, cost_micros, unpriced_calls)
       SELECT day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id, call_count,
         success_count, failure_count, total_latency_ms, string_to_array(latency_buckets, ',')::bigint[],
         input_tokens, output_tokens, cached_tokens, cost_micros, unpriced_calls
       FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
         $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[],
         $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[])
         AS d(day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id, call_count,
           success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens,
           cached_tokens, cost_micros, unpriced_calls)
       ON CONFLICT (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id) DO UPDATE SET
         call_count       = u.call_count + EXCLUDED.call_count,
         success_count    = u.success_count + EXCLUDED.success_count,
         failure_count    = u.failure_count + EXCLUDED.failure_count,
         total_latency_ms = u.total_latency_ms + EXCLUDED.total_latency_ms,
         latency_buckets  = bigint_array_add(u.latency_buckets, EXCLUDED.latency_buckets),
         input_tokens     = u.input_tokens + EXCLUDED.input_tokens,
         output_tokens    = u.output_tokens + EXCLUDED.output_tokens,
         cached_tokens    = u.cached_tokens + EXCLUDED.cached_tokens,
         cost_micros      = u.cost_micros + EXCLUDED.cost_micros,
         unpriced_calls   = u.unpriced_calls + EXCLUDED.unpriced_calls`,
      [
        deltas.map((d) => d.day),
        deltas.map((d) => d.tenantId),
        deltas.map((d) => d.projectId),
        deltas.map((d) => d.role),
        deltas.map((d) => d.kind),
        deltas.map((d) => d.model),
        deltas.map((d) => d.provider),
        deltas.map((d) => d.tool),
        deltas.map((d) => d.mcpServer),
        deltas.map((d) => d.userId),
        deltas.map((d) => d.calls),
        deltas.map((d) => d.successes),
        deltas.map((d) => d.failures),
        deltas.map((d) => d.totalLatencyMs),
        deltas.map((d) => d.latencyBuckets.join(',')),
        deltas.map((d) => d.inputTokens.toString()),
        deltas.map((d) => d.outputTokens.toString()),
        deltas.map((d) => d.cachedTokens.toString()),
        deltas.map((d) => d.costMicros.toString()),
        deltas.map((d) => d.unpricedCalls),
      ],
    );
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
           external_micros, llm_calls, cached_calls, environment, caps, first_event_at, last_event_at, unpriced_calls)
         SELECT tenant_id, run_id, project_id, playbook, COALESCE(status, 'unknown'), COALESCE(status_rank, 0),
           status_at, error, phase, role, phase_at, model, model_at, started_at, finished_at, tokens_in,
           tokens_out, cost_micros, external_micros, llm_calls, cached_calls, environment, caps,
           first_event_at, last_event_at, unpriced_calls
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],
           $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[],
           $13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::bigint[], $17::bigint[],
           $18::bigint[], $19::bigint[], $20::int[], $21::int[], $22::jsonb[], $23::jsonb[],
           $24::timestamptz[], $25::timestamptz[], $26::int[])
           AS d(tenant_id, run_id, project_id, playbook, status, status_rank, status_at, error, phase, role,
             phase_at, model, model_at, started_at, finished_at, tokens_in, tokens_out, cost_micros,
             external_micros, llm_calls, cached_calls, environment, caps, first_event_at, last_event_at,
             unpriced_calls)
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
           unpriced_calls  = r.unpriced_calls + EXCLUDED.unpriced_calls,
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
          sorted.map((r) => r.unpricedCalls),
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
