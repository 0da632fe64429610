import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

export interface AuditEntry {
  /** The tenant concerned; null for platform-wide changes. */
  tenantId: string | null;
  actor: string;
  /** What was done, e.g. "mute.create", "contact.delete", "alertmanager.alert". */
  action: string;
  /** What it was done to (an id, a rule). */
  target: string;
  reason: string | null;
  detail: Record<string, unknown>;
}

/** alert_audit: who changed contacts, thresholds and mutes, and every Alertmanager alert received. */
@Injectable()
export class AuditRepository {
  constructor(private readonly db: DataSource) {}

  /** Appends entries (inside the caller's transaction when given one). */
  async record(entries: AuditEntry[], tx?: EntityManager): Promise<void> {
    if (entries.length === 0) return;
    await (tx ?? this.db.manager).query(
      `INSERT INTO alert_audit (tenant_id, actor, action, target, reason, detail)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])`,
      [
        entries.map((e) => e.tenantId),
        entries.map((e) => e.actor),
        entries.map((e) => e.action),
        entries.map((e) => e.target),
        entries.map((e) => e.reason),
        entries.map((e) => JSON.stringify(e.detail)),
      ],
    );
  }

  async listOfTenant(tenantId: string, limit: number): Promise<AuditRow[]> {
    return this.db.query(
      `SELECT id::text, at, tenant_id, actor, action, target, reason, detail FROM alert_audit
        WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2`,
      [tenantId, limit],
    );
  }
}

export interface AuditRow {
  id: string;
  at: Date;
  tenant_id: string | null;
  actor: string;
  action: string;
  target: string;
  reason: string | null;
  detail: Record<string, unknown>;
}
