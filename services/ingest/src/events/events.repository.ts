import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import {
  callUser,
  LATENCY_BUCKETS_MS,
  LATENCY_SKETCH_KEY,
  parseUsd,
  traceIdOf,
  type ModelUsageDelta,
  type Projection,
  type Ranked,
  type RunUser,
  type UsageDelta,
} from '@agentmeter/domain';

type LlmCall = AgentEvent & { type: 'llm_call' };
type ToolCall = AgentEvent & { type: 'tool_call' };
type Of<T extends AgentEvent['type']> = AgentEvent & { type: T };

/** The price decided for an llm_call: micros and where they came from. */
export interface CallCost {
  micros: bigint | null;
  source: 'provided' | 'computed' | 'unpriced';
}

/** What a batch writes: its new events and everything projected from them. */
export interface BatchWrite {
  events: AgentEvent[];
  costOf: (event: LlmCall) => CallCost;
  projection: Projection;
  /** The user of a call's run when the call names none (libs/domain `callUser`). */
  runUser: RunUser;
  usage: UsageDelta[];
  /** `usage` summed per day, tenant, model and provider (usage_model_daily), in key order. */
  modelUsage: ModelUsageDelta[];
  /** The span tree writes of the batch's LLM calls that name their ancestors (libs/domain `span-tree.ts`). */
  spans: SpanWrite;
  /** Redacted texts of the batch's calls whose tenant enabled the prompt audit (the events carry none). */
  prompts: ReadonlyMap<AgentEvent, PromptText>;
  /**
   * "tenant\0run" of the runs with LLM calls stored without a user (`runsWithCallsWithoutUser`): only their
   * run_started carries its user onto stored calls (`carryLateUsers`).
   */
  lateUserRuns: ReadonlySet<string>;
}

/** The texts of one llm_call kept for the prompt audit (docs/events.md "Prompt audit"). */
export interface PromptText {
  prompt: string | null;
  completion: string | null;
}

/** A node of llm_call_spans, as written and read. */
export interface SpanRow {
  tenantId: string;
  runId: string;
  traceId: string;
  spanId: string;
  ancestors: string[];
  counted: boolean;
}

export interface SpanWrite {
  /** Nodes of the batch's new calls. */
  nodes: Array<SpanRow & { event: LlmCall }>;
  /** LLM calls of the batch stored in the event log only: aggregates and re-exports of a stored span. */
  uncounted: ReadonlySet<AgentEvent>;
  /** Stored counted nodes that turned out to be aggregates: their calls come off every projection. */
  retract: SpanRow[];
  /** The negation of retracted calls' contributions, built from their stored rows. */
  negate: (calls: RetractedCall[]) => Negation;
}

/** A retracted call as stored: its llm_call (as projected) and the price it was counted with. */
export interface RetractedCall {
  event: LlmCall;
  costMicros: bigint | null;
}

export interface Negation {
  projection: Projection;
  usage: UsageDelta[];
  modelUsage: ModelUsageDelta[];
}

/** SQLSTATE of a unique violation: an event of a batch written as new was stored already. */
export const UNIQUE_VIOLATION = '23505';

/**
 * Writes of the ingest path. Each statement reads its rows from one JSON document, as the table's row
 * type (`json_populate_recordset(NULL::table, $1)`): one parameter serialised by one JSON.stringify,
 * where unnest() needed an array literal per column that node-postgres builds and escapes element by
 * element (the largest JavaScript cost of ingest before; see docs/benchmarks.md, 2026-11-25 notes).
 */
@Injectable()
export class EventsRepository {
  /** Tenants and "tenant\0project" keys known to exist. */
  private readonly known = new Set<string>();

  constructor(private readonly dataSource: DataSource) {}

  /** Which of these tenants enabled the prompt audit (read per batch that carries texts: never stale). */
  async promptAuditTenants(tenantIds: string[]): Promise<Set<string>> {
    const rows: Array<{ tenant_id: string }> = await this.dataSource.query(
      `SELECT tenant_id FROM tenants WHERE tenant_id = ANY($1::text[]) AND prompt_audit`,
      [tenantIds],
    );
    return new Set(rows.map((row) => row.tenant_id));
  }

