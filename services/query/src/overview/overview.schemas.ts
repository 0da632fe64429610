import { z } from 'zod';
import { Id } from '../http/validation';

/** Answers of the dashboards (Admin, Tenant and Project overviews; docs/query.md "Dashboards"). */

const usd = z.string().describe('decimal USD, exact to the micro-dollar');
const tokens = z.number().optional().describe('absent when the tenant shows Owners only $ and time');

export const AdminOverviewQuery = z.object({
  tenant_id: Id.optional(),
  model: Id.optional(),
  phase: Id.optional(),
});
export type AdminOverviewQuery = z.output<typeof AdminOverviewQuery>;

export const Failure = z.object({
  tenant_id: z.string(),
  project_id: z.string().nullable(),
  run_id: z.string(),
  run_status: z.string().nullable(),
  phase: z.string(),
  role: z.string().nullable(),
  why_blocked: z.string().describe('the failure reason'),
  artifact_ref: z.string().nullable().describe('path@version of the failing (or latest) artifact of the phase'),
  artifact_url: z
    .string()
    .nullable()
    .describe('ARTIFACT_URL_TEMPLATE filled in; null when its base URL is not configured'),
  run_url: z.string().describe("the run's console page on this origin (/runs/{run_id})"),
  trace_id: z.string().nullable().optional().describe('only for OP and Admin'),
  trace_url: z.string().nullable().optional().describe('only for OP and Admin'),
  first_seen: z.string(),
  last_seen: z.string(),
  count: z.number(),
});

const Stuck = z.object({
  tenant_id: z.string(),
  project_id: z.string(),
  running_runs: z.number(),
  silent_since: z.string(),
  silent_minutes: z.number(),
  phases: z.array(z.string()),
  run_ids: z.array(z.string()),
});

const CapApproaching = z.object({
  scope: z.enum(['run', 'tenant']),
  tenant_id: z.string(),
  project_id: z.string().nullable(),
  run_id: z.string().nullable(),
  cap: z.string(),
  used: z.string(),
  limit: z.string(),
  ratio: z.number(),
});

const TrendDay = z.object({
  day: z.string(),
  input_tokens: tokens,
  output_tokens: tokens,
  total_tokens: tokens,
  cost_usd: usd,
});

const TrendTotals = z.object({ days: z.number(), total_tokens: tokens, cost_usd: usd });

export const AdminOverview = z.object({
  day: z.string().describe('today, UTC'),
  filters: AdminOverviewQuery,
  spend_today: z.object({
    total_usd: usd,
    by_model: z.array(z.object({ model: z.string(), provider: z.string(), cost_usd: usd, calls: z.number(), tokens })),
    by_tenant: z.array(z.object({ tenant_id: z.string(), cost_usd: usd, llm_cost_usd: usd, external_cost_usd: usd })),
  }),
  last_failures: z.array(Failure),
  stuck_projects: z.array(Stuck),
  caps_approaching: z.array(CapApproaching),
  trends: z.object({
    days: z.array(TrendDay).describe('the last 30 UTC days, oldest first'),
    last_7_days: TrendTotals,
    last_30_days: TrendTotals,
  }),
  notes: z.array(z.string()).describe('what a filter could not apply to, and why'),
});
export type AdminOverview = z.output<typeof AdminOverview>;

export const TenantOverview = z.object({
  tenant_id: z.string(),
  time_zone: z.string().describe("the tenant's IANA time zone, for showing times (UTC if unknown)"),
  period: z.object({ from_day: z.string(), to_day: z.string(), days: z.number() }),
  time_to_gate: z.array(
    z.object({
      phase: z.string(),
      runs: z.number(),
      avg_ms: z.number().nullable(),
      p50_ms: z.number().nullable(),
      p95_ms: z.number().nullable(),
    }),
  ),
  recent_ships: z.array(
    z.object({
      time: z.string(),
      run_id: z.string(),
      project_id: z.string().nullable(),
      artifact_path: z.string().nullable(),
      artifact_version: z.string().nullable(),
      partial: z.boolean(),
    }),
  ),
  costs: z.object({ today_usd: usd, last_7_days_usd: usd, last_30_days_usd: usd }),
  runs: z.object({ total: z.number(), succeeded: z.number(), failed: z.number(), running: z.number() }),
  proofs: z.object({
    due: z.number(),
    completed: z.number(),
    passed: z.number(),
    completion_rate: z.number().nullable().describe('passed / due'),
  }),
});
export type TenantOverview = z.output<typeof TenantOverview>;

export const ProjectOverviewQuery = z.object({ tenant_id: Id.optional().describe('Admin only') });
export type ProjectOverviewQuery = z.output<typeof ProjectOverviewQuery>;

export const ProjectOverview = z.object({
  tenant_id: z.string(),
  time_zone: z.string().describe("the tenant's IANA time zone, for showing times (UTC if unknown)"),
  project_id: z.string(),
  latest_run: z
    .object({ run_id: z.string(), status: z.string(), phase: z.string().nullable(), cost_usd: usd })
    .nullable(),
  phase_timeline: z.array(
    z.object({
      phase: z.string(),
      attempt: z.number(),
      role: z.string().nullable(),
      status: z.string(),
      started_at: z.string().nullable(),
      finished_at: z.string().nullable(),
      elapsed_ms: z.number().nullable(),
    }),
  ),
  artifact_heatmap: z
    .array(z.object({ phase: z.string(), version: z.string(), writes: z.number(), runs: z.number() }))
    .describe('artifact versions written per phase over the recent runs'),
  recent_runs: z.array(
    z.object({
      run_id: z.string(),
      status: z.string(),
      phase: z.string().nullable(),
      started_at: z.string().nullable(),
      cost_usd: usd,
    }),
  ),
  open_flags: z.array(Failure),
  next_action: z.object({
    action: z.string(),
    run_id: z.string().nullable(),
    phase: z.string().nullable(),
    reason: z.string(),
  }),
});
export type ProjectOverview = z.output<typeof ProjectOverview>;

const nullableUsd = usd.nullable();

export const TenantCaps = z.object({
  tenant_id: z.string(),
  available: z.boolean().describe("false: cost-cap's tables are not present, nothing below is known"),
  paused: z
    .object({ paused_at: z.string(), paused_by: z.string(), reason: z.string() })
    .nullable()
    .describe('null: admissions are not paused'),
  daily_cost: z
    .object({
      date: z.string().describe("the tenant's latest local day with a cap row"),
      limit_usd: nullableUsd.describe('the cap in force, raises included; null: no daily cap'),
      spent_usd: usd,
      remaining_usd: nullableUsd.describe('limit - spent, never below 0; null: no daily cap'),
      ratio: z.number().nullable(),
      blocked: z.boolean(),
    })
    .nullable()
    .describe('null: no spend recorded against a daily cap yet'),
  policy: z
    .object({
      daily_cost_usd: nullableUsd,
      run_max_tokens: z.number().nullable(),
      run_max_wall_time_s: z.number().nullable(),
      run_max_cost_usd: nullableUsd,
      run_max_external_usd: nullableUsd,
    })
    .nullable()
    .describe("the tenant's default caps; null: none configured"),
  raises: z.array(
    z.object({
      cap: z.string(),
      run_id: z.string().nullable(),
      limit: z.string().describe('in the cap unit: decimal USD, tokens or seconds'),
      actor: z.string(),
      reason: z.string(),
      created_at: z.string(),
      expires_at: z.string(),
    }),
  ),
});
export type TenantCaps = z.output<typeof TenantCaps>;
