import { Injectable } from '@nestjs/common';
import {
  averageMicros,
  Clock,
  formatUsd,
  LATENCY_BUCKETS_MS,
  percentileFromBuckets,
  share,
  sketchCount,
  sketchQuantile,
} from '@agentmeter/domain';
import { type Caller, tenantOf } from '../auth/caller';
import { Limits } from '../http/limits';
import { type View, ViewPolicy } from '../tenants/view.policy';
import { AnalyticsRepository, type UsageRow, type Window } from './analytics.repository';
import type {
  CostsAnswer,
  CostsQuery,
  MetricsAnswer,
  MetricsQuery,
  UsageAnswer,
  UsageQuery,
} from './analytics.schemas';

type UsageFigures = Omit<UsageAnswer['totals'], never>;

/** Cost attribution, usage rollups and the phase metrics, for one tenant or (Admin) all of them. */
@Injectable()
export class AnalyticsService {
  constructor(
    private readonly repository: AnalyticsRepository,
    private readonly views: ViewPolicy,
    private readonly limits: Limits,
    private readonly clock: Clock,
  ) {}

  async costs(caller: Caller, query: CostsQuery): Promise<CostsAnswer> {
    const { window, period, view } = await this.windowOf(caller, query);
    const rows = await this.repository.costs(window, query.group_by, query.interval ?? null);
    const totals = { llm: 0n, ext: 0n, calls: 0, input: 0, output: 0, cached: 0 };
    const out = rows.map((row) => {
      const llm = BigInt(row.llm_micros);
      const ext = BigInt(row.external_micros);
      totals.llm += llm;
      totals.ext += ext;
      totals.calls += Number(row.calls);
      totals.input += Number(row.input_tokens);
      totals.output += Number(row.output_tokens);
      totals.cached += Number(row.cached_tokens);
      return {
        bucket: row.bucket,
        tenant_id: row.tenant_id,
        key: row.key,
        ...costFigures(
          llm,
          ext,
          Number(row.calls),
          Number(row.input_tokens),
          Number(row.output_tokens),
          Number(row.cached_tokens),
          view,
        ),
      };
    });
    return {
      period,
      group_by: query.group_by,
      interval: query.interval ?? null,
      tenant_id: window.tenantId,
      source: query.group_by === 'phase' ? 'llm_calls (rollups are not kept per phase)' : 'usage_daily',
      rows: out,
      totals: costFigures(totals.llm, totals.ext, totals.calls, totals.input, totals.output, totals.cached, view),
    };
  }

  async usage(caller: Caller, query: UsageQuery): Promise<UsageAnswer> {
    const { window, period, view } = await this.windowOf(caller, query);
    const rows = await this.repository.usage(window, query.group_by, query.kind ?? null, query.interval ?? null);
    const total = rows.reduce<UsageRow | null>((sum, row) => (sum ? addUsage(sum, row) : { ...row }), null);
    return {
      period,
      group_by: query.group_by,
      kind: query.kind ?? null,
      interval: query.interval ?? null,
      tenant_id: window.tenantId,
      rows: rows.map((row) => ({
        bucket: row.bucket,
        tenant_id: row.tenant_id,
        key: row.key,
        ...usageFigures(row, view),
      })),
      totals: usageFigures(total ?? emptyUsage(), view),
    };
  }

  async metrics(caller: Caller, query: MetricsQuery): Promise<MetricsAnswer> {
    const { window, period, view } = await this.windowOf(caller, query);
    const [phases, runs, daily, agents, queue, recoveries, counts] = await Promise.all([
      this.repository.phaseStats(window),
      this.repository.runStats(window),
      this.repository.dailyCost(window),
      this.repository.agentErrors(window),
      this.repository.queueLatency(window),
      this.repository.recoveries(window),
      this.repository.eventCounts(window),
    ]);
    const failed = phases.reduce((sum, p) => sum + p.failed_attempts, 0);
    const finished = phases.reduce((sum, p) => sum + p.finished_attempts, 0);
    const passed = phases.reduce((sum, p) => sum + p.passed_pairs, 0);
    const recovered = recoveries.filter((r) => r.recovered_ms !== null).map((r) => r.recovered_ms!);
    const runCost = BigInt(runs.cost_micros);
    const perRunCost = averageMicros(runCost, runs.runs);
    const perAdvance = averageMicros(runCost, passed);
    return {
      period,
      tenant_id: window.tenantId,
      phases: phases.map((p) => ({
        phase: p.phase,
        runs: p.pairs,
        time_to_gate_ms: { avg: round(p.ttg_avg_ms), p50: round(p.ttg_p50_ms), p95: round(p.ttg_p95_ms) },
        success_rate: share(p.passed_pairs, p.finished_pairs),
        retries: p.retries,
        retries_per_run: share(p.retries, p.pairs),
        validation_failure_rate: share(p.failed_attempts, p.finished_attempts),
        target_ms: p.target_ms,
        within_target: {
          advanced: p.targeted_pairs,
          within: p.within_pairs,
          rate: share(p.within_pairs, p.targeted_pairs),
        },
      })),
      validation_failure_rate: share(failed, finished),
      phases_within_target: {
        advanced: phases.reduce((sum, p) => sum + p.targeted_pairs, 0),
        within: phases.reduce((sum, p) => sum + p.within_pairs, 0),
        rate: share(
          phases.reduce((sum, p) => sum + p.within_pairs, 0),
          phases.reduce((sum, p) => sum + p.targeted_pairs, 0),
        ),
      },
      runs: {
        total: runs.runs,
        succeeded: runs.succeeded,
        failed: runs.failed,
        running: runs.running,
        human_intervention_rate: share(runs.with_interventions, runs.runs),
        ...(view.tokens ? { tokens_per_run: runs.runs === 0 ? null : round(Number(runs.tokens) / runs.runs) } : {}),
        cost_per_run_usd: perRunCost === null ? null : formatUsd(perRunCost),
      },
      daily_cost: daily.map((d) => ({ day: d.day, tenant_id: d.tenant_id, cost_usd: formatUsd(BigInt(d.micros)) })),
      error_rate_per_agent: agents.map((a) => ({
        agent: a.agent,
        calls: Number(a.calls),
        failures: Number(a.failures),
        error_rate: share(Number(a.failures), Number(a.calls)),
      })),
      queue_latency: { tasks: queue.tasks, avg_ms: round(queue.avg_ms), p95_ms: round(queue.p95_ms) },
      mttr: {
        failed_runs: recoveries.length,
        recovered: recovered.length,
        mean_ms: recovered.length === 0 ? null : round(recovered.reduce((s, v) => s + v, 0) / recovered.length),
      },
      cost_per_successful_advance_usd: perAdvance === null ? null : formatUsd(perAdvance),
      cap_interventions: counts.cap_hits,
      proof_completion_rate: share(counts.proofs_passed, counts.proofs_due),
    };
  }

