import { Inject, Injectable } from '@nestjs/common';
import {
  CAP_APPROACHING_RATIO,
  Clock,
  dayRange,
  formatUsd,
  isoDay,
  nextAction,
  ratioOf,
  runCapUses,
  type RunCapsInput,
} from '@agentmeter/domain';
import { type Caller, requireTenant, tenantOf } from '../auth/caller';
import { AnalyticsRepository } from '../analytics/analytics.repository';
import { QueryConfig } from '../config';
import { AmbiguousRunError } from '../runs/runs.service';
import { NotFoundError } from '@agentmeter/http';
import { LinksService } from '../links/links.service';
import { TenantsRepository } from '../tenants/tenants.repository';
import { type View, ViewPolicy } from '../tenants/view.policy';
import { CapsRepository } from './caps.repository';
import { OverviewRepository, type FailureRow } from './overview.repository';
import type {
  AdminOverview,
  AdminOverviewQuery,
  ProjectOverview,
  ProjectOverviewQuery,
  TenantCaps,
  TenantOverview,
} from './overview.schemas';

const FAILURES = 10;
const STUCK = 10;
const CAP_RUNS_SCANNED = 5_000;
const SHIPS = 10;
const PROJECT_RUNS = 20;

/** The dashboards (docs/query.md "Dashboards"): Admin Overview, Tenant Overview (Owner), Project Overview. */
@Injectable()
export class OverviewService {
  constructor(
    private readonly repository: OverviewRepository,
    private readonly analytics: AnalyticsRepository,
    private readonly caps: CapsRepository,
    private readonly views: ViewPolicy,
    private readonly tenants: TenantsRepository,
    private readonly links: LinksService,
    private readonly clock: Clock,
    @Inject(QueryConfig) private readonly config: QueryConfig,
  ) {}

  async admin(caller: Caller, query: AdminOverviewQuery): Promise<AdminOverview> {
    const now = this.clock.now();
    const filter = { tenantId: tenantOf(caller, query.tenant_id), model: query.model, phase: query.phase };
    const view: View = filter.tenantId
      ? await this.views.viewOf(caller.principal, filter.tenantId)
      : { traces: caller.principal.roles.has('admin') || caller.principal.roles.has('op'), tokens: true };
    const today = isoDay(now);
    const month = dayRange(now, 30);
    const stuckSince = new Date(now.getTime() - this.config.QUERY_STUCK_AFTER_MINUTES * 60_000);
    const [byModel, byTenant, failures, stuck, capRuns, tenantCaps, trend] = await Promise.all([
      this.repository.spendByModel(today, filter),
      this.repository.spendByTenant(today, filter),
      this.repository.lastFailures(filter, FAILURES),
      this.repository.stuckProjects(filter, stuckSince, STUCK),
      this.repository.runningRunsWithCaps(filter, CAP_RUNS_SCANNED),
      this.caps.tenantCapsApproaching(filter.tenantId, today, CAP_APPROACHING_RATIO),
      this.repository.dailyTrend(month.fromDay, month.toDay, filter),
    ]);

    const runCaps = capRuns.flatMap((run) =>
      runCapUses(
        run.caps as RunCapsInput,
        {
          tokens: BigInt(run.tokens),
          costMicros: BigInt(run.cost_micros),
          externalMicros: BigInt(run.external_micros),
          startedAt: run.started_at,
        },
        now,
      )
        .filter((use) => use.ratio >= CAP_APPROACHING_RATIO)
        .map((use) => ({
          scope: 'run' as const,
          tenant_id: run.tenant_id,
          project_id: run.project_id,
          run_id: run.run_id,
          ...use,
        })),
    );

    const days = trend.map((row) => {
      const input = Number(row.input_tokens);
      const output = Number(row.output_tokens);
      return {
        day: row.day,
        ...(view.tokens ? { input_tokens: input, output_tokens: output, total_tokens: input + output } : {}),
        micros: BigInt(row.llm_micros) + BigInt(row.external_micros),
        tokens: input + output,
      };
    });
    const totalOf = (n: number) => {
      const last = days.slice(-n);
      return {
        days: n,
        ...(view.tokens ? { total_tokens: last.reduce((s, d) => s + d.tokens, 0) } : {}),
        cost_usd: formatUsd(last.reduce((s, d) => s + d.micros, 0n)),
      };
    };
    const tenantRows = byTenant.map((row) => {
      const llm = BigInt(row.llm_micros);
      const ext = BigInt(row.external_micros);
      return {
        tenant_id: row.tenant_id,
        cost_usd: formatUsd(llm + ext),
        llm_cost_usd: formatUsd(llm),
        external_cost_usd: formatUsd(ext),
      };
    });
    const notes: string[] = [];
    if (query.phase) {
      notes.push(
        'phase filters failures, stuck projects and caps; spend and trends come from day rollups, which are not kept per phase',
      );
    }
    if (query.model)
      notes.push('with a model filter, spend and trends leave out external charges (they have no model)');
    if (!tenantCaps.available) notes.push(tenantCaps.note);

    return {
      day: today,
      filters: query,
      spend_today: {
        total_usd: formatUsd(byTenant.reduce((s, r) => s + BigInt(r.llm_micros) + BigInt(r.external_micros), 0n)),
        by_model: byModel.map((row) => ({
          model: row.model,
          provider: row.provider,
          cost_usd: formatUsd(BigInt(row.micros)),
          calls: Number(row.calls),
          ...(view.tokens ? { tokens: Number(row.tokens) } : {}),
        })),
        by_tenant: tenantRows,
      },
      last_failures: failures.map((row) => this.failure(row, view)),
      stuck_projects: stuck.map((row) => ({
        tenant_id: row.tenant_id,
        project_id: row.project_id,
        running_runs: row.running_runs,
        silent_since: row.oldest_event_at.toISOString(),
        silent_minutes: Math.floor((now.getTime() - row.oldest_event_at.getTime()) / 60_000),
        phases: row.phases ?? [],
        run_ids: row.run_ids,
      })),
      caps_approaching: [...tenantCaps.rows, ...runCaps].sort((a, b) => b.ratio - a.ratio),
      trends: {
        days: days.map(({ micros, tokens: _tokens, ...day }) => ({ ...day, cost_usd: formatUsd(micros) })),
        last_7_days: totalOf(7),
        last_30_days: totalOf(30),
      },
      notes,
    };
  }

