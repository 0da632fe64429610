import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { AlertMute, AlertMuteTiming } from '@agentmeter/domain';

export interface MuteRow {
  id: string;
  tenant_id: string;
  rule: string | null;
  starts_at: Date;
  ends_at: Date;
  actor: string;
  reason: string;
  created_at: Date;
  cancelled_at: Date | null;
  cancelled_by: string | null;
  cancel_reason: string | null;
}

export interface MuteTimingRow {
  id: string;
  tenant_id: string;
  rule: string | null;
  name: string;
  weekdays: number[];
  start_minute: number;
  end_minute: number;
  time_zone: string;
  actor: string;
  reason: string;
  created_at: Date;
}

/** alert_mutes and alert_mute_timings. Every method is scoped to one tenant. */
@Injectable()
export class MutesRepository {
  constructor(private readonly db: DataSource) {}

  /** Mutes not cancelled and not yet over at `now`, and the tenant's mute timings. */
  async inForceOfTenant(
    tenantId: string,
    now: Date,
    tx: EntityManager = this.db.manager,
  ): Promise<{ mutes: AlertMute[]; timings: AlertMuteTiming[] }> {
    const mutes: Array<Pick<MuteRow, 'id' | 'rule' | 'starts_at' | 'ends_at'>> = await tx.query(
      `SELECT id, rule, starts_at, ends_at FROM alert_mutes
        WHERE tenant_id = $1 AND cancelled_at IS NULL AND ends_at > $2`,
      [tenantId, now.toISOString()],
    );
    const timings: MuteTimingRow[] = await tx.query(
      `SELECT id, tenant_id, rule, name, weekdays, start_minute, end_minute, time_zone
         FROM alert_mute_timings WHERE tenant_id = $1 AND deleted_at IS NULL`,
      [tenantId],
    );
    return {
      mutes: mutes.map((m) => ({ id: m.id, rule: m.rule, startsAt: m.starts_at, endsAt: m.ends_at })),
      timings: timings.map((t) => ({
        id: t.id,
        name: t.name,
        rule: t.rule,
        weekdays: t.weekdays,
        startMinute: t.start_minute,
        endMinute: t.end_minute,
        timeZone: t.time_zone,
      })),
    };
  }

  async listMutesOfTenant(tenantId: string, includeOver: boolean, now: Date): Promise<MuteRow[]> {
    return this.db.query(
      `SELECT * FROM alert_mutes WHERE tenant_id = $1 AND ($2 OR (cancelled_at IS NULL AND ends_at > $3))
        ORDER BY created_at DESC LIMIT 500`,
      [tenantId, includeOver, now.toISOString()],
    );
  }

  async insertMute(
    tx: EntityManager,
    row: Omit<MuteRow, 'created_at' | 'cancelled_at' | 'cancelled_by' | 'cancel_reason'>,
  ) {
    const rows: MuteRow[] = await tx.query(
      `INSERT INTO alert_mutes (id, tenant_id, rule, starts_at, ends_at, actor, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [row.id, row.tenant_id, row.rule, row.starts_at.toISOString(), row.ends_at.toISOString(), row.actor, row.reason],
    );
    return rows[0]!;
  }

  async cancelMute(tx: EntityManager, tenantId: string, id: string, actor: string, reason: string, now: Date) {
    const rows: MuteRow[] = await tx.query(
      `WITH cancelled AS (
         UPDATE alert_mutes SET cancelled_at = $3, cancelled_by = $4, cancel_reason = $5
          WHERE tenant_id = $1 AND id = $2 AND cancelled_at IS NULL RETURNING *)
       SELECT * FROM cancelled`,
      [tenantId, id, now.toISOString(), actor, reason],
    );
    return rows[0] ?? null;
  }

  async listTimingsOfTenant(tenantId: string): Promise<MuteTimingRow[]> {
    return this.db.query(
      `SELECT * FROM alert_mute_timings WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at`,
      [tenantId],
    );
  }

  async insertTiming(tx: EntityManager, row: Omit<MuteTimingRow, 'created_at'>): Promise<MuteTimingRow> {
    const rows: MuteTimingRow[] = await tx.query(
      `INSERT INTO alert_mute_timings (id, tenant_id, rule, name, weekdays, start_minute, end_minute, time_zone, actor, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [
        row.id,
        row.tenant_id,
        row.rule,
        row.name,
        row.weekdays,
        row.start_minute,
        row.end_minute,
        row.time_zone,
        row.actor,
        row.reason,
      ],
    );
    return rows[0]!;
  }

  async deleteTiming(tx: EntityManager, tenantId: string, id: string, actor: string, now: Date) {
    const rows: MuteTimingRow[] = await tx.query(
      `WITH gone AS (
         UPDATE alert_mute_timings SET deleted_at = $3, deleted_by = $4
          WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING *)
       SELECT * FROM gone`,
      [tenantId, id, now.toISOString(), actor],
    );
    return rows[0] ?? null;
  }

  transaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }
}
