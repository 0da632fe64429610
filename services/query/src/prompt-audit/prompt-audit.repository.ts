import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface PromptAuditSetting {
  tenant_id: string;
  prompt_audit: boolean;
  prompt_audit_retention_days: number;
}

export interface PromptAuditRow {
  /** `time` with its full (microsecond) precision, for the page cursor. */
  time_key: string;
  source: string;
  event_id: string;
  time: Date;
  project_id: string;
  run_id: string;
  phase: string | null;
  role: string | null;
  model: string;
  provider: string;
  prompt: string | null;
  completion: string | null;
}

export interface PromptAuditFilter {
  tenantId: string;
  runId?: string;
  from: Date;
  to: Date;
  /** The sort key of the last row of the previous page: time (ISO), source, event id. */
  after: [string, string, string] | null;
  limit: number;
}

/** The prompt audit setting of a tenant and its stored texts (docs/events.md "Prompt audit"). */
@Injectable()
export class PromptAuditRepository {
  constructor(private readonly db: DataSource) {}

  async setting(tenantId: string): Promise<PromptAuditSetting | undefined> {
    const rows: PromptAuditSetting[] = await this.db.query(
      `SELECT tenant_id, prompt_audit, prompt_audit_retention_days FROM tenants WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0];
  }

  /** Sets the audit on or off and, when given, its retention; undefined when the tenant does not exist. */
  async update(tenantId: string, enabled: boolean, retentionDays?: number): Promise<PromptAuditSetting | undefined> {
    const [rows] = (await this.db.query(
      `UPDATE tenants SET prompt_audit = $2,
              prompt_audit_retention_days = COALESCE($3::integer, prompt_audit_retention_days)
        WHERE tenant_id = $1
        RETURNING tenant_id, prompt_audit, prompt_audit_retention_days`,
      [tenantId, enabled, retentionDays ?? null],
    )) as [PromptAuditSetting[], number];
    return rows[0];
  }

  /** One tenant's texts, newest first, keyset paged. */
  async list(filter: PromptAuditFilter): Promise<PromptAuditRow[]> {
    const [time, source, eventId] = filter.after ?? [null, null, null];
    return this.db.query(
      `SELECT to_json(time) #>> '{}' AS time_key, source, event_id, time, project_id, run_id, phase, role, model, provider, prompt, completion
         FROM prompt_audit
        WHERE tenant_id = $1 AND ($2::text IS NULL OR run_id = $2) AND time >= $3 AND time < $4
          AND ($5::timestamptz IS NULL OR (time, source, event_id) < ($5::timestamptz, $6::text, $7::text))
        ORDER BY time DESC, source DESC, event_id DESC
        LIMIT $8`,
      [filter.tenantId, filter.runId ?? null, filter.from, filter.to, time, source, eventId, filter.limit],
    );
  }
}
