import type { AgentEvent } from '@agentmeter/contracts';
import { parseUsd } from '../money';

/**
 * Folds a batch of *new* (already de-duplicated) events into per-run and per-stage deltas.
 *
 * Additive fields (tokens, cost, call counts) are sums, so arrival order cannot change them.
 * Status-like fields carry (rank, time): a later rank always wins (a terminal state is never reopened by
 * a late event), and within one rank the later event time wins. The database merges these deltas with the
 * stored row by the same rule, so the projection converges whatever the order and batching of events.
 */

export interface Ranked<T> {
  value: T;
  rank: number;
  at: Date;
}

export interface RunDelta {
  tenantId: string;
  runId: string;
  projectId: string;
  playbook: string | null;
  /** The user run_started names (carried onto the run's calls and usage rows by ingest). */
  userId: string | null;
  status: Ranked<{ status: RunStatus; error: string | null }> | null;
  phase: Ranked<{ phase: string; role: string }> | null;
  model: Ranked<string> | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  firstEventAt: Date;
  lastEventAt: Date;
  tokensIn: bigint;
  tokensOut: bigint;
  costMicros: bigint;
  externalMicros: bigint;
  llmCalls: number;
  cachedCalls: number;
  /** llm_calls without a price (neither provided nor computed). */
  unpricedCalls: number;
  environment: unknown;
  caps: unknown;
}

export interface StageDelta {
  tenantId: string;
  runId: string;
  phase: string;
  attempt: number;
  role: string;
  status: Ranked<StageStatus> | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  traceId: string | null;
  promptTokens: bigint;
  completionTokens: bigint;
  cachedTokens: bigint;
  costMicros: bigint;
  llmCalls: number;
}

export type RunStatus = 'running' | 'succeeded' | 'failed';
export type StageStatus = 'running' | 'failed' | 'passed';

/** Cost of each llm_call in micros, decided by pricing before projection (null = unpriced). */
export type CallCost = (event: AgentEvent & { type: 'llm_call' }) => bigint | null;

export interface Projection {
  runs: RunDelta[];
  stages: StageDelta[];
}

// Terminal states outrank live ones; between two terminal states the more severe one (run) or the
// successful one (stage: a passed attempt is final) wins, so equal timestamps still converge.
const RUN_STATUS_RANK: Record<RunStatus, number> = { running: 1, succeeded: 2, failed: 3 };
const STAGE_STATUS_RANK: Record<StageStatus, number> = { running: 1, failed: 2, passed: 3 };

export function projectEvents(events: readonly AgentEvent[], costOf: CallCost): Projection {
  const runs = new Map<string, RunDelta>();
  const stages = new Map<string, StageDelta>();

  for (const event of events) {
    if (!('run_id' in event.data)) continue; // tenant-scoped events (impersonation) have no run row
    const at = new Date(event.time);
    const data = event.data;
    const run = runDelta(runs, data.tenant_id, data.run_id, data.project_id, at);

    switch (event.type) {
      case 'run_started':
        run.startedAt = earliest(run.startedAt, at);
        run.status = higher(run.status, {
          value: { status: 'running', error: null },
          rank: RUN_STATUS_RANK.running,
          at,
        });
        run.playbook = event.data.playbook ?? run.playbook;
        run.userId = event.data.user_id ?? run.userId;
        run.environment = event.data.environment ?? run.environment;
        run.caps = event.data.caps ?? run.caps;
        if (event.data.model) run.model = higher(run.model, { value: event.data.model, rank: 0, at });
        if (event.data.phase && event.data.role)
          run.phase = higher(run.phase, { value: { phase: event.data.phase, role: event.data.role }, rank: 0, at });
        break;
      case 'run_finished':
      case 'run_failed': {
        if (event.data.phase && event.data.role)
          run.phase = higher(run.phase, { value: { phase: event.data.phase, role: event.data.role }, rank: 0, at });
        const status: RunStatus = event.type === 'run_finished' ? 'succeeded' : 'failed';
        const error = event.type === 'run_failed' ? event.data.error : null;
        run.finishedAt = latest(run.finishedAt, at);
        run.status = higher(run.status, { value: { status, error }, rank: RUN_STATUS_RANK[status], at });
        break;
      }
      case 'phase_entered': {
        const stage = stageDelta(stages, event.data);
        stage.startedAt = earliest(stage.startedAt, at);
        stage.status = higher(stage.status, { value: 'running', rank: STAGE_STATUS_RANK.running, at });
        stage.traceId ??= traceIdOf(event.traceparent);
        run.phase = higher(run.phase, {
          value: { phase: event.data.phase, role: event.data.role },
          rank: 0,
          at,
        });
        break;
      }
      case 'validation_failed':
      case 'phase_advanced':
      case 'publish_done': {
        const stage = stageDelta(stages, event.data);
        const status: StageStatus = event.type === 'validation_failed' ? 'failed' : 'passed';
        stage.finishedAt = latest(stage.finishedAt, at);
        stage.status = higher(stage.status, { value: status, rank: STAGE_STATUS_RANK[status], at });
        break;
      }
      case 'artifact_written':
        stageDelta(stages, event.data);
        break;
      case 'llm_call': {
        const stage = stageDelta(stages, event.data);
        const priced = costOf(event);
        const cost = priced ?? 0n;
        const prompt = BigInt(event.data.prompt_tokens);
        const completion = BigInt(event.data.completion_tokens);
        stage.promptTokens += prompt;
        stage.completionTokens += completion;
        stage.cachedTokens += BigInt(event.data.cached_tokens);
        stage.costMicros += cost;
        stage.llmCalls += 1;
        stage.traceId ??= event.data.trace_id ?? null;
        run.tokensIn += prompt;
        run.tokensOut += completion;
        run.costMicros += cost;
        run.llmCalls += 1;
        if (event.data.cached) run.cachedCalls += 1;
        if (priced === null) run.unpricedCalls += 1;
        run.model = higher(run.model, { value: event.data.model, rank: 0, at });
        break;
      }
      case 'tool_call':
        stageDelta(stages, event.data).traceId ??= event.data.trace_id ?? null;
        break;
      case 'external_charge': {
        const amount = parseUsd(event.data.amount_usd);
        run.externalMicros += amount;
        run.costMicros += amount;
        break;
      }
      default:
        break; // cap_hit, user_override, proofs, queue facts: stored in the event log only
    }
  }
  return { runs: [...runs.values()], stages: [...stages.values()] };
}

