import { Injectable } from '@nestjs/common';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import { PartitionManager } from '@agentmeter/database';
import {
  negateModelUsageDelta,
  negateRunDelta,
  negateStageDelta,
  negateUsageDelta,
  projectEvents,
  Redactor,
  resolveSpans,
  rollupModelUsage,
  rollupUsage,
  utcDay,
} from '@agentmeter/domain';
import { PricingService } from '../pricing/pricing.service';
import {
  EventsRepository,
  UNIQUE_VIOLATION,
  type BatchWrite,
  type CallCost,
  type Negation,
  type PromptText,
  type RetractedCall,
  type SpanWrite,
} from './events.repository';
import { IngestMetrics, type IngestStage } from './ingest.metrics';

type LlmCall = AgentEvent & { type: 'llm_call' };

/** SQLSTATE of a row outside every partition (its day partition was dropped by retention meanwhile). */
const CHECK_VIOLATION = '23514';

/**
 * Stores a batch of valid events exactly once: the event log insert decides which events are new, and
 * only those are projected into runs, stages, calls, failures and usage rollups (per dimension and per
 * model), all in one transaction.
 *
 * A batch is first written on the assumption that all its events are new (true unless a batch is
 * redelivered after a crash or a rebalance): plain INSERTs, projections computed before the transaction.
 * A stored event makes that transaction fail as a whole; the batch is then written again with the event
 * log deciding, row by row, which events are new.
 */
