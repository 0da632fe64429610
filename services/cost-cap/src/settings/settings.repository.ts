import { Injectable } from '@nestjs/common';
import type { CapOverride, CapPolicy, OverrideTarget, RunCapValues } from '@agentmeter/domain';
import { CostCapDatabase, type Tx } from '../db/database';

export interface TenantPause {
  pausedAt: Date;
  pausedBy: string;
  reason: string;
}

export interface TenantSettings {
  tenantId: string;
  timeZone: string;
  tenant: CapPolicy | null;
  projects: ReadonlyMap<string, CapPolicy>;
  /** Raises not revoked and not expired when loaded; whether one is in force is decided per call. */
  overrides: readonly CapOverride[];
  ladder: ReadonlyMap<string, string>;
  pause: TenantPause | null;
}

export interface PublisherFreeze {
  playbook: string;
  frozenAt: Date;
  frozenBy: string;
  reason: string;
}

export interface RunRecord {
  tenantId: string;
  runId: string;
  projectId: string;
  playbook: string | null;
  caps: RunCapValues | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  stoppedReason: string | null;
}

interface PolicyRow {
  project_id: string;
  daily_cap_micros: string | null;
  run_max_tokens: string | null;
  run_max_wall_time_s: string | null;
  run_max_cost_micros: string | null;
  run_max_external_micros: string | null;
}

export interface OverrideRow {
  override_id: string;
  tenant_id: string;
  target: OverrideTarget;
  run_id: string | null;
  value: string;
  actor: string;
  reason: string;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

interface RunRow {
  tenant_id: string;
  run_id: string;
  project_id: string;
  playbook: string | null;
  caps: Record<string, string | null> | null;
  started_at: Date | null;
  finished_at: Date | null;
  stopped_reason: string | null;
}

/** SQL: the tighter of the stored and the new caps of a run, key by key (an absent cap loses to any). */
export const TIGHTEST_CAPS = `jsonb_build_object(${['tokens', 'wall_time_s', 'cost_micros', 'external_micros']
  .map(
    (key) => `'${key}', CASE WHEN cost_runs.caps->>'${key}' IS NULL THEN EXCLUDED.caps->>'${key}'
      WHEN EXCLUDED.caps->>'${key}' IS NULL THEN cost_runs.caps->>'${key}'
      ELSE LEAST((cost_runs.caps->>'${key}')::numeric, (EXCLUDED.caps->>'${key}')::numeric)::text END`,
  )
  .join(', ')})`;

/** A tenant's settings hold the raises that expired less than this before the time they were loaded for. */
export const EXPIRED_RAISES_KEPT_MS = 60_000;

const big = (value: string | null | undefined) => (value === null || value === undefined ? null : BigInt(value));

/** Reads of the caps configuration. Every method on tenant-owned rows takes the tenant. */
@Injectable()
export class SettingsRepository {
  constructor(private readonly db: CostCapDatabase) {}

