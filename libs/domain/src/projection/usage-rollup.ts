import type { AgentEvent } from '@agentmeter/contracts';
import { addToSketch, type SketchBins } from './latency-sketch';

/**
 * Daily usage rollups (docs/decisions.md "Usage rollups keep a latency sketch"): per UTC day, tenant, project, role, model/provider (LLM
 * calls) or tool/MCP server (tool calls), and user. Built from the batch's new calls only, so adding them
 * to the stored rows keeps the rollups equal to a recomputation from the raw rows.
 */

/** Upper bounds (ms) of the latency histogram; a last bucket counts everything slower. p95 reads it. */
export const LATENCY_BUCKETS_MS = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000] as const;

export interface UsageKey {
  day: string; // YYYY-MM-DD (UTC)
  tenantId: string;
  projectId: string;
  role: string;
  kind: 'llm' | 'tool';
  model: string;
  provider: string;
  tool: string;
  mcpServer: string;
  userId: string;
}

export interface UsageDelta extends UsageKey {
  calls: number;
  successes: number;
  failures: number;
  totalLatencyMs: number;
  latencyBuckets: number[];
  /** DDSketch bins of the latencies (latency-sketch.ts): what percentiles are read from. */
  latencySketch: SketchBins;
  inputTokens: bigint;
  outputTokens: bigint;
  cachedTokens: bigint;
  costMicros: bigint;
  unpricedCalls: number;
}

export type CallPrice = (event: AgentEvent & { type: 'llm_call' }) => bigint | null;

/** The user of a call's run (run_started's user_id), when the call does not name one itself. */
export type RunUser = (tenantId: string, runId: string) => string | undefined;

function bucketOf(latencyMs: number): number {
  const index = LATENCY_BUCKETS_MS.findIndex((bound) => latencyMs <= bound);
  return index === -1 ? LATENCY_BUCKETS_MS.length : index;
}

/** The smallest bucket bound below which at least `q` of the calls fall (null when there are none). */
export function percentileFromBuckets(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] ?? 0;
    if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

/**
 * The user an LLM call counts for: its own user_id, else its run's. Tool calls carry no user (they cost nothing
 * in the event contract), so their usage rows keep an empty user.
 */
export function callUser(
  event: AgentEvent & { type: 'llm_call' | 'tool_call' },
  runUser?: RunUser,
): string | undefined {
  if (event.type !== 'llm_call') return undefined;
  return event.data.user_id ?? runUser?.(event.data.tenant_id, event.data.run_id);
}

export function rollupUsage(events: readonly AgentEvent[], priceOf: CallPrice, runUser?: RunUser): UsageDelta[] {
  const rows = new Map<string, UsageDelta>();
  for (const event of events) {
    if (event.type !== 'llm_call' && event.type !== 'tool_call') continue;
    const d = event.data;
    const key: UsageKey = {
      day: utcDay(event.time),
      tenantId: d.tenant_id,
      projectId: d.project_id,
      role: d.role,
      kind: event.type === 'llm_call' ? 'llm' : 'tool',
      model: event.type === 'llm_call' ? event.data.model : '',
      provider: event.type === 'llm_call' ? event.data.provider : '',
      tool: event.type === 'tool_call' ? event.data.tool : '',
      mcpServer: event.type === 'tool_call' ? (event.data.mcp_server ?? '') : '',
      userId: callUser(event, runUser) ?? '',
    };
    const id = usageKeyString(key);
    let row = rows.get(id);
    if (!row) {
      row = {
        ...key,
        calls: 0,
        successes: 0,
        failures: 0,
        totalLatencyMs: 0,
        latencyBuckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
        latencySketch: {},
        inputTokens: 0n,
        outputTokens: 0n,
        cachedTokens: 0n,
        costMicros: 0n,
        unpricedCalls: 0,
      };
      rows.set(id, row);
    }
    row.calls += 1;
    if (d.status === 'ok') row.successes += 1;
    else row.failures += 1;
    row.totalLatencyMs += d.latency_ms;
    row.latencyBuckets[bucketOf(d.latency_ms)]! += 1;
    addToSketch(row.latencySketch, d.latency_ms);
    if (event.type === 'llm_call') {
      row.inputTokens += BigInt(event.data.prompt_tokens);
      row.outputTokens += BigInt(event.data.completion_tokens);
      row.cachedTokens += BigInt(event.data.cached_tokens);
      const cost = priceOf(event);
      if (cost === null) row.unpricedCalls += 1;
      else row.costMicros += cost;
    }
  }
  return [...rows.values()].sort((a, b) => compare(usageKeyString(a), usageKeyString(b)));
}

/**
 * The second-level rollup (usage_model_daily): the LLM rows of a batch's usage deltas summed per UTC day,
 * tenant, model and provider, sorted by that key. Built from `rollupUsage`'s rows, not from the events, so
 * it costs one pass over a batch's (few) usage rows and adds up to the same sums as usage_daily.
 */
export interface ModelUsageDelta {
  day: string;
  tenantId: string;
  model: string;
  provider: string;
  calls: number;
  inputTokens: bigint;
  outputTokens: bigint;
  cachedTokens: bigint;
  costMicros: bigint;
  unpricedCalls: number;
}

export function rollupModelUsage(deltas: readonly UsageDelta[]): ModelUsageDelta[] {
  const rows = new Map<string, ModelUsageDelta>();
  for (const d of deltas) {
    if (d.kind !== 'llm') continue;
    const id = [d.day, d.tenantId, d.model, d.provider].join('\u0000');
    const row = rows.get(id);
    if (row) {
      row.calls += d.calls;
      row.inputTokens += d.inputTokens;
      row.outputTokens += d.outputTokens;
      row.cachedTokens += d.cachedTokens;
      row.costMicros += d.costMicros;
      row.unpricedCalls += d.unpricedCalls;
    } else {
      rows.set(id, {
        day: d.day,
        tenantId: d.tenantId,
        model: d.model,
        provider: d.provider,
        calls: d.calls,
        inputTokens: d.inputTokens,
        outputTokens: d.outputTokens,
        cachedTokens: d.cachedTokens,
        costMicros: d.costMicros,
        unpricedCalls: d.unpricedCalls,
      });
    }
  }
  return [...rows.entries()].sort(([a], [b]) => compare(a, b)).map(([, row]) => row);
}

function usageKeyString(key: UsageKey): string {
  return [
    key.day,
    key.tenantId,
    key.projectId,
    key.role,
    key.kind,
    key.model,
    key.provider,
    key.tool,
    key.mcpServer,
    key.userId,
  ].join('\u0000');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The UTC calendar day of an RFC 3339 time ("2026-11-25T23:30:00-05:00" is 2026-11-26). */
export function utcDay(time: string | Date): string {
  return (typeof time === 'string' ? new Date(time) : time).toISOString().slice(0, 10);
}
