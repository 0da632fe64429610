import { Injectable } from '@nestjs/common';
import { CostCapDatabase, type Tx } from '../db/database';

/** The caps table (one row per tenant and local day: the cap in force, the spend, blocked or not). */
@Injectable()
export class DailyCapsRepository {
  constructor(private readonly db: CostCapDatabase) {}

  /** The ledger's spend per tenant and day, for the days from..to. */
  async spentByTenantDay(from: string, to: string): Promise<Array<{ tenant_id: string; day: string; spent: string }>> {
    return this.db.query(
      `SELECT tenant_id, day, sum(cost_micros)::text AS spent FROM spend_ledger
        WHERE day BETWEEN $1::date AND $2::date GROUP BY tenant_id, day`,
      [from, to],
    );
  }

  /** The row as the ledger says it is now (blocked when the spend reached the cap). */
  async refresh(tenantId: string, day: string, limit: bigint | null, spent: bigint): Promise<void> {
    await this.db.query(
      `INSERT INTO caps (tenant_id, date, daily_cap_micros, spent_micros, blocked, updated_at)
       VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (tenant_id, date) DO UPDATE SET daily_cap_micros = EXCLUDED.daily_cap_micros,
         spent_micros = EXCLUDED.spent_micros, blocked = EXCLUDED.blocked, updated_at = now(),
         blocked_at = CASE WHEN EXCLUDED.blocked THEN COALESCE(caps.blocked_at, now()) END`,
      [tenantId, day, limit?.toString() ?? null, spent.toString(), limit !== null && spent >= limit],
    );
  }

  /** A crossing of the tenant's daily cap, in the transaction that claimed it (blocked at 100 %). */
  async recordCrossing(
    tx: Tx,
    crossing: { tenantId: string; day: string; limit: bigint; observed: bigint; blocked: boolean },
    now: Date,
  ): Promise<void> {
    await tx.query(
      `INSERT INTO caps (tenant_id, date, daily_cap_micros, spent_micros, blocked, blocked_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN $6::timestamptz END, $6)
       ON CONFLICT (tenant_id, date) DO UPDATE SET
         daily_cap_micros = EXCLUDED.daily_cap_micros,
         spent_micros = GREATEST(caps.spent_micros, EXCLUDED.spent_micros),
         blocked = caps.blocked OR EXCLUDED.blocked,
         blocked_at = COALESCE(caps.blocked_at, EXCLUDED.blocked_at),
         updated_at = EXCLUDED.updated_at`,
      [crossing.tenantId, crossing.day, crossing.limit.toString(), crossing.observed.toString(), crossing.blocked, now],
    );
  }
}
