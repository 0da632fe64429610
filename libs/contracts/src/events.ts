import { z } from 'zod';

/**
 * The event contract of agent.events.v1 (docs/events.md: the pipeline's events, plus the per-call facts the metrics need).
 * Evolve only by adding optional fields; a breaking change is a new event type or topic.
 */

const id = z.string().min(1).max(200);
/** Decimal USD on the wire ("0.012345"); parsed to integer micro-USD at ingest. */
export const UsdAmount = z
  .string()
  .regex(/^\d{1,12}(\.\d{1,12})?$/, 'a non-negative decimal USD amount such as "0.0125"');
const tokens = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const timestamp = z.iso.datetime({ offset: true });

/** Longest llm_call prompt or completion text accepted, in UTF-16 code units. */
export const PROMPT_TEXT_MAX = 32_000;

/** Fields every run-scoped event carries (docs/events.md "What producers must do": tenant, project, phase, role, run, timestamps). */
const RunScoped = z.object({
  tenant_id: id,
  project_id: id,
  run_id: id,
});

/** Fields of events that happen inside one attempt of one phase. */
const StageScoped = RunScoped.extend({
  phase: id,
  role: id,
  /** 1 for the first attempt of a phase, 2 for the first retry, ... */
  attempt: z.number().int().min(1).max(1000).default(1),
});

/**
 * The phase and role an event happened in, on events that are not tied to one (run_started names the first
 * phase, run_finished the last, a cap crossing the phase of the spend that crossed it).
 */
const Stage = { phase: id.optional(), role: id.optional() };

/**
 * What the emitter spent since its previous event of the same run and phase (docs/events.md "Phase, role and deltas"),
 * as the emitter counts it. Informational: runs, stages and rollups count llm_call and external_charge, so
 * these are stored with the event and returned on the run's timeline, never added to totals.
 */
const Deltas = {
  input_tokens: tokens.optional(),
  output_tokens: tokens.optional(),
  cost_usd: UsdAmount.optional(),
};

const Artifact = {
  artifact_path: z.string().min(1).max(1000),
  artifact_version: z.string().min(1).max(200),
};

export const RunCaps = z.object({
  max_tokens: tokens.optional(),
  max_wall_time_s: z.number().int().positive().optional(),
  max_cost_usd: UsdAmount.optional(),
  max_external_usd: UsdAmount.optional(),
});

/** Where a run executed, shown as environment provenance next to its metrics. */
export const Environment = z.object({
  name: z.string().max(100).optional(),
  region: z.string().max(100).optional(),
  version: z.string().max(200).optional(),
});

/** The raise in force when a cap was crossed (cost-cap overrides). */
const CapOverrideRef = z.object({
  override_id: id,
  /** The raised limit, in the cap's unit. */
  limit: z.string().max(100),
  expires_at: timestamp,
  actor: z.string().max(200),
  reason: z.string().max(4000),
});

/**
 * A cap crossing as cost-cap reports it. limit and observed are in the cap's unit: decimal USD for cost and
 * external, tokens for tokens, seconds for wall_time. For the tenant scope, run_id and project_id name the
 * run whose spend crossed the cap.
 */
const CapCrossing = RunScoped.extend({
  ...Stage,
  scope: z.enum(['run', 'tenant']),
  cap: z.enum(['tokens', 'wall_time', 'cost', 'external']),
  limit: z.string().max(100),
  observed: z.string().max(100),
  /** Tenant scope: the tenant's local day ("2026-11-25") the spend belongs to. */
  day: z.iso.date().optional(),
  /** When the cap resets (tenant scope: the start of the next local day); absent for run caps. */
  resets_at: timestamp.optional(),
  /** The raise in force for this cap, if any. */
  override: CapOverrideRef.optional(),
});

