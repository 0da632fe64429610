import { Injectable } from '@nestjs/common';
import type { OverrideTarget } from '@agentmeter/domain';
import { CostCapDatabase, type Tx } from '../db/database';
import type { OverrideRow } from '../settings/settings.repository';

export interface AuditEntry {
  tenantId: string | null;
  actor: string;
  action: string;
  target: string;
  old: unknown;
  new: unknown;
  reason: string;
  at: Date;
  expiresAt?: Date | null;
}

export interface AuditRow {
  audit_id: string;
  at: Date;
  tenant_id: string | null;
  actor: string;
  action: string;
  target: string;
  old_value: unknown;
  new_value: unknown;
  reason: string;
  expires_at: Date | null;
}

export interface PolicyValues {
  daily_cap_micros: string | null;
  run_max_tokens: string | null;
  run_max_wall_time_s: string | null;
  run_max_cost_micros: string | null;
  run_max_external_micros: string | null;
}

export const POLICY_COLUMNS: ReadonlyArray<keyof PolicyValues> = [
  'daily_cap_micros',
  'run_max_tokens',
  'run_max_wall_time_s',
  'run_max_cost_micros',
  'run_max_external_micros',
];

/** Writes of the overrides API. Every method on tenant-owned rows takes the tenant. */
@Injectable()
export class OverridesRepository {
  constructor(readonly db: CostCapDatabase) {}

  async audit(tx: Tx, entry: AuditEntry): Promise<string> {
    const [row] = await tx.query<{ audit_id: string }>(
      `INSERT INTO cap_audit (at, tenant_id, actor, action, target, old_value, new_value, reason, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING audit_id::text`,
      [
        entry.at,
        entry.tenantId,
        entry.actor,
        entry.action,
        entry.target,
        entry.old === undefined ? null : JSON.stringify(entry.old),
        entry.new === undefined ? null : JSON.stringify(entry.new),
        entry.reason,
        entry.expiresAt ?? null,
      ],
    );
    return row!.audit_id;
  }

  /** Newest first. (A bare `audit_id` in ORDER BY would be the text output column: "10" before "9".) */
  async listAudit(tenantId: string, limit: number): Promise<AuditRow[]> {
    return this.db.query<AuditRow>(
      `SELECT audit_id::text, at, tenant_id, actor, action, target, old_value, new_value, reason, expires_at
         FROM cap_audit WHERE tenant_id = $1 ORDER BY cap_audit.audit_id DESC LIMIT $2`,
      [tenantId, limit],
    );
  }

  async lockPolicy(tx: Tx, tenantId: string, projectId: string): Promise<PolicyValues | null> {
    const [row] = await tx.query<PolicyValues>(
      `SELECT ${POLICY_COLUMNS.join(', ')} FROM cap_policies WHERE tenant_id = $1 AND project_id = $2 FOR UPDATE`,
      [tenantId, projectId],
    );
    return row ?? null;
  }

  async savePolicy(
    tx: Tx,
    tenantId: string,
    projectId: string,
    values: PolicyValues,
    actor: string,
    at: Date,
  ): Promise<void> {
    await tx.query(
      `INSERT INTO cap_policies (tenant_id, project_id, ${POLICY_COLUMNS.join(', ')}, updated_by, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (tenant_id, project_id) DO UPDATE SET
         ${POLICY_COLUMNS.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, updated_by = EXCLUDED.updated_by,
         updated_at = EXCLUDED.updated_at`,
      [tenantId, projectId, ...POLICY_COLUMNS.map((c) => values[c]), actor, at],
    );
  }

  /** The tenant's zone (creating its row when no event of it arrived yet); returns the previous zone. */
  async setTimeZone(tx: Tx, tenantId: string, timeZone: string): Promise<string | null> {
    const [old] = await tx.query<{ time_zone: string }>(
      `SELECT time_zone FROM tenants WHERE tenant_id = $1 FOR UPDATE`,
      [tenantId],
    );
    await tx.query(
      `INSERT INTO tenants (tenant_id, time_zone) VALUES ($1, $2)
       ON CONFLICT (tenant_id) DO UPDATE SET time_zone = EXCLUDED.time_zone`,
      [tenantId, timeZone],
    );
    return old?.time_zone ?? null;
  }