  /**
   * Creates the tenants and projects a batch mentions, committed on their own before the batch
   * transaction: inside it, concurrent partitions inserting the same new tenant would wait for each
   * other's commit. Known keys are cached, so this is usually a no-op without a round trip.
   */
  async ensureTenantsAndProjects(events: AgentEvent[]): Promise<void> {
    const tenants = new Set<string>();
    const projects = new Map<string, [string, string]>();
    let lastTenant: string | undefined;
    let lastProject: string | undefined;
    for (const e of events) {
      const tenant = e.data.tenant_id;
      const project = 'project_id' in e.data ? e.data.project_id : undefined;
      if (tenant === lastTenant && project === lastProject) continue; // consecutive events of a run
      lastTenant = tenant;
      lastProject = project;
      if (!this.known.has(tenant)) tenants.add(tenant);
      if (project === undefined) continue;
      const key = `${tenant}\u0000${project}`;
      if (!this.known.has(key)) projects.set(key, [tenant, project]);
    }
    if (tenants.size > 0) {
      await this.dataSource.query(
        `INSERT INTO tenants (tenant_id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`,
        [[...tenants].sort()],
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

  /**
   * Claims each run id for the tenant of its first event, committed on its own like tenants (a claim
   * outlives a failed batch: the redelivery finds the same owner). Returns the owner of every run id
   * given, which for a run id already claimed may be another tenant.
   */
  async claimRuns(claims: Map<string, string>): Promise<Map<string, string>> {
    const owners = new Map<string, string>();
    if (claims.size === 0) return owners;
    const runIds = [...claims.keys()].sort();
    const rows: Array<{ run_id: string; tenant_id: string }> = await this.dataSource.query(
      `WITH claimed AS (
         INSERT INTO run_owners (run_id, tenant_id) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (run_id) DO NOTHING RETURNING run_id, tenant_id)
       SELECT run_id, tenant_id FROM claimed
       UNION ALL
       SELECT run_id, tenant_id FROM run_owners WHERE run_id = ANY($1::text[])`,
      [runIds, runIds.map((runId) => claims.get(runId)!)],
    );
    for (const row of rows) owners.set(row.run_id, row.tenant_id);
    // A claim committed by another process after this statement's snapshot: read it now.
    const missing = runIds.filter((runId) => !owners.has(runId));
    if (missing.length > 0) {
      const late: Array<{ run_id: string; tenant_id: string }> = await this.dataSource.query(
        `SELECT run_id, tenant_id FROM run_owners WHERE run_id = ANY($1::text[])`,
        [missing],
      );
      for (const row of late) owners.set(row.run_id, row.tenant_id);
    }
    return owners;
  }

  /**
   * The users of runs (runs.user_id, from their run_started), for a batch's calls whose run_started came in
   * an earlier batch. One indexed read by primary key; runs without a user are left out.
   */
  async runUsers(runs: ReadonlyArray<[tenantId: string, runId: string]>): Promise<Map<string, string>> {
    const users = new Map<string, string>();
    if (runs.length === 0) return users;
    const rows: Array<{ tenant_id: string; run_id: string; user_id: string }> = await this.dataSource.query(
      `SELECT r.tenant_id, r.run_id, r.user_id
         FROM runs r JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, run_id)
           ON r.tenant_id = k.tenant_id AND r.run_id = k.run_id
        WHERE r.user_id IS NOT NULL`,
      [runs.map(([t]) => t), runs.map(([, r]) => r)],
    );
    for (const row of rows) users.set(`${row.tenant_id}\u0000${row.run_id}`, row.user_id);
    return users;
  }

  /**
   * Of the given runs, those with LLM calls stored without a user: a run_started naming a user came after
   * them, and only such a run's calls need carrying (`carryLateUsers`, a statement of its own after the
   * batch's, so a batch without one is a single statement). One indexed read (llm_calls_run). A run's
   * events come through one partition, one batch at a time, so what this reads is what the batch's
   * transaction sees.
   */
  async runsWithCallsWithoutUser(runs: ReadonlyArray<[tenantId: string, runId: string]>): Promise<Set<string>> {
    if (runs.length === 0) return new Set();
    const rows: Array<{ tenant_id: string; run_id: string }> = await this.dataSource.query(
      `SELECT k.tenant_id, k.run_id FROM unnest($1::text[], $2::text[]) AS k(tenant_id, run_id)
        WHERE EXISTS (SELECT 1 FROM llm_calls c
                       WHERE c.tenant_id = k.tenant_id AND c.run_id = k.run_id AND c.user_id IS NULL)`,
      [runs.map(([t]) => t), runs.map(([, r]) => r)],
    );
    return new Set(rows.map((row) => `${row.tenant_id}\u0000${row.run_id}`));
  }

  /** The stored span tree nodes of the given (tenant, run, trace) groups. */
  async spanNodes(groups: ReadonlyArray<[tenantId: string, runId: string, traceId: string]>): Promise<SpanRow[]> {
    if (groups.length === 0) return [];
    const rows: Array<{
      tenant_id: string;
      run_id: string;
      trace_id: string;
      span_id: string;
      ancestor_span_ids: string[];
      counted: boolean;
    }> = await this.dataSource.query(
      `SELECT s.tenant_id, s.run_id, s.trace_id, s.span_id, s.ancestor_span_ids, s.counted
         FROM llm_call_spans s JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(tenant_id, run_id, trace_id)
           ON s.tenant_id = k.tenant_id AND s.run_id = k.run_id AND s.trace_id = k.trace_id`,
      [groups.map(([t]) => t), groups.map(([, r]) => r), groups.map(([, , trace]) => trace)],
    );
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      runId: row.run_id,
      traceId: row.trace_id,
      spanId: row.span_id,
      ancestors: row.ancestor_span_ids,
      counted: row.counted,
    }));
  }

  /**
   * The fast path, for a batch none of whose events is stored yet (the usual case): one transaction of
   * plain INSERTs, which skip the per-row conflict check of ON CONFLICT. If an event is stored after all
   * (a redelivery), its INSERT fails with UNIQUE_VIOLATION, the transaction rolls back and nothing of the
   * batch is written; the caller then uses `storeDeduplicated`. All statements are built before BEGIN,
   * so the transaction is only as long as PostgreSQL's work.
   *
   * An event is stored in one of four tables (docs/decisions.md "Call facts stored once"), and a plain
   * INSERT sees only its own: an LLM call that names its span may be in the log (uncounted) or in
   * llm_calls, and a redelivery may be classified otherwise than the first delivery (a stored span comes
   * back as a 'duplicate'). For those calls only, one indexed read looks in both before writing.
   */
  async storeNew(batch: BatchWrite): Promise<void> {
    if (batch.events.length === 0) return;
    if (await this.spanCallsStored(batch.spans)) {
      throw Object.assign(new Error('an LLM call of the batch is stored already'), { code: UNIQUE_VIOLATION });
    }
    const facts = factStatements(batch, 'new');
    const projections = projectionStatements(batch, 'new');
    // Statements reading one JSON document join the WITH; impersonation sessions, written one event at a
    // time (a session's start and end may share a batch and a row), follow in the same transaction.
    const combined = asOneStatement(facts[0]!, [
      ...facts.slice(1),
      ...projections.filter((statement) => statement.params.length === 1 && !statement.alone),
    ]);
    const others = projections.filter((statement) => statement.params.length !== 1 || statement.alone);
    if (others.length === 0 && batch.spans.retract.length === 0) {
      await this.dataSource.query(combined.sql, combined.params); // one statement: its own transaction
      return;
    }
    await this.dataSource.transaction(async (manager) => {
      for (const { sql, params } of [combined, ...others]) await manager.query(sql, params);
      await retractCalls(manager, batch.spans);
    });
  }

  /**
   * Whether an LLM call of the batch that names its span is stored already, in the log or in llm_calls. A
   * run's events come through one partition, one batch at a time, so no other batch writes them meanwhile.
   */
  private async spanCallsStored(spans: SpanWrite): Promise<boolean> {
    const calls = new Set<AgentEvent>(spans.uncounted);
    for (const node of spans.nodes) calls.add(node.event);
    if (calls.size === 0) return false;
    const keys = [...calls].map((e) => ({ source: e.source, event_id: e.id, time: e.time }));
    const rows: unknown[] = await this.dataSource.query(
      `SELECT 1 FROM json_to_recordset($1::json) AS k(source text, event_id text, time timestamptz)
        WHERE EXISTS (SELECT 1 FROM llm_calls c WHERE c.source = k.source AND c.event_id = k.event_id AND c.time = k.time)
           OR EXISTS (SELECT 1 FROM event_log e WHERE e.source = k.source AND e.event_id = k.event_id AND e.time = k.time)
        LIMIT 1`,
      [JSON.stringify(keys)],
    );
    return rows.length > 0;
  }