export const EventData = {
  run_started: RunScoped.extend({
    ...Stage,
    playbook: z.string().max(200).optional(),
    model: z.string().max(200).optional(),
    user_id: id.optional(),
    caps: RunCaps.optional(),
    environment: Environment.optional(),
  }),
  phase_entered: StageScoped,
  artifact_written: StageScoped.extend({ ...Artifact, ...Deltas }),
  validation_failed: StageScoped.extend({
    ...Deltas,
    reason: z.string().min(1).max(4000),
    artifact_path: Artifact.artifact_path.optional(),
    artifact_version: Artifact.artifact_version.optional(),
  }),
  phase_advanced: StageScoped.extend({ ...Deltas, next_phase: id.optional() }),
  publish_done: StageScoped.extend({ ...Artifact, ...Deltas, partial: z.boolean().default(false) }),
  run_finished: RunScoped.extend({ ...Stage, ...Deltas, summary: z.string().max(4000).optional() }),
  run_failed: RunScoped.extend({
    ...Stage,
    ...Deltas,
    error: z.string().min(1).max(4000),
  }),
  /** cost-cap: committed spend reached 100 % of a cap (once per run or tenant-day and limit). */
  cap_hit: CapCrossing,
  user_override: RunScoped.extend({
    user_id: id,
    action: z.string().min(1).max(200),
    reason: z.string().min(1).max(4000),
    phase: id.optional(),
  }),
  impersonation_started: z.object({
    tenant_id: id,
    session_id: id,
    actor_id: id,
    target_user_id: id,
    reason: z.string().max(4000).optional(),
  }),
  impersonation_ended: z.object({ tenant_id: id, session_id: id, actor_id: id }),
  /** One LLM request. Cost is optional: when absent, ingest prices the tokens. */
  llm_call: StageScoped.extend({
    model: z.string().min(1).max(200),
    provider: z.string().min(1).max(100),
    prompt_tokens: tokens,
    completion_tokens: tokens,
    cached_tokens: tokens.default(0),
    reasoning_tokens: tokens.default(0),
    cost_usd: UsdAmount.optional(),
    latency_ms: z.number().int().min(0),
    /** true when the answer came from a response cache rather than a live model call */
    cached: z.boolean().default(false),
    status: z.enum(['ok', 'error']).default('ok'),
    error: z.string().max(4000).optional(),
    trace_id: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional(),
    span_id: z
      .string()
      .regex(/^[0-9a-f]{16}$/)
      .optional(),
    /**
     * The span's ancestors as its exporter knew them, nearest first (the parent, then its parent...); [] for
     * a root span. When present, ingest counts usage on leaf-most spans only across exports: a call whose
     * span is an ancestor of another call's span in the same trace and run is an aggregate and not counted
     * (docs/otlp.md "Aggregate spans").
     */
    ancestor_span_ids: z
      .array(z.string().regex(/^[0-9a-f]{16}$/))
      .max(64)
      .optional(),
    user_id: id.optional(),
    /** The cost-cap reservation this call was admitted under: the event settles it (docs/cost-cap.md "Settling from the event"). */
    reservation_id: z.uuid().optional(),
    /**
     * The request's prompt and the model's answer as text, for the tenant's prompt audit (docs/events.md
     * "Prompt audit"): stored redacted only when the tenant enabled it, otherwise dropped at ingest and
     * stored nowhere. Producers truncate longer text.
     */
    prompt: z.string().max(PROMPT_TEXT_MAX).optional(),
    completion: z.string().max(PROMPT_TEXT_MAX).optional(),
  }),
  /** One tool or MCP call; cache_key_space names the Valkey key space, e.g. "amtp:mcp:tree". */
  tool_call: StageScoped.extend({
    tool: z.string().min(1).max(200),
    mcp_server: z.string().max(200).optional(),
    cache_key_space: z.string().max(200).optional(),
    cache_hit: z.boolean().optional(),
    latency_ms: z.number().int().min(0),
    status: z.enum(['ok', 'error']).default('ok'),
    error: z.string().max(4000).optional(),
    trace_id: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional(),
    span_id: z
      .string()
      .regex(/^[0-9a-f]{16}$/)
      .optional(),
  }),
  /** Money spent outside LLM calls (search APIs, SMS, ...), counted against external-charge caps. */
  external_charge: RunScoped.extend({
    phase: id.optional(),
    vendor: z.string().min(1).max(200),
    amount_usd: UsdAmount,
    description: z.string().max(1000).optional(),
    /** The cost-cap reservation this charge was admitted under (as for llm_call). */
    reservation_id: z.uuid().optional(),
  }),
  /** A proof (demo or validation evidence) becomes due; "proof overdue" alerts need it. */
  proof_due: RunScoped.extend({ proof_id: id, due_at: timestamp }),
  proof_completed: RunScoped.extend({ proof_id: id, passed: z.boolean() }),
  /** A task waited in a Coordinator queue; "queue latency" metrics and alerts need it. */
  task_dequeued: RunScoped.extend({
    queue: z.string().min(1).max(200),
    phase: id.optional(),
    enqueued_at: timestamp,
  }),
  /** cost-cap: committed spend reached 80 % of a cap (once per run or tenant-day and limit). */
  cap_warning: CapCrossing,
} as const;

export type EventType = keyof typeof EventData;
export const EVENT_TYPES = Object.keys(EventData) as EventType[];

export type EventDataOf<T extends EventType> = z.output<(typeof EventData)[T]>;