  /** The tenant's caps in force and remaining daily budget (cost-cap's tables, read only). */
  async tenantCaps(caller: Caller, tenantId: string): Promise<TenantCaps> {
    const id = requireTenant(caller, tenantId);
    if (!(await this.repository.tenantExists(id))) throw new NotFoundError(`tenant ${tenantId} not found`);
    const rows = await this.caps.current(id);
    if (!rows) return { tenant_id: id, available: false, paused: null, daily_cost: null, policy: null, raises: [] };
    const usdOf = (micros: string | null) => (micros === null ? null : formatUsd(BigInt(micros)));
    const numberOf = (value: string | null) => (value === null ? null : Number(value));
    const { day, policy, pause } = rows;
    const limit = day?.limit_micros == null ? null : BigInt(day.limit_micros);
    const spent = day ? BigInt(day.spent_micros) : 0n;
    return {
      tenant_id: id,
      available: true,
      paused: pause
        ? { paused_at: pause.paused_at.toISOString(), paused_by: pause.paused_by, reason: pause.reason }
        : null,
      daily_cost: day
        ? {
            date: day.date,
            limit_usd: limit === null ? null : formatUsd(limit),
            spent_usd: formatUsd(spent),
            remaining_usd: limit === null ? null : formatUsd(spent >= limit ? 0n : limit - spent),
            ratio: limit === null ? null : ratioOf(spent, limit),
            blocked: day.blocked,
          }
        : null,
      policy: policy
        ? {
            daily_cost_usd: usdOf(policy.daily_cap_micros),
            run_max_tokens: numberOf(policy.run_max_tokens),
            run_max_wall_time_s: numberOf(policy.run_max_wall_time_s),
            run_max_cost_usd: usdOf(policy.run_max_cost_micros),
            run_max_external_usd: usdOf(policy.run_max_external_micros),
          }
        : null,
      raises: rows.raises.map((r) => ({
        cap: r.target,
        run_id: r.run_id,
        limit: r.target === 'run_tokens' || r.target === 'run_wall_time' ? r.value : formatUsd(BigInt(r.value)),
        actor: r.actor,
        reason: r.reason,
        created_at: r.created_at.toISOString(),
        expires_at: r.expires_at.toISOString(),
      })),
    };
  }

  /** The tenant's IANA time zone (tenants.time_zone), so pages show times where the tenant is; UTC if unknown. */
  private async timeZoneOf(tenantId: string): Promise<string> {
    return (await this.tenants.settings(tenantId))?.time_zone ?? 'UTC';
  }

  async tenant(caller: Caller, tenantId: string): Promise<TenantOverview> {
    const id = requireTenant(caller, tenantId);
    if (!(await this.repository.tenantExists(id))) throw new NotFoundError(`tenant ${tenantId} not found`);
    const now = this.clock.now();
    const month = dayRange(now, 30);
    const window = { tenantId: id, ...month };
    const [phases, ships, daily, runs, counts, timeZone] = await Promise.all([
      this.analytics.phaseStats(window),
      this.repository.recentShips(id, SHIPS),
      this.analytics.dailyCost(window),
      this.analytics.runStats(window),
      this.analytics.eventCounts(window),
      this.timeZoneOf(id),
    ]);
    const sumDays = (n: number) =>
      formatUsd(daily.filter((d) => d.day >= dayRange(now, n).fromDay).reduce((s, d) => s + BigInt(d.micros), 0n));
    return {
      tenant_id: id,
      time_zone: timeZone,
      period: { from_day: month.fromDay, to_day: month.toDay, days: 30 },
      time_to_gate: phases.map((p) => ({
        phase: p.phase,
        runs: p.passed_pairs,
        avg_ms: round(p.ttg_avg_ms),
        p50_ms: round(p.ttg_p50_ms),
        p95_ms: round(p.ttg_p95_ms),
      })),
      recent_ships: ships.map((ship) => ({
        time: ship.time.toISOString(),
        run_id: ship.run_id,
        project_id: str(ship.payload.project_id),
        artifact_path: str(ship.payload.artifact_path),
        artifact_version: str(ship.payload.artifact_version),
        partial: ship.payload.partial === true,
      })),
      costs: { today_usd: sumDays(1), last_7_days_usd: sumDays(7), last_30_days_usd: sumDays(30) },
      runs: { total: runs.runs, succeeded: runs.succeeded, failed: runs.failed, running: runs.running },
      proofs: {
        due: counts.proofs_due,
        completed: counts.proofs_completed,
        passed: counts.proofs_passed,
        completion_rate:
          counts.proofs_due === 0 ? null : Math.round((counts.proofs_passed / counts.proofs_due) * 10_000) / 10_000,
      },
    };
  }