  /**
   * Stores the events of a batch that are not stored yet and projects only those, in one transaction;
   * returns them. The four inserts of the events (log and call tables) run as one statement, each skipping
   * the keys its table holds (and the log and llm_calls those the other holds), and the keys they return
   * are the new events. `project` builds the writes of the events given, the whole batch first, then the new.
   */
  async storeDeduplicated(events: AgentEvent[], project: (fresh: AgentEvent[]) => BatchWrite): Promise<AgentEvent[]> {
    if (events.length === 0) return [];
    const insert = returningKeys(factStatements(project(events), 'deduplicated'));
    return this.dataSource.transaction(async (manager: EntityManager) => {
      const rows: Array<{ source: string; event_id: string }> = await manager.query(insert.sql, insert.params);
      const stored = new Set(rows.map((row) => eventKey({ source: row.source, id: row.event_id })));
      const fresh = events.filter((event) => stored.has(eventKey(event)));
      const batch = project(fresh);
      for (const { sql, params } of projectionStatements(batch, 'deduplicated')) {
        await manager.query(sql, params);
      }
      await retractCalls(manager, batch.spans);
      return fresh;
    });
  }
}

/**
 * The writes of a batch as one statement: `main` (the first insert of the events) and the rest as
 * data-modifying WITH clauses, each reading its own JSON document ($1 of each is renumbered). One round
 * trip: a transaction of several statements sat idle between them whenever the event loop was busy with
 * another partition's batch, holding its row locks on runs and usage rollups meanwhile (docs/benchmarks.md).
 *
 * PostgreSQL runs the main query first, so a stored event fails the statement before any projection
 * work, then the unreferenced WITH clauses to completion, the last listed first (ExecPostprocessPlan
 * over es_auxmodifytables, built with lcons). The clauses are listed in reverse so that they run in
 * `projectionStatements` order: the rows shared with other batches (runs, stages, then the usage
 * rollups, usage_daily before usage_model_daily like the re-pricing and retention jobs) are locked last
 * and held shortest. If a later PostgreSQL ran them in another order, only lock hold times would change:
 * concurrent batches run the same statement shape and still lock alike.
 */
function asOneStatement(main: Statement, clauses: Statement[]): Statement {
  if (clauses.length === 0) return main;
  const listed = [...clauses].reverse();
  const sql = listed.map((clause, i) => `w${i} AS (${clause.sql.replace(/\$1(?!\d)/g, `$${i + 2}`)})`);
  return {
    sql: `WITH ${sql.join(',\n')}\n${main.sql}`,
    params: [main.params[0], ...listed.map((clause) => clause.params[0])],
  };
}

/** A statement and its parameters, built before the transaction that runs it. */
interface Statement {
  sql: string;
  params: unknown[];
  /** Runs as a statement of its own after the others (it must see their rows), never as a WITH clause. */
  alone?: true;
}

/**
 * 'new': the rows cannot exist yet, so raw rows are plain INSERTs (a row that does exist is a unique
 * violation that fails the batch). 'deduplicated': raw rows that exist are skipped.
 */
type Mode = 'new' | 'deduplicated';

/**
 * `INSERT INTO table (columns) SELECT columns FROM` the rows `r` of the JSON document $1 (`where` filters
 * them). `json` is parsed row by row as it is read, cheaper for PostgreSQL than `jsonb`, which builds and
 * sorts every object first; the payloads are `json` columns too, copied out of the document as text.
 */
function insertFromJson(table: string, columns: string, where = ''): string {
  return `INSERT INTO ${table} (${columns})
    SELECT ${columns} FROM json_populate_recordset(NULL::${table}, $1::json) r ${where}`;
}