function runDelta(runs: Map<string, RunDelta>, tenantId: string, runId: string, projectId: string, at: Date): RunDelta {
  const key = `${tenantId}\u0000${runId}`;
  let run = runs.get(key);
  if (!run) {
    run = {
      tenantId,
      runId,
      projectId,
      playbook: null,
      userId: null,
      status: null,
      phase: null,
      model: null,
      startedAt: null,
      finishedAt: null,
      firstEventAt: at,
      lastEventAt: at,
      tokensIn: 0n,
      tokensOut: 0n,
      costMicros: 0n,
      externalMicros: 0n,
      llmCalls: 0,
      cachedCalls: 0,
      unpricedCalls: 0,
      environment: null,
      caps: null,
    };
    runs.set(key, run);
  }
  run.firstEventAt = earliest(run.firstEventAt, at) ?? at;
  run.lastEventAt = latest(run.lastEventAt, at) ?? at;
  return run;
}

function stageDelta(
  stages: Map<string, StageDelta>,
  data: { tenant_id: string; run_id: string; phase: string; role: string; attempt: number },
): StageDelta {
  const key = [data.tenant_id, data.run_id, data.phase, data.attempt].join('\u0000');
  let stage = stages.get(key);
  if (!stage) {
    stage = {
      tenantId: data.tenant_id,
      runId: data.run_id,
      phase: data.phase,
      attempt: data.attempt,
      role: data.role,
      status: null,
      startedAt: null,
      finishedAt: null,
      traceId: null,
      promptTokens: 0n,
      completionTokens: 0n,
      cachedTokens: 0n,
      costMicros: 0n,
      llmCalls: 0,
    };
    stages.set(key, stage);
  }
  return stage;
}

/** The winner of two ranked values: higher rank, then later time. Ties keep the current value. */
export function higher<T>(current: Ranked<T> | null, next: Ranked<T>): Ranked<T> {
  if (!current) return next;
  if (next.rank !== current.rank) return next.rank > current.rank ? next : current;
  return next.at.getTime() > current.at.getTime() ? next : current;
}

function earliest(a: Date | null, b: Date): Date {
  return a && a.getTime() <= b.getTime() ? a : b;
}

function latest(a: Date | null, b: Date): Date {
  return a && a.getTime() >= b.getTime() ? a : b;
}

/** The trace id of a W3C traceparent header ("00-<trace>-<span>-<flags>"). */
export function traceIdOf(traceparent: string | undefined): string | null {
  const match = traceparent ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent) : null;
  return match?.[1] ?? null;
}
