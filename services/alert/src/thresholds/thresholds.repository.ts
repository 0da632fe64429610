import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

/** alert_thresholds: per-tenant overrides (partial parameter objects) of a rule's defaults. */
@Injectable()
export class ThresholdsRepository {
  constructor(private readonly db: DataSource) {}

  /** Every tenant's override of one rule (read whole by each evaluation; one row per tenant at most). */
  async overridesOfAllTenants(rule: string): Promise<Map<string, Record<string, unknown>>> {
    const rows: Array<{ tenant_id: string; params: Record<string, unknown> }> = await this.db.query(
      `SELECT tenant_id, params FROM alert_thresholds WHERE rule = $1`,
      [rule],
    );
    return new Map(rows.map((row) => [row.tenant_id, row.params]));
  }

  async overridesOfTenant(tenantId: string): Promise<Map<string, Record<string, unknown>>> {
    const rows: Array<{ rule: string; params: Record<string, unknown> }> = await this.db.query(
      `SELECT rule, params FROM alert_thresholds WHERE tenant_id = $1`,
      [tenantId],
    );
    return new Map(rows.map((row) => [row.rule, row.params]));
  }

  async override(tenantId: string, rule: string): Promise<Record<string, unknown> | null> {
    const rows: Array<{ params: Record<string, unknown> }> = await this.db.query(
      `SELECT params FROM alert_thresholds WHERE tenant_id = $1 AND rule = $2`,
      [tenantId, rule],
    );
    return rows[0]?.params ?? null;
  }

  async upsert(tx: EntityManager, tenantId: string, rule: string, params: Record<string, unknown>, actor: string) {
    await tx.query(
      `INSERT INTO alert_thresholds (tenant_id, rule, params, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, rule) DO UPDATE SET params = EXCLUDED.params, updated_by = EXCLUDED.updated_by,
         updated_at = now()`,
      [tenantId, rule, JSON.stringify(params), actor],
    );
  }

  async delete(tx: EntityManager, tenantId: string, rule: string): Promise<boolean> {
    const rows: unknown[] = await tx.query(
      `WITH gone AS (DELETE FROM alert_thresholds WHERE tenant_id = $1 AND rule = $2 RETURNING 1) SELECT * FROM gone`,
      [tenantId, rule],
    );
    return rows.length > 0;
  }

  transaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }
}