/** SQL condition on rows `r`: the event's key is not in `table` (the log and llm_calls, each for the other). */
function notIn(table: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${table} x WHERE x.source = r.source AND x.event_id = r.event_id AND x.time = r.time)`;
}

/** 'new': a plain INSERT. 'deduplicated': rows whose key is stored are skipped, the others' keys returned. */
function factInsert(table: string, columns: string, mode: Mode, where = ''): string {
  const sql = insertFromJson(table, columns, where);
  return mode === 'new' ? sql : `${sql} ON CONFLICT (source, event_id, time) DO NOTHING RETURNING source, event_id`;
}

/**
 * The inserts of the batch's events, each in one table (docs/decisions.md "Call facts stored once"): counted
 * LLM calls, tool calls and external charges in their call tables with their payload, every other event
 * (uncounted LLM calls included) in the event log. The `events` view reads the four.
 */
function factStatements(batch: BatchWrite, mode: Mode): Statement[] {
  const log: AgentEvent[] = [];
  const llm: LlmCall[] = [];
  const tools: ToolCall[] = [];
  const charges: Array<Of<'external_charge'>> = [];
  for (const e of batch.events) {
    if (e.type === 'llm_call' && !batch.spans.uncounted.has(e)) llm.push(e);
    else if (e.type === 'tool_call') tools.push(e);
    else if (e.type === 'external_charge') charges.push(e);
    else log.push(e);
  }
  return [
    insertLog(log, mode),
    insertLlmCalls(llm, batch.costOf, batch.runUser, mode),
    insertToolCalls(tools, mode),
    insertCharges(charges, mode),
  ].filter((statement): statement is Statement => statement !== null);
}

/**
 * The inserts as one statement returning the keys of the rows they wrote (each reads its own JSON
 * document; $1 of each is renumbered). A run's events come through one partition, one batch at a time,
 * so no other transaction writes these keys meanwhile and the skips see every stored copy.
 */
function returningKeys(inserts: Statement[]): Statement {
  const clauses = inserts.map((insert, i) => `k${i} AS (${insert.sql.replace(/\$1(?!\d)/g, `$${i + 1}`)})`);
  const union = inserts.map((_, i) => `SELECT source, event_id FROM k${i}`).join(' UNION ALL ');
  return { sql: `WITH ${clauses.join(',\n')}\n${union}`, params: inserts.map((insert) => insert.params[0]) };
}

const EVENT_COLUMNS = 'source, event_id, tenant_id, run_id, type, time, payload, trace_id';

/** The trace id the event log keeps for an event: its traceparent's, else its data's. */
function logTraceId(e: AgentEvent): string | null {
  return traceIdOf(e.traceparent) ?? ('trace_id' in e.data ? (e.data.trace_id ?? null) : null);
}

/**
 * A call row's `log_trace_id`: the log's trace id where it differs from the call's own `trace_id` (which
 * takes the data's first), '' for none; absent (NULL) when they agree, the usual case.
 */
function logTraceIdOf(e: LlmCall | ToolCall, callTraceId: string | null): string | undefined {
  const log = logTraceId(e);
  return log === callTraceId ? undefined : (log ?? '');
}

/** Appends the events no call table holds to the log. */
function insertLog(events: AgentEvent[], mode: Mode): Statement | null {
  if (events.length === 0) return null;
  const rows = events.map((e) => ({
    source: e.source,
    event_id: e.id,
    tenant_id: e.data.tenant_id,
    run_id: 'run_id' in e.data ? e.data.run_id : null,
    type: e.type,
    time: e.time,
    payload: e.data,
    trace_id: logTraceId(e),
  }));
  // An uncounted LLM call may have been stored counted (llm_calls) by an earlier delivery.
  const where = mode === 'new' ? '' : `WHERE r.type <> 'llm_call' OR ${notIn('llm_calls')}`;
  return { sql: factInsert('event_log', EVENT_COLUMNS, mode, where), params: [JSON.stringify(rows)] };
}

/**
 * Every write of a batch after its events, in a fixed table order (concurrent batches lock alike;
 * usage_daily before usage_model_daily, as re-pricing and retention lock them).
 */
function projectionStatements(batch: BatchWrite, mode: Mode): Statement[] {
  return [
    insertPromptAudit(batch.events, batch.prompts, mode),
    insertSpanNodes(batch.spans.nodes),
    upsertFailures(batch.events),
    ...insertAudit(batch.events),
    // Rows other batches write too, last: locked for the shortest time.
    upsertRuns(batch.projection.runs),
    upsertStages(batch.projection.stages),
    addUsage(batch.usage),
    addModelUsage(batch.modelUsage),
    // After every insert and usage upsert of the batch (statements of their own, in the same transaction).
    ...carryLateUsers(batch.events, batch.lateUserRuns),
  ].filter((statement): statement is Statement => statement !== null);
}

const LLM_COLUMNS = `source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model, provider,
  prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros, cost_source, latency_ms, cached,
  status, trace_id, span_id, user_id, time, payload, log_trace_id`;

const PROMPT_AUDIT_COLUMNS = `source, event_id, time, tenant_id, project_id, run_id, phase, role, model, provider,
  prompt, completion`;

/** The prompt audit rows of the batch's calls that kept their texts (aggregates included: a text is per call). */
function insertPromptAudit(events: AgentEvent[], prompts: ReadonlyMap<AgentEvent, PromptText>, mode: Mode) {
  if (prompts.size === 0) return null;
  const rows = [];
  for (const e of events) {
    const text = prompts.get(e);
    if (!text || e.type !== 'llm_call') continue;
    const d = e.data;
    rows.push({
      source: e.source,
      event_id: e.id,
      time: e.time,
      tenant_id: d.tenant_id,
      project_id: d.project_id,
      run_id: d.run_id,
      phase: d.phase,
      role: d.role,
      model: d.model,
      provider: d.provider,
      prompt: text.prompt,
      completion: text.completion,
    });
  }
  if (rows.length === 0) return null;
  const sql = insertFromJson('prompt_audit', PROMPT_AUDIT_COLUMNS);
  return {
    sql: mode === 'new' ? sql : `${sql} ON CONFLICT (source, event_id, time) DO NOTHING`,
    params: [JSON.stringify(rows)],
  };
}

function insertLlmCalls(
  llm: LlmCall[],
  costOf: (event: LlmCall) => CallCost,
  runUser: RunUser,
  mode: Mode,
): Statement | null {
  if (llm.length === 0) return null;
  const rows = llm.map((e) => {
    const d = e.data;
    const cost = costOf(e);
    const traceId = d.trace_id ?? traceIdOf(e.traceparent);
    // Absent optional fields are left out of the document: a missing key reads as NULL.
    return {
      source: e.source,
      event_id: e.id,
      tenant_id: d.tenant_id,
      project_id: d.project_id,
      run_id: d.run_id,
      phase: d.phase,
      attempt: d.attempt,
      role: d.role,
      model: d.model,
      provider: d.provider,
      prompt_tokens: d.prompt_tokens,
      completion_tokens: d.completion_tokens,
      cached_tokens: d.cached_tokens,
      reasoning_tokens: d.reasoning_tokens,
      cost_micros: cost.micros?.toString(),
      cost_source: cost.source,
      latency_ms: d.latency_ms,
      cached: d.cached,
      status: d.status,
      trace_id: traceId,
      span_id: d.span_id,
      user_id: callUser(e, runUser),
      time: e.time,
      payload: d,
      log_trace_id: logTraceIdOf(e, traceId),
    };
  });
  // A counted LLM call may have been stored uncounted (the log) by an earlier delivery.
  const where = mode === 'new' ? '' : `WHERE ${notIn('event_log')}`;
  return { sql: factInsert('llm_calls', LLM_COLUMNS, mode, where), params: [JSON.stringify(rows)] };
}

function insertSpanNodes(nodes: SpanWrite['nodes']): Statement | null {
  if (nodes.length === 0) return null;
  const rows = nodes.map((node) => ({
    tenant_id: node.tenantId,
    run_id: node.runId,
    trace_id: node.traceId,
    span_id: node.spanId,
    ancestor_span_ids: node.ancestors,
    counted: node.counted,
    source: node.event.source,
    event_id: node.event.id,
    time: node.event.time,
  }));
  return {
    sql: `${insertFromJson(
      'llm_call_spans',
      'tenant_id, run_id, trace_id, span_id, ancestor_span_ids, counted, source, event_id, time',
    )} ON CONFLICT DO NOTHING`,
    params: [JSON.stringify(rows)],
  };
}

/**
 * Takes the calls of stored nodes found to be aggregates off everything they were counted in, inside the
 * batch's transaction: the node is marked uncounted and the call moved from llm_calls to the event log, as
 * an uncounted call is stored, in one statement (only rows
 * this statement flips are negated, so a retraction happens once), then the negation of what the call added
 * goes through the same upserts as a batch's deltas, and rollup rows left counting nothing are deleted.
 */
async function retractCalls(manager: EntityManager, spans: SpanWrite): Promise<void> {
  if (spans.retract.length === 0) return;
  const keys = [...spans.retract]
    .sort((a, b) => compareKeys([a.tenantId, a.runId, a.traceId, a.spanId], [b.tenantId, b.runId, b.traceId, b.spanId]))
    .map((node) => ({ tenant_id: node.tenantId, run_id: node.runId, trace_id: node.traceId, span_id: node.spanId }));
  const rows: RetractedRow[] = await manager.query(
    `WITH k AS (SELECT * FROM json_to_recordset($1::json) AS k(tenant_id text, run_id text, trace_id text, span_id text)),
     flipped AS (
       UPDATE llm_call_spans s SET counted = false FROM k
        WHERE s.tenant_id = k.tenant_id AND s.run_id = k.run_id AND s.trace_id = k.trace_id AND s.span_id = k.span_id
          AND s.counted
       RETURNING s.source, s.event_id, s.time),
     deleted AS (
       DELETE FROM llm_calls c USING flipped f
        WHERE c.source = f.source AND c.event_id = f.event_id AND c.time = f.time
       RETURNING c.source, c.event_id, c.tenant_id, c.project_id, c.run_id, c.phase, c.attempt, c.role, c.model,
                 c.provider, c.prompt_tokens::text, c.completion_tokens::text, c.cached_tokens::text,
                 c.reasoning_tokens::text, c.cost_micros::text, c.latency_ms, c.cached, c.status, c.trace_id,
                 c.span_id, c.user_id, c.time, c.payload, c.log_trace_id),
     logged AS (
       INSERT INTO event_log (${EVENT_COLUMNS})
       SELECT source, event_id, tenant_id, run_id, 'llm_call', time, payload,
              CASE log_trace_id WHEN '' THEN NULL ELSE COALESCE(log_trace_id, trace_id) END
         FROM deleted)
     SELECT source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model, provider, prompt_tokens,
            completion_tokens, cached_tokens, reasoning_tokens, cost_micros, latency_ms, cached, status, trace_id,
            span_id, user_id, time
       FROM deleted`,
    [JSON.stringify(keys)],
  );
  if (rows.length === 0) return;
  const negation = spans.negate(rows.map(retractedCallOf));
  const statements = [
    upsertRuns(negation.projection.runs),
    upsertStages(negation.projection.stages),
    addUsage(negation.usage),
    addModelUsage(negation.modelUsage),
  ];
  for (const statement of statements) if (statement) await manager.query(statement.sql, statement.params);
  const tenants = [...new Set(rows.map((row) => row.tenant_id))];
  const days = [...new Set(negation.usage.map((usage) => usage.day))];
  await manager.query(
    `DELETE FROM usage_daily WHERE tenant_id = ANY($1::text[]) AND day = ANY($2::date[]) AND kind = 'llm' AND call_count = 0`,
    [tenants, days],
  );
  await manager.query(
    `DELETE FROM usage_model_daily WHERE tenant_id = ANY($1::text[]) AND day = ANY($2::date[]) AND call_count = 0`,
    [tenants, days],
  );
}

interface RetractedRow {
  source: string;
  event_id: string;
  tenant_id: string;
  project_id: string;
  run_id: string;
  phase: string;
  attempt: number;
  role: string;
  model: string;
  provider: string;
  prompt_tokens: string;
  completion_tokens: string;
  cached_tokens: string;
  reasoning_tokens: string;
  cost_micros: string | null;
  latency_ms: number;
  cached: boolean;
  status: 'ok' | 'error';
  trace_id: string | null;
  span_id: string | null;
  user_id: string | null;
  time: Date;
}

/** The stored call as the llm_call it was projected from (user and cost as stored, which is what was counted). */
function retractedCallOf(row: RetractedRow): RetractedCall {
  const event: LlmCall = {
    specversion: '1.0',
    id: row.event_id,
    source: row.source,
    type: 'llm_call',
    time: row.time.toISOString(),
    subject: row.tenant_id,
    data: {
      tenant_id: row.tenant_id,
      project_id: row.project_id,
      run_id: row.run_id,
      phase: row.phase,
      role: row.role,
      attempt: row.attempt,
      model: row.model,
      provider: row.provider,
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
      cached_tokens: Number(row.cached_tokens),
      reasoning_tokens: Number(row.reasoning_tokens),
      latency_ms: row.latency_ms,
      cached: row.cached,
      status: row.status,
      trace_id: row.trace_id ?? undefined,
      span_id: row.span_id ?? undefined,
      user_id: row.user_id ?? undefined,
    },
  } as LlmCall;
  return { event, costMicros: row.cost_micros === null ? null : BigInt(row.cost_micros) };
}

const TOOL_COLUMNS = `source, event_id, tenant_id, project_id, run_id, phase, attempt, role, tool, mcp_server,
  cache_key_space, cache_hit, latency_ms, status, trace_id, time, payload, log_trace_id`;

function insertToolCalls(tools: ToolCall[], mode: Mode): Statement | null {
  if (tools.length === 0) return null;
  const rows = tools.map((e) => {
    const d = e.data;
    const traceId = d.trace_id ?? traceIdOf(e.traceparent);
    return {
      source: e.source,
      event_id: e.id,
      tenant_id: d.tenant_id,
      project_id: d.project_id,
      run_id: d.run_id,
      phase: d.phase,
      attempt: d.attempt,
      role: d.role,
      tool: d.tool,
      mcp_server: d.mcp_server,
      cache_key_space: d.cache_key_space,
      cache_hit: d.cache_hit,
      latency_ms: d.latency_ms,
      status: d.status,
      trace_id: traceId,
      time: e.time,
      payload: d,
      log_trace_id: logTraceIdOf(e, traceId),
    };
  });
  return { sql: factInsert('tool_calls', TOOL_COLUMNS, mode), params: [JSON.stringify(rows)] };
}

const CHARGE_COLUMNS = `source, event_id, tenant_id, project_id, run_id, phase, vendor, amount_micros, description,
  time, payload, trace_id`;

function insertCharges(charges: Array<Of<'external_charge'>>, mode: Mode): Statement | null {
  if (charges.length === 0) return null;
  const rows = charges.map((e) => ({
    source: e.source,
    event_id: e.id,
    tenant_id: e.data.tenant_id,
    project_id: e.data.project_id,
    run_id: e.data.run_id,
    phase: e.data.phase,
    vendor: e.data.vendor,
    amount_micros: parseUsd(e.data.amount_usd).toString(),
    description: e.data.description,
    time: e.time,
    payload: e.data,
    trace_id: logTraceId(e),
  }));
  return { sql: factInsert('external_charges', CHARGE_COLUMNS, mode), params: [JSON.stringify(rows)] };
}

/** Failures (the Admin Overview's, docs/console.md "Admin Overview"): one row per run, phase, reason and artifact, counting repeats. */
function upsertFailures(events: AgentEvent[]): Statement | null {
  const rows = new Map<
    string,
    {
      tenant_id: string;
      run_id: string;
      phase: string;
      role: string | null;
      reason: string;
      artifact_ref: string;
      first_seen: string;
      last_seen: string;
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
      if (e.time < row.first_seen) row.first_seen = e.time;
      if (e.time > row.last_seen) row.last_seen = e.time;
    } else {
      rows.set(key, {
        tenant_id: e.data.tenant_id,
        run_id: e.data.run_id,
        phase,
        role: e.data.role ?? null,
        reason,
        artifact_ref: artifact,
        first_seen: e.time,
        last_seen: e.time,
        count: 1,
      });
    }
  }
  if (rows.size === 0) return null;
  const sorted = [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
  return {
    sql: `INSERT INTO failures AS f (tenant_id, run_id, phase, role, reason, artifact_ref, first_seen, last_seen, count)
      SELECT tenant_id, run_id, phase, role, reason, artifact_ref, first_seen, last_seen, count
      FROM json_populate_recordset(NULL::failures, $1::json)
      ON CONFLICT (tenant_id, run_id, phase, reason, artifact_ref) DO UPDATE SET
        role       = COALESCE(f.role, EXCLUDED.role),
        first_seen = LEAST(f.first_seen, EXCLUDED.first_seen),
        last_seen  = GREATEST(f.last_seen, EXCLUDED.last_seen),
        count      = f.count + EXCLUDED.count`,
    params: [JSON.stringify(sorted)],
  };
}

/** Human interventions (user_override) and impersonation sessions. */
function insertAudit(events: AgentEvent[]): Statement[] {
  const statements: Statement[] = [];
  const overrides = events.filter((e): e is Of<'user_override'> => e.type === 'user_override');
  if (overrides.length > 0) {
    const rows = overrides.map((e) => ({
      source: e.source,
      event_id: e.id,
      tenant_id: e.data.tenant_id,
      run_id: e.data.run_id,
      user_id: e.data.user_id,
      action: e.data.action,
      reason: e.data.reason,
      phase: e.data.phase,
      time: e.time,
    }));
    statements.push({
      sql: `${insertFromJson(
        'interventions',
        'source, event_id, tenant_id, run_id, user_id, action, reason, phase, time',
      )} ON CONFLICT DO NOTHING`,
      params: [JSON.stringify(rows)],
    });
  }
  const sessions = events
    .filter(
      (e): e is Of<'impersonation_started'> | Of<'impersonation_ended'> =>
        e.type === 'impersonation_started' || e.type === 'impersonation_ended',
    )
    .sort((a, b) => compareKeys([a.data.tenant_id, a.data.session_id], [b.data.tenant_id, b.data.session_id]));
  // One statement per event: start and end of one session may both be in the batch.
  for (const e of sessions) {
    const started = e.type === 'impersonation_started';
    statements.push({
      sql: `INSERT INTO impersonation_sessions AS s (tenant_id, session_id, actor_id, target_user_id, reason, started_at, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, session_id) DO UPDATE SET
           target_user_id = COALESCE(s.target_user_id, EXCLUDED.target_user_id),
           reason         = COALESCE(s.reason, EXCLUDED.reason),
           started_at     = LEAST(s.started_at, EXCLUDED.started_at),
           ended_at       = GREATEST(s.ended_at, EXCLUDED.ended_at)`,
      params: [
        e.data.tenant_id,
        e.data.session_id,
        e.data.actor_id,
        started ? e.data.target_user_id : null,
        started ? (e.data.reason ?? null) : null,
        started ? e.time : null,
        started ? null : e.time,
      ],
    });
  }
  return statements;
}

const USAGE_SQL = `INSERT INTO usage_daily AS u (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server,
    user_id, call_count, success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens,
    cached_tokens, cost_micros, unpriced_calls, latency_sketch)
  SELECT day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id, call_count,
    success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens, cached_tokens,
    cost_micros, unpriced_calls, latency_sketch
  FROM json_populate_recordset(NULL::usage_daily, $1::json)
  ON CONFLICT (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id) DO UPDATE SET
    call_count       = u.call_count + EXCLUDED.call_count,
    success_count    = u.success_count + EXCLUDED.success_count,
    failure_count    = u.failure_count + EXCLUDED.failure_count,
    total_latency_ms = u.total_latency_ms + EXCLUDED.total_latency_ms,
    latency_buckets  = bigint_array_add(u.latency_buckets, EXCLUDED.latency_buckets),
    latency_sketch   = jsonb_counts_add(u.latency_sketch, EXCLUDED.latency_sketch),
    input_tokens     = u.input_tokens + EXCLUDED.input_tokens,
    output_tokens    = u.output_tokens + EXCLUDED.output_tokens,
    cached_tokens    = u.cached_tokens + EXCLUDED.cached_tokens,
    cost_micros      = u.cost_micros + EXCLUDED.cost_micros,
    unpriced_calls   = u.unpriced_calls + EXCLUDED.unpriced_calls`;

/** Adds usage deltas (sorted by key by rollupUsage) to the daily rollups, bucket by bucket for the latency histogram. */
function addUsage(deltas: UsageDelta[]): Statement | null {
  if (deltas.length === 0) return null;
  const rows = deltas.map((d) => ({
    day: d.day,
    tenant_id: d.tenantId,
    project_id: d.projectId,
    role: d.role,
    kind: d.kind,
    model: d.model,
    provider: d.provider,
    tool: d.tool,
    mcp_server: d.mcpServer,
    user_id: d.userId,
    call_count: d.calls,
    success_count: d.successes,
    failure_count: d.failures,
    total_latency_ms: d.totalLatencyMs,
    latency_buckets: d.latencyBuckets,
    latency_sketch: d.latencySketch,
    input_tokens: d.inputTokens.toString(),
    output_tokens: d.outputTokens.toString(),
    cached_tokens: d.cachedTokens.toString(),
    cost_micros: d.costMicros.toString(),
    unpriced_calls: d.unpricedCalls,
  }));
  return { sql: USAGE_SQL, params: [JSON.stringify(rows)] };
}

/**
 * A run_started naming a user that arrives after some of its run's LLM calls (out-of-order delivery): those
 * calls were stored without a user. Gives them the user and moves their usage from the empty user's rows to
 * the user's, so the rollups stay the sum of the raw rows whatever the delivery order (docs/events.md "Users").
 * Latency buckets are recomputed from the rows with the same bounds (LATENCY_BUCKETS_MS) as rollupUsage.
 */
function carryLateUsers(events: AgentEvent[], lateUserRuns: ReadonlySet<string>): Statement[] {
  const runs = events
    .filter(
      (e): e is Of<'run_started'> =>
        e.type === 'run_started' &&
        e.data.user_id !== undefined &&
        lateUserRuns.has(`${e.data.tenant_id}\u0000${e.data.run_id}`),
    )
    .map((e) => ({ tenant_id: e.data.tenant_id, run_id: e.data.run_id, user_id: e.data.user_id! }))
    .sort((a, b) => compareKeys([a.tenant_id, a.run_id], [b.tenant_id, b.run_id]));
  if (runs.length === 0) return [];
  const sums = `count(*) AS calls, count(*) FILTER (WHERE status = 'ok') AS ok, count(*) FILTER (WHERE status <> 'ok') AS bad,
      sum(latency_ms) AS latency, bigint_array_sum(ARRAY(SELECT (i = bucket)::int::bigint FROM generate_series(0, $3::int) i)) AS buckets,
      jsonb_counts_sum(jsonb_build_object(sketch_key, 1)) AS sketch,
      sum(prompt_tokens) AS input, sum(completion_tokens) AS output, sum(cached_tokens) AS cached,
      COALESCE(sum(cost_micros), 0) AS cost, count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced`;
  const move = `WITH r AS (SELECT * FROM json_to_recordset($1::json) AS r(tenant_id text, run_id text, user_id text)),
    moved AS (
      UPDATE llm_calls c SET user_id = r.user_id FROM r
       WHERE c.tenant_id = r.tenant_id AND c.run_id = r.run_id AND c.user_id IS NULL
      RETURNING (c.time AT TIME ZONE 'UTC')::date AS day, c.tenant_id, c.project_id, c.role, c.model, c.provider,
                r.user_id, c.status, c.latency_ms, c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.cost_micros,
                (SELECT count(*) FROM unnest($2::int[]) AS bound WHERE bound < c.latency_ms)::int AS bucket,
                CASE WHEN c.latency_ms <= 0 THEN 'z'
                     ELSE (ceil(ln(c.latency_ms::float8) / ln(2::float8) * $4::float8) + $5::int)::int::text END AS sketch_key),
    g AS (SELECT day, tenant_id, project_id, role, model, provider, user_id, ${sums}
            FROM moved GROUP BY day, tenant_id, project_id, role, model, provider, user_id),
    deltas AS (
      SELECT day, tenant_id, project_id, role, model, provider, '' AS user_id, -calls AS calls, -ok AS ok, -bad AS bad,
             -latency AS latency, ARRAY(SELECT -x FROM unnest(buckets) x) AS buckets, -input AS input, -output AS output,
             -cached AS cached, -cost AS cost, -unpriced AS unpriced,
             (SELECT jsonb_object_agg(k, -v::bigint) FROM jsonb_each_text(sketch) AS e(k, v)) AS sketch FROM g
      UNION ALL
      SELECT day, tenant_id, project_id, role, model, provider, user_id, calls, ok, bad, latency, buckets, input, output,
             cached, cost, unpriced, sketch FROM g)
    INSERT INTO usage_daily AS u (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id,
      call_count, success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens,
      cached_tokens, cost_micros, unpriced_calls, latency_sketch)
    SELECT day, tenant_id, project_id, role, 'llm', model, provider, '', '', user_id, calls, ok, bad, latency, buckets,
           input, output, cached, cost, unpriced, sketch
      FROM deltas ORDER BY day, tenant_id, project_id, role, model, provider, user_id
    ON CONFLICT (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id) DO UPDATE SET
      call_count       = u.call_count + EXCLUDED.call_count,
      success_count    = u.success_count + EXCLUDED.success_count,
      failure_count    = u.failure_count + EXCLUDED.failure_count,
      total_latency_ms = u.total_latency_ms + EXCLUDED.total_latency_ms,
      latency_buckets  = bigint_array_add(u.latency_buckets, EXCLUDED.latency_buckets),
      latency_sketch   = jsonb_counts_add(u.latency_sketch, EXCLUDED.latency_sketch),
      input_tokens     = u.input_tokens + EXCLUDED.input_tokens,
      output_tokens    = u.output_tokens + EXCLUDED.output_tokens,
      cached_tokens    = u.cached_tokens + EXCLUDED.cached_tokens,
      cost_micros      = u.cost_micros + EXCLUDED.cost_micros,
      unpriced_calls   = u.unpriced_calls + EXCLUDED.unpriced_calls`;
  return [
    {
      sql: move,
      params: [
        JSON.stringify(runs),
        [...LATENCY_BUCKETS_MS],
        LATENCY_BUCKETS_MS.length,
        LATENCY_SKETCH_KEY.multiplier,
        LATENCY_SKETCH_KEY.offset,
      ],
      alone: true,
    },
    // Rows of the empty user emptied by the move (a row exists only while it counts calls).
    {
      sql: `DELETE FROM usage_daily WHERE tenant_id = ANY($1::text[]) AND kind = 'llm' AND user_id = '' AND call_count = 0`,
      params: [[...new Set(runs.map((r) => r.tenant_id))]],
      alone: true,
    },
  ];
}

const MODEL_USAGE_SQL = `INSERT INTO usage_model_daily AS u (day, tenant_id, model, provider, call_count, input_tokens,
    output_tokens, cached_tokens, cost_micros, unpriced_calls)
  SELECT day, tenant_id, model, provider, call_count, input_tokens, output_tokens, cached_tokens, cost_micros,
    unpriced_calls
  FROM json_populate_recordset(NULL::usage_model_daily, $1::json)
  ON CONFLICT (day, tenant_id, model, provider) DO UPDATE SET
    call_count     = u.call_count + EXCLUDED.call_count,
    input_tokens   = u.input_tokens + EXCLUDED.input_tokens,
    output_tokens  = u.output_tokens + EXCLUDED.output_tokens,
    cached_tokens  = u.cached_tokens + EXCLUDED.cached_tokens,
    cost_micros    = u.cost_micros + EXCLUDED.cost_micros,
    unpriced_calls = u.unpriced_calls + EXCLUDED.unpriced_calls`;

/**
 * Adds the batch's per-model sums to usage_model_daily, right after usage_daily (the reprice and retention
 * lock the two tables in that order too): one row per day, tenant, model and provider of the batch.
 */
function addModelUsage(deltas: ModelUsageDelta[]): Statement | null {
  if (deltas.length === 0) return null;
  const rows = deltas.map((d) => ({
    day: d.day,
    tenant_id: d.tenantId,
    model: d.model,
    provider: d.provider,
    call_count: d.calls,
    input_tokens: d.inputTokens.toString(),
    output_tokens: d.outputTokens.toString(),
    cached_tokens: d.cachedTokens.toString(),
    cost_micros: d.costMicros.toString(),
    unpriced_calls: d.unpricedCalls,
  }));
  return { sql: MODEL_USAGE_SQL, params: [JSON.stringify(rows)] };
}

/** SQL condition: the incoming ranked value beats the stored one (higher rank, or same rank and later). */
function wins(column: string, alias: string): string {
  return `(EXCLUDED.${column}_at IS NOT NULL AND (${alias}.${column}_at IS NULL
    OR (EXCLUDED.${column}_rank, EXCLUDED.${column}_at) > (${alias}.${column}_rank, ${alias}.${column}_at)))`;
}

/** SQL condition: the incoming time-ordered value is later than the stored one. */
function later(column: string, alias: string): string {
  return `(EXCLUDED.${column}_at IS NOT NULL AND (${alias}.${column}_at IS NULL OR EXCLUDED.${column}_at > ${alias}.${column}_at))`;
}

/*
 * Run and stage deltas merge into the stored rows: sums add, earliest/latest times widen, and ranked
 * values replace the stored one only when they rank higher or, at equal rank, are later.
 */
const RUNS_SQL = `INSERT INTO runs AS r (tenant_id, run_id, project_id, playbook, user_id, status, status_rank, status_at, error,
    phase, role, phase_at, model, model_at, started_at, finished_at, tokens_in, tokens_out, cost_micros,
    external_micros, llm_calls, cached_calls, environment, caps, first_event_at, last_event_at, unpriced_calls)
  SELECT tenant_id, run_id, project_id, playbook, user_id, COALESCE(status, 'unknown'), COALESCE(status_rank, 0),
    status_at, error, phase, role, phase_at, model, model_at, started_at, finished_at, tokens_in,
    tokens_out, cost_micros, external_micros, llm_calls, cached_calls, environment, caps,
    first_event_at, last_event_at, unpriced_calls
  FROM json_populate_recordset(NULL::runs, $1::json)
  ON CONFLICT (tenant_id, run_id) DO UPDATE SET
    playbook        = COALESCE(EXCLUDED.playbook, r.playbook),
    user_id         = COALESCE(EXCLUDED.user_id, r.user_id),
    status          = CASE WHEN ${wins('status', 'r')} THEN EXCLUDED.status ELSE r.status END,
    error           = CASE WHEN ${wins('status', 'r')} THEN EXCLUDED.error ELSE r.error END,
    status_rank     = CASE WHEN ${wins('status', 'r')} THEN EXCLUDED.status_rank ELSE r.status_rank END,
    status_at       = CASE WHEN ${wins('status', 'r')} THEN EXCLUDED.status_at ELSE r.status_at END,
    phase           = CASE WHEN ${later('phase', 'r')} THEN EXCLUDED.phase ELSE r.phase END,
    role            = CASE WHEN ${later('phase', 'r')} THEN EXCLUDED.role ELSE r.role END,
    phase_at        = CASE WHEN ${later('phase', 'r')} THEN EXCLUDED.phase_at ELSE r.phase_at END,
    model           = CASE WHEN ${later('model', 'r')} THEN EXCLUDED.model ELSE r.model END,
    model_at        = CASE WHEN ${later('model', 'r')} THEN EXCLUDED.model_at ELSE r.model_at END,
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
    updated_at      = now()`;

/** Rows are written in key order so concurrent batches (during a rebalance) cannot deadlock. */
function upsertRuns(runs: Projection['runs']): Statement | null {
  if (runs.length === 0) return null;
  const rows = [...runs]
    .sort((a, b) => compareKeys([a.tenantId, a.runId], [b.tenantId, b.runId]))
    .map((r) => ({
      tenant_id: r.tenantId,
      run_id: r.runId,
      project_id: r.projectId,
      playbook: r.playbook,
      user_id: r.userId,
      status: r.status?.value.status,
      status_rank: r.status?.rank,
      status_at: at(r.status),
      error: r.status?.value.error,
      phase: r.phase?.value.phase,
      role: r.phase?.value.role,
      phase_at: at(r.phase),
      model: r.model?.value,
      model_at: at(r.model),
      started_at: r.startedAt?.toISOString(),
      finished_at: r.finishedAt?.toISOString(),
      tokens_in: r.tokensIn.toString(),
      tokens_out: r.tokensOut.toString(),
      cost_micros: r.costMicros.toString(),
      external_micros: r.externalMicros.toString(),
      llm_calls: r.llmCalls,
      cached_calls: r.cachedCalls,
      environment: r.environment ?? null,
      caps: r.caps ?? null,
      first_event_at: r.firstEventAt.toISOString(),
      last_event_at: r.lastEventAt.toISOString(),
      unpriced_calls: r.unpricedCalls,
    }));
  return { sql: RUNS_SQL, params: [JSON.stringify(rows)] };
}

const STAGES_SQL = `INSERT INTO stages AS s (tenant_id, run_id, phase, attempt, role, status, status_rank, status_at,
    started_at, finished_at, trace_id, prompt_tokens, completion_tokens, cached_tokens, cost_micros, llm_calls)
  SELECT tenant_id, run_id, phase, attempt, role, COALESCE(status, 'pending'), COALESCE(status_rank, 0),
    status_at, started_at, finished_at, trace_id, prompt_tokens, completion_tokens, cached_tokens,
    cost_micros, llm_calls
  FROM json_populate_recordset(NULL::stages, $1::json)
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
    updated_at        = now()`;

function upsertStages(stages: Projection['stages']): Statement | null {
  if (stages.length === 0) return null;
  const rows = [...stages]
    .sort((a, b) => compareKeys([a.tenantId, a.runId, a.phase, a.attempt], [b.tenantId, b.runId, b.phase, b.attempt]))
    .map((s) => ({
      tenant_id: s.tenantId,
      run_id: s.runId,
      phase: s.phase,
      attempt: s.attempt,
      role: s.role,
      status: s.status?.value,
      status_rank: s.status?.rank,
      status_at: at(s.status),
      started_at: s.startedAt?.toISOString(),
      finished_at: s.finishedAt?.toISOString(),
      trace_id: s.traceId,
      prompt_tokens: s.promptTokens.toString(),
      completion_tokens: s.completionTokens.toString(),
      cached_tokens: s.cachedTokens.toString(),
      cost_micros: s.costMicros.toString(),
      llm_calls: s.llmCalls,
    }));
  return { sql: STAGES_SQL, params: [JSON.stringify(rows)] };
}

function at(ranked: Ranked<unknown> | null): string | undefined {
  return ranked?.at.toISOString();
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
