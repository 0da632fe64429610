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

interface PolicyRow {
  daily_cap_micros: string | null;
  run_max_tokens: string | null;
  run_max_wall_time_s: string | null;
  run_max_cost_micros: string | null;
  run_max_external_micros: string | null;
}

interface PauseRow {
  paused_at: Date;
  paused_by: string;
  reason: string;
}

interface RaiseRow {
  target: string;
  run_id: string | null;
  value: string;
  actor: string;
  reason: string;
  created_at: Date;
  expires_at: Date;
}

export interface CurrentCapsRows {
  day: CapDayRow | null;
  policy: PolicyRow | null;
  pause: PauseRow | null;
  raises: RaiseRow[];
}

/**
 * Tenant daily caps, read from cost-cap's tables (its migration 1764400000000-cost-cap): the tenant's
 * latest local day in `caps` (tenant, date, cap, spent, blocked; docs/cost-cap.md "Accounting and the ledger"), with the cap in force being the
 * larger of the day's cap and an unexpired, unrevoked `tenant_daily_cost` raise (libs/domain caps.ts: a raise
 * never lowers a cap). cost-cap writes these rows; this is a read.
 */
@Injectable()
export class CapsRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * The tenant's caps as they stand: its latest day in `caps` (cap in force, spent, blocked), its tenant
   * policy row in `cap_policies` (project_id ''), its pause, and its unexpired, unrevoked raises. Null
   * parts: cost-cap has no row for them (no cap configured, never spent, not paused).
   */
  async current(tenantId: string): Promise<CurrentCapsRows | null> {
    try {
      const [day]: CapDayRow[] = await this.db.query(
        `SELECT c.tenant_id, c.date::text AS date, c.spent_micros::text AS spent_micros,
                GREATEST(c.daily_cap_micros, o.value)::text AS limit_micros, c.blocked
           FROM caps c
           LEFT JOIN LATERAL (
             SELECT max(value) AS value FROM cap_overrides
              WHERE tenant_id = c.tenant_id AND target = 'tenant_daily_cost' AND run_id IS NULL
                AND revoked_at IS NULL AND expires_at > now()) AS o ON true
          WHERE c.tenant_id = $1
          ORDER BY c.date DESC LIMIT 1`,
        [tenantId],
      );
      const [policy]: PolicyRow[] = await this.db.query(
        `SELECT daily_cap_micros::text AS daily_cap_micros, run_max_tokens::text AS run_max_tokens,
                run_max_wall_time_s::text AS run_max_wall_time_s, run_max_cost_micros::text AS run_max_cost_micros,
                run_max_external_micros::text AS run_max_external_micros
           FROM cap_policies WHERE tenant_id = $1 AND project_id = ''`,
        [tenantId],
      );
      const [pause]: PauseRow[] = await this.db.query(
        `SELECT paused_at, paused_by, reason FROM tenant_pauses WHERE tenant_id = $1`,
        [tenantId],
      );
      const raises: RaiseRow[] = await this.db.query(
        `SELECT target, run_id, value::text AS value, actor, reason, created_at, expires_at
           FROM cap_overrides
          WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > now()
          ORDER BY expires_at DESC LIMIT 100`,
        [tenantId],
      );
      return { day: day ?? null, policy: policy ?? null, pause: pause ?? null, raises };
    } catch (error) {
      if ((error as { code?: string }).code === PG_UNDEFINED_TABLE) return null;
      throw error;
    }
  }

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