@Injectable()
export class EventsService {
  /** Run id -> owning tenant, as claimed in run_owners (a claim never changes, so it can be cached). */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly repository: EventsRepository,
    private readonly partitions: PartitionManager,
    private readonly metrics: IngestMetrics,
    private readonly pricing: PricingService,
    private readonly redactor: Redactor,
  ) {}

  /**
   * Stores the batch; returns the events refused with their reason (to be dead-lettered): those naming a
   * run id that another tenant owns. Events are redacted first (docs/security.md "Redaction and
   * pseudonymisation"): ownership is claimed and stored under the same pseudonymised ids as everything else,
   * and a redelivered event is redacted to the same id and source, so the event log still recognises it.
   */
  async ingest(batch: AgentEvent[]): Promise<RejectedEvent[]> {
    const stages = this.metrics.stageTimer();
    const stage = stages.lap;
    const redacted = new Map<AgentEvent, AgentEvent>();
    for (const event of batch) redacted.set(event, this.redact(event));
    stage('redact');
    // Ownership and what the batch needs from storage are read at once, in one round trip's time: the
    // reads are prepared for every event of the batch, and again for the accepted ones only when an event
    // is refused (rare: its span tree must not retract anything).
    const [{ accepted, rejected }, reads] = await Promise.all([
      this.checkRunOwners(batch, redacted),
      this.read(dedupe([...redacted.values()])),
    ]);
    stage('read');
    if (accepted.length > 0) {
      await this.store(rejected.length === 0 ? reads : await this.read(dedupe(accepted)), stage);
    }
    stages.done();
    return rejected;
  }

  /**
   * A run id belongs to the first tenant that names it; another tenant's events for it are refused. The
   * refused are the events as received (the dead letter keeps the message); the accepted, redacted.
   */
  private async checkRunOwners(
    batch: AgentEvent[],
    redacted: Map<AgentEvent, AgentEvent>,
  ): Promise<{ accepted: AgentEvent[]; rejected: RejectedEvent[] }> {
    const claims = new Map<string, string>();
    for (const event of redacted.values()) {
      const runId = runIdOf(event);
      if (runId !== undefined && !this.owners.has(runId) && !claims.has(runId)) claims.set(runId, event.data.tenant_id);
    }
    if (claims.size > 0) {
      if (this.owners.size + claims.size > MAX_KNOWN_OWNERS) this.owners.clear();
      for (const [runId, tenant] of await this.repository.claimRuns(claims)) this.owners.set(runId, tenant);
    }
    const accepted: AgentEvent[] = [];
    const rejected: RejectedEvent[] = [];
    for (const original of batch) {
      const event = redacted.get(original)!;
      const runId = runIdOf(event);
      const owner = runId === undefined ? undefined : this.owners.get(runId);
      if (owner === undefined || owner === event.data.tenant_id) accepted.push(event);
      else
        rejected.push({ event: original, reason: 'run_owned_by_another_tenant: the run id belongs to another tenant' });
    }
    if (rejected.length > 0) this.metrics.runOwnerRejections.inc(rejected.length);
    return { accepted, rejected };
  }

  /**
   * What storing these (redacted, distinct) events needs from storage, read concurrently on separate
   * connections: which tenants keep prompt texts, the users of their runs, their span trees, and the runs
   * whose calls wait for a user. Their prompt and completion texts are taken off here (docs/events.md
   * "Prompt audit"): the event log and every projection get the calls without them.
   */
  private async read(events: AgentEvent[]): Promise<BatchReads> {
    const { events: unique, texts } = takePromptTexts(events);
    const tenants = [...new Set([...texts.keys()].map((call) => call.data.tenant_id))];
    const [enabled, users, spans, lateUserRuns] = await Promise.all([
      tenants.length > 0 ? this.repository.promptAuditTenants(tenants) : new Set<string>(),
      this.runUsers(unique),
      this.resolveSpans(unique),
      this.repository.runsWithCallsWithoutUser(runStartsWithUser(unique)),
    ]);
    // Texts are kept, already redacted with the rest of the event, only for tenants with the prompt audit.
    const prompts = new Map<AgentEvent, PromptText>();
    for (const [call, { prompt, completion }] of texts) {
      if (enabled.has(call.data.tenant_id) && (prompt || completion)) {
        prompts.set(call, { prompt: prompt || null, completion: completion || null });
      }
    }
    return { unique, carrying: texts.size, prompts, users, spans, lateUserRuns };
  }

  /** Writes redacted events: the new ones are logged and projected, the ones already stored change nothing. */
  private async store(reads: BatchReads, stage: (name: IngestStage) => void): Promise<void> {
    const { unique, prompts, users, spans, lateUserRuns } = reads;
    if (reads.carrying > 0) {
      this.metrics.promptTexts.inc({ outcome: 'stored' }, prompts.size);
      this.metrics.promptTexts.inc({ outcome: 'dropped' }, reads.carrying - prompts.size);
    }
    if (spans.uncounted.size > 0) this.metrics.aggregateCalls.inc(spans.uncounted.size);
    const costs = new Map<LlmCall, CallCost>();
    for (const event of unique) if (event.type === 'llm_call') costs.set(event, this.pricing.cost(event));
    const costOf = (event: LlmCall): CallCost => costs.get(event) ?? this.pricing.cost(event);
    const priceOf = (event: LlmCall): bigint | null => costOf(event).micros;
    const runUser = (tenantId: string, runId: string): string | undefined => users.get(`${tenantId}\u0000${runId}`);
    const writes = (events: AgentEvent[]): BatchWrite => {
      const counted = events.filter((event) => !spans.uncounted.has(event));
      const usage = rollupUsage(counted, priceOf, runUser);
      const fresh = new Set(events);
      return {
        events,
        costOf,
        projection: projectEvents(counted, priceOf),
        runUser,
        usage,
        modelUsage: rollupModelUsage(usage),
        spans: { ...spans, nodes: spans.nodes.filter((node) => fresh.has(node.event)) },
        prompts,
        lateUserRuns,
      };
    };

    const days = new Set<string>();
    for (const event of unique) days.add(dayOf(event.time));
    // Both are usually answered from memory, without a round trip.
    await Promise.all([this.partitions.ensureDays(days), this.repository.ensureTenantsAndProjects(unique)]);
    stage('read');
    const all = writes(unique);
    stage('project');
    let fresh = unique;
    try {
      try {
        await this.repository.storeNew(all);
      } catch (error) {
        if (codeOf(error) !== UNIQUE_VIOLATION) throw error;
        fresh = await this.repository.storeDeduplicated(unique, writes);
      }
    } catch (error) {
      // A partition dropped by retention in another process: re-check partitions on the redelivery.
      if (codeOf(error) === CHECK_VIOLATION) this.partitions.forget();
      throw error;
    }
    stage('write');
    this.metrics.countBatch(unique, fresh.length === unique.length ? null : new Set(fresh), costOf, spans.uncounted);
  }

  /**
   * Usage on leaf-most spans only, across export requests (docs/otlp.md "Aggregate spans"): the batch's LLM
   * calls that name their ancestors are resolved against the stored nodes of their traces. A run's events
   * come through one partition, so the stored nodes read here are the ones the batch's transaction sees.
   */
  private async resolveSpans(events: AgentEvent[]): Promise<SpanWrite> {
    const calls = events.filter(
      (e): e is LlmCall => e.type === 'llm_call' && !!e.data.trace_id && !!e.data.span_id && !!e.data.ancestor_span_ids,
    );
    const empty: SpanWrite = { nodes: [], uncounted: new Set(), retract: [], negate: negation };
    if (calls.length === 0) return empty;
    const groupOf = (tenantId: string, runId: string, traceId: string) => `${tenantId}\u0000${runId}\u0000${traceId}`;
    const groups = new Map<string, [string, string, string]>();
    for (const { data } of calls)
      groups.set(groupOf(data.tenant_id, data.run_id, data.trace_id!), [data.tenant_id, data.run_id, data.trace_id!]);
    const stored = await this.repository.spanNodes([...groups.values()]);
    const resolution = resolveSpans(
      stored.map((row) => ({ ...row, group: groupOf(row.tenantId, row.runId, row.traceId) })),
      calls.map(({ data }) => ({
        group: groupOf(data.tenant_id, data.run_id, data.trace_id!),
        spanId: data.span_id!,
        ancestors: data.ancestor_span_ids!,
      })),
    );
    const spans: SpanWrite = { ...empty, uncounted: new Set(), retract: resolution.retract };
    calls.forEach((event, i) => {
      const outcome = resolution.outcomes[i]!;
      if (outcome !== 'counted') (spans.uncounted as Set<AgentEvent>).add(event);
      if (outcome === 'duplicate') return;
      const { data } = event;
      spans.nodes.push({
        tenantId: data.tenant_id,
        runId: data.run_id,
        traceId: data.trace_id!,
        spanId: data.span_id!,
        ancestors: [...data.ancestor_span_ids!],
        counted: outcome === 'counted',
        event,
      });
    });
    return spans;
  }

  /**
   * The user of each run whose calls this batch holds without a user_id of their own: from the batch's
   * run_started, else from the runs table (a run_started of an earlier batch). docs/events.md "Users".
   */
  private async runUsers(events: AgentEvent[]): Promise<Map<string, string>> {
    const users = new Map<string, string>();
    for (const e of events) {
      if (e.type === 'run_started' && e.data.user_id)
        users.set(`${e.data.tenant_id}\u0000${e.data.run_id}`, e.data.user_id);
    }
    const missing = new Map<string, [string, string]>();
    for (const e of events) {
      if (e.type !== 'llm_call' || e.data.user_id) continue;
      const key = `${e.data.tenant_id}\u0000${e.data.run_id}`;
      if (!users.has(key)) missing.set(key, [e.data.tenant_id, e.data.run_id]);
    }
    if (missing.size > 0)
      for (const [key, user] of await this.repository.runUsers([...missing.values()])) users.set(key, user);
    return users;
  }

  /**
   * Secrets and PII leave the event here, envelope included, before anything is stored; identifiers become
   * pseudonyms (docs/security.md "Redaction and pseudonymisation").
   */
  private redact(event: AgentEvent): AgentEvent {
    const { event: redacted, found } = this.redactor.event(event);
    for (const kind of found) this.metrics.redactions.inc({ kind });
    return redacted;
  }
}

