import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** alert_samples: events that windowed event rules count, each once (keyed by the event's identity). */
@Injectable()
export class AlertEventsRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Records a sample (a repeat of the same event changes nothing) and returns how many samples of the same
   * rule, tenant and scope fall in (at - window, at], and the latest detail among them.
   */
  async countSample(
    tenantId: string,
    sample: { rule: string; scope: string; id: string; at: Date; detail: string },
    windowMs: number,
  ): Promise<{ count: number; lastDetail: string }> {
    await this.db.query(
      `INSERT INTO alert_samples (rule, tenant_id, scope, sample_id, time, detail) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT DO NOTHING`,
      [sample.rule, tenantId, sample.scope, sample.id, sample.at.toISOString(), sample.detail],
    );
    const rows: Array<{ count: number; last_detail: string | null }> = await this.db.query(
      `SELECT count(*)::int AS count, (array_agg(detail ORDER BY time DESC))[1] AS last_detail FROM alert_samples
        WHERE rule = $1 AND tenant_id = $2 AND scope = $3 AND time > $4 AND time <= $5`,
      [
        sample.rule,
        tenantId,
        sample.scope,
        new Date(sample.at.getTime() - windowMs).toISOString(),
        sample.at.toISOString(),
      ],
    );
    return { count: rows[0]?.count ?? 0, lastDetail: rows[0]?.last_detail ?? sample.detail };
  }
}