  private async windowOf(caller: Caller, query: { period?: string; from?: string; to?: string; tenant_id?: string }) {
    const { range, days } = this.limits.aggregateRange(query, this.clock.now());
    const tenantId = tenantOf(caller, query.tenant_id);
    const window: Window = { tenantId, ...range };
    const view: View = tenantId ? await this.views.viewOf(caller.principal, tenantId) : { traces: false, tokens: true }; // 'all' scope: Admin
    return { window, view, period: { from_day: range.fromDay, to_day: range.toDay, days } };
  }
}

function costFigures(
  llm: bigint,
  ext: bigint,
  calls: number,
  input: number,
  output: number,
  cached: number,
  view: View,
): CostsAnswer['totals'] {
  return {
    cost_usd: formatUsd(llm + ext),
    llm_cost_usd: formatUsd(llm),
    external_cost_usd: formatUsd(ext),
    calls,
    ...(view.tokens ? { input_tokens: input, output_tokens: output, cached_tokens: cached } : {}),
  };
}

function usageFigures(row: UsageRow, view: View): UsageFigures {
  const calls = Number(row.calls);
  const buckets = (row.latency_buckets ?? []).map(Number);
  // Percentiles from the rollups' DDSketch when it holds every call; rows written before the sketch existed
  // fall back to the histogram's bucket bound (docs/query.md "Percentiles").
  const fromSketch = calls > 0 && sketchCount(row.latency_sketch) === calls;
  const quantile = (q: number): number | null => {
    if (fromSketch) {
      const value = sketchQuantile(row.latency_sketch, q);
      return value === null ? null : Math.round(value * 100) / 100;
    }
    const bound = percentileFromBuckets(buckets, q);
    // The last bucket has no upper bound: report the largest finite bound's overflow as null.
    return bound === null || !Number.isFinite(bound) ? null : bound;
  };
  return {
    calls,
    successes: Number(row.successes),
    failures: Number(row.failures),
    error_rate: share(Number(row.failures), calls),
    avg_latency_ms: calls === 0 ? null : round(Number(row.total_latency_ms) / calls),
    p50_latency_ms: quantile(0.5),
    p95_latency_ms: quantile(0.95),
    p99_latency_ms: quantile(0.99),
    latency_percentiles: calls === 0 ? null : fromSketch ? 'sketch' : 'histogram',
    ...(view.tokens
      ? {
          input_tokens: Number(row.input_tokens),
          output_tokens: Number(row.output_tokens),
          cached_tokens: Number(row.cached_tokens),
        }
      : {}),
    cost_usd: formatUsd(BigInt(row.cost_micros)),
    unpriced_calls: Number(row.unpriced_calls),
  };
}

function addUsage(a: UsageRow, b: UsageRow): UsageRow {
  const add = (x: string, y: string) => (BigInt(x) + BigInt(y)).toString();
  return {
    ...a,
    calls: add(a.calls, b.calls),
    successes: add(a.successes, b.successes),
    failures: add(a.failures, b.failures),
    total_latency_ms: add(a.total_latency_ms, b.total_latency_ms),
    latency_buckets: a.latency_buckets.map((x, i) => add(x, b.latency_buckets[i] ?? '0')),
    latency_sketch: mergeSketches(a.latency_sketch, b.latency_sketch),
    input_tokens: add(a.input_tokens, b.input_tokens),
    output_tokens: add(a.output_tokens, b.output_tokens),
    cached_tokens: add(a.cached_tokens, b.cached_tokens),
    cost_micros: add(a.cost_micros, b.cost_micros),
    unpriced_calls: add(a.unpriced_calls, b.unpriced_calls),
  };
}

/** Adds DDSketch bins key by key, as jsonb_counts_add does in SQL. */
function mergeSketches(
  a: Record<string, number> | null,
  b: Record<string, number> | null,
): Record<string, number> | null {
  if (a === null || b === null) return a ?? b;
  const out = { ...a };
  for (const [key, n] of Object.entries(b)) out[key] = Number(out[key] ?? 0) + Number(n);
  return out;
}

function emptyUsage(): UsageRow {
  return {
    bucket: null,
    tenant_id: null,
    key: null,
    calls: '0',
    successes: '0',
    failures: '0',
    total_latency_ms: '0',
    latency_buckets: new Array<string>(LATENCY_BUCKETS_MS.length + 1).fill('0'),
    latency_sketch: null,
    input_tokens: '0',
    output_tokens: '0',
    cached_tokens: '0',
    cost_micros: '0',
    unpriced_calls: '0',
  };
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}