  async insertOverride(
    tx: Tx,
    o: {
      id: string;
      tenantId: string;
      target: OverrideTarget;
      runId: string | null;
      value: bigint;
      actor: string;
      reason: string;
      createdAt: Date;
      expiresAt: Date;
    },
  ): Promise<void> {
    await tx.query(
      `INSERT INTO cap_overrides (override_id, tenant_id, target, run_id, value, actor, reason, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [o.id, o.tenantId, o.target, o.runId, o.value.toString(), o.actor, o.reason, o.createdAt, o.expiresAt],
    );
  }

  async revokeOverride(tx: Tx, overrideId: string, actor: string, at: Date): Promise<OverrideRow | null> {
    const [row] = await tx.query<OverrideRow>(
      `UPDATE cap_overrides SET revoked_at = $3, revoked_by = $2
        WHERE override_id = $1 AND revoked_at IS NULL AND expires_at > $3 RETURNING *`,
      [overrideId, actor, at],
    );
    return row ?? null;
  }

  async findOverride(overrideId: string): Promise<(OverrideRow & { expiry_recorded_at: Date | null }) | null> {
    const [row] = await this.db.query<OverrideRow & { expiry_recorded_at: Date | null }>(
      `SELECT * FROM cap_overrides WHERE override_id = $1`,
      [overrideId],
    );
    return row ?? null;
  }

  async recordExpiry(tx: Tx, overrideId: string, at: Date): Promise<OverrideRow | null> {
    const [row] = await tx.query<OverrideRow>(
      `UPDATE cap_overrides SET expiry_recorded_at = $2
        WHERE override_id = $1 AND revoked_at IS NULL AND expiry_recorded_at IS NULL AND expires_at <= $2 RETURNING *`,
      [overrideId, at],
    );
    return row ?? null;
  }

  /** Raises whose expiry is not recorded yet (their timers are rescheduled after a Redis rebuild). */
  async pendingExpiriesOfAllTenants(): Promise<Array<{ override_id: string; expires_at: Date }>> {
    return this.db.query(
      `SELECT override_id, expires_at FROM cap_overrides WHERE revoked_at IS NULL AND expiry_recorded_at IS NULL`,
    );
  }

  async pause(tx: Tx, tenantId: string, actor: string, reason: string, at: Date): Promise<boolean> {
    const rows = await tx.query(
      `INSERT INTO tenant_pauses (tenant_id, paused_at, paused_by, reason) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id) DO NOTHING RETURNING 1`,
      [tenantId, at, actor, reason],
    );
    return rows.length > 0;
  }

  async unpause(tx: Tx, tenantId: string): Promise<{ paused_at: Date; paused_by: string; reason: string } | null> {
    const [row] = await tx.query<{ paused_at: Date; paused_by: string; reason: string }>(
      `DELETE FROM tenant_pauses WHERE tenant_id = $1 RETURNING paused_at, paused_by, reason`,
      [tenantId],
    );
    return row ?? null;
  }

  async replaceLadder(
    tx: Tx,
    tenantId: string,
    steps: Array<{ model: string; cheaper_model: string }>,
  ): Promise<Array<{ model: string; cheaper_model: string }>> {
    const old = await tx.query<{ model: string; cheaper_model: string }>(
      `DELETE FROM model_ladders WHERE tenant_id = $1 RETURNING model, cheaper_model`,
      [tenantId],
    );
    if (steps.length > 0) {
      await tx.query(
        `INSERT INTO model_ladders (tenant_id, model, cheaper_model)
         SELECT $1, * FROM unnest($2::text[], $3::text[])`,
        [tenantId, steps.map((s) => s.model), steps.map((s) => s.cheaper_model)],
      );
    }
    return old.sort((a, b) => a.model.localeCompare(b.model));
  }

  /** Lifts today's block of a tenant when its new limit is above what it spent. */
  async unblockDay(tx: Tx, tenantId: string, day: string, limit: bigint, at: Date): Promise<boolean> {
    const rows = await tx.query(
      `UPDATE caps SET blocked = false, daily_cap_micros = $3, updated_at = $4
        WHERE tenant_id = $1 AND date = $2 AND blocked AND spent_micros < $3 RETURNING 1`,
      [tenantId, day, limit.toString(), at],
    );
    return rows.length > 0;
  }

  async unfreeze(tx: Tx, playbook: string): Promise<{ frozen_at: Date; frozen_by: string; reason: string } | null> {
    const [row] = await tx.query<{ frozen_at: Date; frozen_by: string; reason: string }>(
      `DELETE FROM publisher_freezes WHERE playbook = $1 RETURNING frozen_at, frozen_by, reason`,
      [playbook],
    );
    return row ?? null;
  }
}
