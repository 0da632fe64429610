import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { formatUsd, ratioOf } from '@agentmeter/domain';

export interface TenantCapApproaching {
  scope: 'tenant';
  tenant_id: string;
  project_id: null;
  run_id: null;
  cap: string;
  used: string;
  limit: string;
  ratio: number;
}

const PG_UNDEFINED_TABLE = '42P01';

interface CapDayRow {
  tenant_id: string;
  date: string;
  spent_micros: string;
  limit_micros: string | null;
  blocked: boolean;
}

/**
 * Tenant daily caps, read from cost-cap's tables (its migration 1764400000000-cost-cap): the tenant's
 * latest local day in `caps` (seed 001: tenant, date, cap, spent, blocked), with the cap in force being the
 * larger of the day's cap and an unexpired, unrevoked `tenant_daily_cost` raise (libs/domain caps.ts: a raise
 * never lowers a cap). cost-cap writes these rows; this is a read.
 */
@Injectable()
export class CapsReader {
  constructor(private readonly db: DataSource) {}

  async tenantCapsApproaching(
    tenantId: string | null,
    today: string,
    ratio: number,
  ): Promise<{ available: true; rows: TenantCapApproaching[] } | { available: false; rows: []; note: string }> {
    let rows: CapDayRow[];
    try {
      rows = await this.db.query(
        `SELECT DISTINCT ON (c.tenant_id) c.tenant_id, c.date::text AS date, c.spent_micros::text AS spent_micros,
                GREATEST(c.daily_cap_micros, o.value)::text AS limit_micros, c.blocked
           FROM caps c
           LEFT JOIN LATERAL (
             SELECT max(value) AS value FROM cap_overrides
              WHERE tenant_id = c.tenant_id AND target = 'tenant_daily_cost' AND run_id IS NULL
                AND revoked_at IS NULL AND expires_at > now()) AS o ON true
          WHERE c.date >= $1::date - 1 AND ($2::text IS NULL OR c.tenant_id = $2)
          ORDER BY c.tenant_id, c.date DESC
          LIMIT 10000`,
        [today, tenantId],
      );
    } catch (error) {
      if ((error as { code?: string }).code !== PG_UNDEFINED_TABLE) throw error;
      return { available: false, rows: [], note: 'tenant daily caps: cost-cap tables not present; run caps only' };
    }
    const approaching = rows.flatMap((row): TenantCapApproaching[] => {
      if (row.limit_micros === null) return [];
      const spent = BigInt(row.spent_micros);
      const limit = BigInt(row.limit_micros);
      const use = ratioOf(spent, limit);
      if (use < ratio && !row.blocked) return [];
      return [
        {
          scope: 'tenant',
          tenant_id: row.tenant_id,
          project_id: null,
          run_id: null,
          cap: 'daily_cost',
          used: formatUsd(spent),
          limit: formatUsd(limit),
          ratio: use,
        },
      ];
    });
    return { available: true, rows: approaching };
  }
}
