import { Injectable } from '@nestjs/common';
import { Clock } from '@agentmeter/domain';
import { InvalidRequestError, NotFoundError } from '@agentmeter/http';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import { type Caller, requireTenant } from '../auth/caller';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { Limits } from '../http/limits';
import type {
  PromptAuditBody,
  PromptAuditPage,
  PromptAuditQuery,
  PromptAuditSettingAnswer,
} from './prompt-audit.schemas';
import { PromptAuditRepository, type PromptAuditSetting } from './prompt-audit.repository';

/**
 * A tenant's prompt audit (docs/events.md "Prompt audit"): Admins and the tenant's Owners turn it on or off
 * (audited) and read the redacted texts ingest stored while it was on.
 */
@Injectable()
export class PromptAuditService {
  constructor(
    private readonly repository: PromptAuditRepository,
    private readonly audit: AuditRepository,
    private readonly limits: Limits,
    private readonly clock: Clock,
  ) {}

  async update(caller: Caller, tenantId: string, body: PromptAuditBody): Promise<PromptAuditSettingAnswer> {
    const id = requireTenant(caller, tenantId);
    const before = await this.repository.setting(id);
    if (!before) throw new NotFoundError(`tenant ${tenantId} not found`);
    const auditId = await this.audit.begin({
      tenantId: id,
      ...auditActor(caller),
      action: 'tenant.prompt_audit',
      target: id,
      reason: body.reason,
      params: {
        before: settingOf(before),
        after: {
          enabled: body.enabled,
          retention_days: body.retention_days ?? before.prompt_audit_retention_days,
        },
      },
      executor: 'query',
    });
    const row = await this.repository.update(id, body.enabled, body.retention_days);
    await this.audit.finish(auditId, row ? 'succeeded' : 'failed', row ? 'updated' : 'no such tenant');
    if (!row) throw new NotFoundError(`tenant ${tenantId} not found`);
    return { ...settingOf(row), audit_id: auditId };
  }

  async list(caller: Caller, tenantId: string, query: PromptAuditQuery): Promise<PromptAuditPage> {
    const id = requireTenant(caller, tenantId);
    const setting = await this.repository.setting(id);
    if (!setting) throw new NotFoundError(`tenant ${tenantId} not found`);
    const limit = this.limits.pageSize(query.limit);
    const { from, to } = this.limits.timeRange(query.from, query.to, this.clock.now());
    const cursor = decodeCursor(query.cursor, 3);
    if (cursor && !cursor.every((value) => typeof value === 'string')) {
      throw new InvalidRequestError('cursor: not a cursor of this API');
    }
    const rows = await this.repository.list({
      tenantId: id,
      runId: query.run_id,
      from,
      to,
      after: cursor as [string, string, string] | null,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      ...settingOf(setting),
      items: page.map(({ time_key: _key, ...row }) => ({ ...row, time: row.time.toISOString() })),
      next_cursor: rows.length > limit && last ? encodeCursor([last.time_key, last.source, last.event_id]) : null,
      limit,
    };
  }
}

function settingOf(row: PromptAuditSetting) {
  return { tenant_id: row.tenant_id, enabled: row.prompt_audit, retention_days: row.prompt_audit_retention_days };
}