/** What storing a batch's events needs from storage (EventsService.read). */
interface BatchReads {
  /** The events to store: distinct, redacted, without prompt and completion texts. */
  unique: AgentEvent[];
  /** LLM calls that carried a prompt or completion text. */
  carrying: number;
  /** The texts kept for the prompt audit, by call. */
  prompts: Map<AgentEvent, PromptText>;
  /** "tenant\0run" -> the run's user, for calls without a user_id of their own. */
  users: Map<string, string>;
  spans: SpanWrite;
  lateUserRuns: Set<string>;
}

/**
 * Takes the prompt and completion texts off every llm_call that carries them: the calls without them, and
 * the texts by call (kept or dropped by the caller, per the tenant's prompt audit).
 */
function takePromptTexts(events: AgentEvent[]): {
  events: AgentEvent[];
  texts: Map<LlmCall, { prompt: string | undefined; completion: string | undefined }>;
} {
  const texts = new Map<LlmCall, { prompt: string | undefined; completion: string | undefined }>();
  const stripped = events.map((event) => {
    if (event.type !== 'llm_call' || (event.data.prompt === undefined && event.data.completion === undefined)) {
      return event;
    }
    const { prompt, completion, ...data } = event.data;
    const call = { ...event, data } as LlmCall;
    texts.set(call, { prompt, completion });
    return call;
  });
  return { events: texts.size === 0 ? events : stripped, texts };
}

/** What retracted calls added to runs, stages and rollups, negated (libs/domain `span-tree.ts`). */
function negation(calls: RetractedCall[]): Negation {
  const costs = new Map(calls.map((call) => [call.event, call.costMicros]));
  const events = calls.map((call) => call.event);
  const price = (event: LlmCall) => costs.get(event) ?? null;
  const projection = projectEvents(events, price);
  const usage = rollupUsage(events, price);
  return {
    projection: { runs: projection.runs.map(negateRunDelta), stages: projection.stages.map(negateStageDelta) },
    usage: usage.map(negateUsageDelta),
    modelUsage: rollupModelUsage(usage).map(negateModelUsageDelta),
  };
}

export interface RejectedEvent {
  event: AgentEvent;
  reason: string;
}

/** Run ids whose owner is cached, at most (the cache starts over beyond). */
const MAX_KNOWN_OWNERS = 200_000;

function runIdOf(event: AgentEvent): string | undefined {
  return (event.data as { run_id?: string }).run_id;
}

/** (tenant, run) of the batch's run_started events that name a user, once each. */
function runStartsWithUser(events: AgentEvent[]): Array<[string, string]> {
  const runs = new Map<string, [string, string]>();
  for (const e of events) {
    if (e.type === 'run_started' && e.data.user_id)
      runs.set(`${e.data.tenant_id}\u0000${e.data.run_id}`, [e.data.tenant_id, e.data.run_id]);
  }
  return [...runs.values()];
}

/** Keeps the first occurrence of each (source, id) in the batch. */
function dedupe(batch: AgentEvent[]): AgentEvent[] {
  const seen = new Set<string>();
  return batch.filter((event) => {
    const key = eventKey(event);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The UTC day of an event time: a UTC ("Z") time starts with it, any other offset goes through Date. */
function dayOf(time: string): string {
  return time.endsWith('Z') ? time.slice(0, 10) : utcDay(time);
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}