  async project(caller: Caller, projectId: string, query: ProjectOverviewQuery): Promise<ProjectOverview> {
    const tenantId = await this.projectTenant(caller, projectId, query.tenant_id);
    const view = await this.views.viewOf(caller.principal, tenantId);
    const runs = await this.repository.projectRuns(tenantId, projectId, PROJECT_RUNS);
    const latest = runs[0];
    const [attempts, heatmap, flags, timeZone] = await Promise.all([
      latest ? this.repository.attempts(tenantId, latest.run_id) : Promise.resolve([]),
      this.repository.artifactVersions(tenantId, runs),
      this.repository.openFlags(
        tenantId,
        runs.map((r) => r.run_id),
        FAILURES,
      ),
      this.timeZoneOf(tenantId),
    ]);
    const latestAttempt = [...attempts].reverse().find((a) => a.phase === latest?.phase);
    const latestFlag = flags.find((f) => f.run_id === latest?.run_id);
    return {
      tenant_id: tenantId,
      time_zone: timeZone,
      project_id: projectId,
      latest_run: latest
        ? {
            run_id: latest.run_id,
            status: latest.status,
            phase: latest.phase,
            cost_usd: formatUsd(BigInt(latest.cost_micros)),
          }
        : null,
      phase_timeline: attempts.map((a) => ({
        phase: a.phase,
        attempt: a.attempt,
        role: a.role,
        status: a.status,
        started_at: a.started_at?.toISOString() ?? null,
        finished_at: a.finished_at?.toISOString() ?? null,
        elapsed_ms: a.started_at && a.finished_at ? a.finished_at.getTime() - a.started_at.getTime() : null,
      })),
      artifact_heatmap: heatmap,
      recent_runs: runs.map((r) => ({
        run_id: r.run_id,
        status: r.status,
        phase: r.phase,
        started_at: r.started_at?.toISOString() ?? null,
        cost_usd: formatUsd(BigInt(r.cost_micros)),
      })),
      open_flags: flags.map((row) => this.failure(row, view)),
      next_action: nextAction({
        latestRun: latest
          ? {
              runId: latest.run_id,
              status: latest.status,
              phase: latest.phase,
              stageStatus: latestAttempt?.status ?? null,
              lastEventAt: latest.last_event_at,
              error: latest.error,
            }
          : null,
        lastFailure: latestFlag?.reason ?? null,
        stuckAfterMs: this.config.QUERY_STUCK_AFTER_MINUTES * 60_000,
        now: this.clock.now(),
      }),
    };
  }

  private async projectTenant(caller: Caller, projectId: string, requested: string | undefined): Promise<string> {
    const scoped = tenantOf(caller, requested);
    const own = await this.repository.projectTenants(projectId, scoped ?? caller.principal.tenantId);
    if (own.length > 0) return own[0]!;
    if (scoped !== null) throw new NotFoundError(`project ${projectId} not found`);
    const any = await this.repository.projectTenants(projectId, null);
    if (any.length === 0) throw new NotFoundError(`project ${projectId} not found`);
    if (any.length > 1)
      throw new AmbiguousRunError(`project id ${projectId} exists in several tenants: pass tenant_id`);
    return any[0]!;
  }

  private failure(row: FailureRow, view: View): AdminOverview['last_failures'][number] {
    const artifact = row.artifact_ref || row.last_artifact || null;
    const failure: AdminOverview['last_failures'][number] = {
      tenant_id: row.tenant_id,
      project_id: row.project_id,
      run_id: row.run_id,
      run_status: row.run_status,
      phase: row.phase,
      role: row.role,
      why_blocked: row.reason,
      artifact_ref: artifact,
      artifact_url: artifact ? this.links.artifact(row.run_id, artifact) : null,
      run_url: this.links.runPage(row.run_id),
      first_seen: row.first_seen.toISOString(),
      last_seen: row.last_seen.toISOString(),
      count: row.count,
    };
    if (view.traces) {
      failure.trace_id = row.trace_id;
      failure.trace_url = this.links.trace(row.trace_id);
    }
    return failure;
  }
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