  /**
   * @param now the service clock's time: raises that expired more than a minute before it are not loaded
   *   (PostgreSQL's now() is not the service's time: tests and replays pin the clock).
   */
  async loadTenant(tenantId: string, now: Date): Promise<TenantSettings> {
    const [tenant] = await this.db.readSettings<{ time_zone: string }>(
      `SELECT time_zone FROM tenants WHERE tenant_id = $1`,
      [tenantId],
    );
    const policies = await this.db.readSettings<PolicyRow>(
      `SELECT project_id, daily_cap_micros, run_max_tokens, run_max_wall_time_s, run_max_cost_micros,
              run_max_external_micros
         FROM cap_policies WHERE tenant_id = $1`,
      [tenantId],
    );
    const overrides = await this.db.readSettings<OverrideRow>(
      `SELECT * FROM cap_overrides
        WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
      [tenantId, new Date(now.getTime() - EXPIRED_RAISES_KEPT_MS)],
    );
    const ladder = await this.db.readSettings<{ model: string; cheaper_model: string }>(
      `SELECT model, cheaper_model FROM model_ladders WHERE tenant_id = $1`,
      [tenantId],
    );
    const [pause] = await this.db.readSettings<{ paused_at: Date; paused_by: string; reason: string }>(
      `SELECT paused_at, paused_by, reason FROM tenant_pauses WHERE tenant_id = $1`,
      [tenantId],
    );
    const projects = new Map<string, CapPolicy>();
    let tenantPolicy: CapPolicy | null = null;
    for (const row of policies) {
      if (row.project_id === '') tenantPolicy = policyOf(row);
      else projects.set(row.project_id, policyOf(row));
    }
    return {
      tenantId,
      timeZone: tenant?.time_zone ?? 'UTC',
      tenant: tenantPolicy,
      projects,
      overrides: overrides.map(overrideOf),
      ladder: new Map(ladder.map((step) => [step.model, step.cheaper_model])),
      pause: pause ? { pausedAt: pause.paused_at, pausedBy: pause.paused_by, reason: pause.reason } : null,
    };
  }

  /** Freezes are per playbook, across tenants (a playbook is shared by every tenant that runs it). */
  async loadFreezesOfAllPlaybooks(): Promise<Map<string, PublisherFreeze>> {
    const rows = await this.db.readSettings<{ playbook: string; frozen_at: Date; frozen_by: string; reason: string }>(
      `SELECT playbook, frozen_at, frozen_by, reason FROM publisher_freezes`,
    );
    return new Map(
      rows.map((row) => [
        row.playbook,
        { playbook: row.playbook, frozenAt: row.frozen_at, frozenBy: row.frozen_by, reason: row.reason },
      ]),
    );
  }

  /** Runs started and still going (not finished, not stopped), of every tenant: their wall-time timers. */
  async runningRunsOfAllTenants(): Promise<RunRecord[]> {
    const rows = await this.db.query<RunRow>(
      `SELECT * FROM cost_runs WHERE finished_at IS NULL AND stopped_reason IS NULL AND started_at IS NOT NULL`,
    );
    return rows.map(runOf);
  }

  async findRun(tenantId: string, runId: string): Promise<RunRecord | null> {
    const [row] = await this.db.readSettings<RunRow>(`SELECT * FROM cost_runs WHERE tenant_id = $1 AND run_id = $2`, [
      tenantId,
      runId,
    ]);
    return row ? runOf(row) : null;
  }

  /** Records caps a run declared with an admission request; they only ever tighten what is stored. */
  async mergeRunCaps(tenantId: string, runId: string, projectId: string, caps: RunCapValues, at: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO cost_runs (tenant_id, run_id, project_id, caps, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, run_id) DO UPDATE SET caps = ${TIGHTEST_CAPS}, updated_at = EXCLUDED.updated_at`,
      [tenantId, runId, projectId, JSON.stringify(capsJson(caps)), at],
    );
  }
}

function policyOf(row: PolicyRow): CapPolicy {
  return {
    dailyCostMicros: big(row.daily_cap_micros),
    run: {
      tokens: big(row.run_max_tokens),
      wallTimeS: big(row.run_max_wall_time_s),
      costMicros: big(row.run_max_cost_micros),
      externalMicros: big(row.run_max_external_micros),
    },
  };
}

function overrideOf(row: OverrideRow): CapOverride {
  return {
    id: row.override_id,
    target: row.target,
    runId: row.run_id,
    value: BigInt(row.value),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    actor: row.actor,
    reason: row.reason,
  };
}

function runOf(row: RunRow): RunRecord {
  return {
    tenantId: row.tenant_id,
    runId: row.run_id,
    projectId: row.project_id,
    playbook: row.playbook,
    caps: row.caps
      ? {
          tokens: big(row.caps.tokens),
          wallTimeS: big(row.caps.wall_time_s),
          costMicros: big(row.caps.cost_micros),
          externalMicros: big(row.caps.external_micros),
        }
      : null,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    stoppedReason: row.stopped_reason,
  };
}

/** cost_runs.caps: the run's own caps as integer strings (micros, tokens, seconds). */
export function capsJson(caps: RunCapValues): Record<string, string | null> {
  return {
    tokens: caps.tokens?.toString() ?? null,
    wall_time_s: caps.wallTimeS?.toString() ?? null,
    cost_micros: caps.costMicros?.toString() ?? null,
    external_micros: caps.externalMicros?.toString() ?? null,
  };
}

export type { Tx };
