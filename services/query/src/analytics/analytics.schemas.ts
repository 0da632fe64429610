import { z } from 'zod';
import { Id, Interval, Period } from '../http/validation';
import { COST_DIMENSIONS, USAGE_DIMENSIONS } from './analytics.repository';

const usd = z.string().describe('decimal USD, exact to the micro-dollar');
const tokens = z.number().optional().describe('absent when the tenant shows Owners only $ and time');

const Day = z.iso.date();
const Range = {
  period: Period.optional().describe('default 30d; at most 13 months (397d), e.g. 365d; not with from/to'),
  from: Day.optional().describe('first UTC day included (YYYY-MM-DD); default 29 days before to'),
  to: Day.optional().describe('last UTC day included (YYYY-MM-DD); default today'),
};

const PeriodOut = z.object({ from_day: z.string(), to_day: z.string(), days: z.number() });

export const CostsQuery = z.object({
  ...Range,
  group_by: z.enum(COST_DIMENSIONS).default('tenant').describe('agent is the role (planner, implementer, ...)'),
  interval: Interval.optional(),
  tenant_id: Id.optional().describe('Admin only: one tenant'),
});
export type CostsQuery = z.output<typeof CostsQuery>;

const CostFigures = z.object({
  cost_usd: usd.describe('llm_cost_usd + external_cost_usd'),
  llm_cost_usd: usd,
  external_cost_usd: usd,
  calls: z.number().describe('LLM calls'),
  input_tokens: tokens,
  output_tokens: tokens,
  cached_tokens: tokens,
});

export const CostRowOut = CostFigures.extend({
  bucket: z.string().nullable().describe('first day of the interval bucket; null without interval'),
  tenant_id: z.string().nullable().describe('set when grouping by tenant or project'),
  key: z.string().nullable().describe('the group; null: spend this dimension cannot attribute'),
});

export const CostsAnswer = z.object({
  period: PeriodOut,
  group_by: z.enum(COST_DIMENSIONS),
  interval: Interval.nullable(),
  tenant_id: z.string().nullable().describe('null: every tenant'),
  source: z.string().describe('where the LLM figures come from'),
  rows: z.array(CostRowOut),
  totals: CostFigures,
});
export type CostsAnswer = z.output<typeof CostsAnswer>;

export const UsageQuery = z.object({
  ...Range,
  group_by: z.enum(USAGE_DIMENSIONS).default('model'),
  kind: z.enum(['llm', 'tool']).optional().describe('LLM calls or tool/MCP calls; both by default'),
  interval: Interval.optional(),
  tenant_id: Id.optional().describe('Admin only: one tenant'),
});
export type UsageQuery = z.output<typeof UsageQuery>;

const UsageFigures = z.object({
  calls: z.number(),
  successes: z.number(),
  failures: z.number(),
  error_rate: z.number().nullable(),
  avg_latency_ms: z.number().nullable(),
  p50_latency_ms: z.number().nullable().describe('median latency (docs/query.md "Percentiles")'),
  p95_latency_ms: z
    .number()
    .nullable()
    .describe('95th percentile latency from the rollups\' DDSketch, within 1 % (docs/query.md "Percentiles")'),
  p99_latency_ms: z.number().nullable().describe('99th percentile latency (docs/query.md "Percentiles")'),
  latency_percentiles: z
    .enum(['sketch', 'histogram'])
    .nullable()
    .describe("'sketch': DDSketch, within 1 %; 'histogram': bucket upper bound (rows from before the sketch)"),
  input_tokens: tokens,
  output_tokens: tokens,
  cached_tokens: tokens,
  cost_usd: usd,
  unpriced_calls: z.number(),
});

export const UsageAnswer = z.object({
  period: PeriodOut,
  group_by: z.enum(USAGE_DIMENSIONS),
  kind: z.enum(['llm', 'tool']).nullable(),
  interval: Interval.nullable(),
  tenant_id: z.string().nullable(),
  rows: z.array(
    UsageFigures.extend({
      bucket: z.string().nullable(),
      tenant_id: z.string().nullable(),
      key: z.string().nullable(),
    }),
  ),
  totals: UsageFigures,
});
export type UsageAnswer = z.output<typeof UsageAnswer>;

export const MetricsQuery = z.object({
  ...Range,
  tenant_id: Id.optional().describe('Admin only: one tenant'),
});
export type MetricsQuery = z.output<typeof MetricsQuery>;

const WithinTarget = z
  .object({
    advanced: z.number().describe('(run, phase) pairs that passed, in tenants with a target for the phase'),
    within: z.number().describe('of those, pairs whose time-to-gate was at most the target'),
    rate: z.number().nullable().describe('within / advanced (null: no target applies)'),
  })
  .describe('share of phases advancing within their target time');

export const PhaseMetrics = z.object({
  phase: z.string(),
  runs: z.number().describe('runs that entered the phase'),
  time_to_gate_ms: z.object({ avg: z.number().nullable(), p50: z.number().nullable(), p95: z.number().nullable() }),
  success_rate: z.number().nullable().describe('(run, phase) whose last attempt passed / whose last attempt ended'),
  retries: z.number().describe('attempts beyond the first'),
  retries_per_run: z.number().nullable(),
  validation_failure_rate: z.number().nullable().describe('failed attempts / ended attempts'),
  target_ms: z.number().nullable().describe("the tenant's target time-to-gate (null: none, or every tenant)"),
  within_target: WithinTarget,
});

export const MetricsAnswer = z.object({
  period: PeriodOut,
  tenant_id: z.string().nullable(),
  phases: z.array(PhaseMetrics),
  validation_failure_rate: z.number().nullable(),
  phases_within_target: WithinTarget,
  runs: z.object({
    total: z.number(),
    succeeded: z.number(),
    failed: z.number(),
    running: z.number(),
    human_intervention_rate: z.number().nullable().describe('share of runs with a user_override'),
    tokens_per_run: z.number().nullable().optional(),
    cost_per_run_usd: usd.nullable(),
  }),
  daily_cost: z.array(z.object({ day: z.string(), tenant_id: z.string(), cost_usd: usd })),
  error_rate_per_agent: z.array(
    z.object({ agent: z.string(), calls: z.number(), failures: z.number(), error_rate: z.number().nullable() }),
  ),
  queue_latency: z.object({ tasks: z.number(), avg_ms: z.number().nullable(), p95_ms: z.number().nullable() }),
  mttr: z.object({
    failed_runs: z.number(),
    recovered: z.number(),
    mean_ms: z.number().nullable().describe('failure to the next successful run of the same project'),
  }),
  cost_per_successful_advance_usd: usd.nullable().describe('cost of the runs / phases passed'),
  cap_interventions: z.number().describe('cap_hit events'),
  proof_completion_rate: z.number().nullable(),
});
export type MetricsAnswer = z.output<typeof MetricsAnswer>;
