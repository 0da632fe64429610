import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface FeedbackRow {
  alert_key: string;
  tenant_id: string;
  rule: string;
  user_id: string;
  useful: boolean;
  note: string | null;
  updated_at: Date;
}

export interface PrecisionRow {
  rule: string;
  fired: number;
  rated: number;
  useful: number;
  not_useful: number;
}

/** Users' verdicts on alerts (alert_feedback) and the alert service's `alerts` they refer to. */
@Injectable()
export class FeedbackRepository {
  constructor(private readonly db: DataSource) {}

  /** The alert's rule when the tenant has it (tenant scope is part of the lookup). */
  async alertRule(tenantId: string, alertKey: string): Promise<string | undefined> {
    const rows: Array<{ rule: string }> = await this.db.query(
      `SELECT rule FROM alerts WHERE tenant_id = $1 AND alert_key = $2`,
      [tenantId, alertKey],
    );
    return rows[0]?.rule;
  }

  /** One verdict per alert and user: a second one replaces the first. */
  async upsert(
    tenantId: string,
    alertKey: string,
    rule: string,
    userId: string,
    useful: boolean,
    note: string | null,
  ): Promise<FeedbackRow> {
    const rows: FeedbackRow[] = await this.db.query(
      `INSERT INTO alert_feedback AS f (alert_key, tenant_id, rule, user_id, useful, note)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (alert_key, user_id) DO UPDATE SET useful = EXCLUDED.useful, note = EXCLUDED.note, updated_at = now()
       RETURNING alert_key, tenant_id, rule, user_id, useful, note, updated_at`,
      [alertKey, tenantId, rule, userId, useful, note],
    );
    return rows[0]!;
  }

  /**
   * Per rule, over alerts fired in [from, to): how many fired, how many were rated, and how many of those the
   * majority of their raters found useful (an alert is useful when more of its verdicts say so than not).
   */
  async precision(tenantId: string | null, from: Date, to: Date): Promise<PrecisionRow[]> {
    return this.db.query(
      `WITH verdicts AS (
         SELECT alert_key, count(*) FILTER (WHERE useful) AS yes, count(*) FILTER (WHERE NOT useful) AS no
           FROM alert_feedback
          WHERE ($1::text IS NULL OR tenant_id = $1)
          GROUP BY alert_key)
       SELECT a.rule, count(*)::int AS fired,
              count(v.alert_key)::int AS rated,
              count(*) FILTER (WHERE v.yes > v.no)::int AS useful,
              count(*) FILTER (WHERE v.yes <= v.no)::int AS not_useful
         FROM alerts a LEFT JOIN verdicts v ON v.alert_key = a.alert_key
        WHERE a.fired_at >= $2 AND a.fired_at < $3 AND ($1::text IS NULL OR a.tenant_id = $1)
        GROUP BY a.rule
        ORDER BY a.rule`,
      [tenantId, from, to],
    );
  }
}
