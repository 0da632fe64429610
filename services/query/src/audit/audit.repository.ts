import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Redactor } from '@agentmeter/domain';
import type { Caller } from '../auth/caller';

export interface AuditEntry {
  tenantId: string | null;
  actor: string;
  actorTenantId: string;
  actorRoles: string[];
  credential: string;
  action: string;
  target: string;
  reason: string | null;
  params: Record<string, unknown>;
  executor: string;
}

/** Who acts, as an audit entry records it: the caller's principal. */
export function auditActor(caller: Caller): Pick<AuditEntry, 'actor' | 'actorTenantId' | 'actorRoles' | 'credential'> {
  const p = caller.principal;
  return { actor: p.subject, actorTenantId: p.tenantId, actorRoles: [...p.roles], credential: p.credential };
}

export interface AuditRow {
  id: string;
  at: Date;
  tenant_id: string | null;
  actor: string;
  actor_tenant_id: string;
  actor_roles: string[];
  credential: string;
  action: string;
  target: string;
  reason: string | null;
  params: Record<string, unknown>;
  outcome: 'requested' | 'succeeded' | 'failed';
  executor: string;
  detail: string | null;
  finished_at: Date | null;
}

export interface AuditFilter {
  /** null: every tenant (Admin). */
  tenantId: string | null;
  action?: string;
  from: Date;
  to: Date;
  beforeId: string | null;
  limit: number;
}

/**
 * The audit log of actions taken through the API: written before an action, completed after it. The actor
 * (a JWT subject may be an e-mail address) is stored as its pseudonym, and the free text redacted
 * (docs/security.md "Redaction and pseudonymisation").
 */
@Injectable()
export class AuditRepository {
  constructor(
    private readonly db: DataSource,
    private readonly redactor: Redactor,
  ) {}

  async begin(original: AuditEntry): Promise<string> {
    const entry: AuditEntry = {
      ...original,
      actor: this.redactor.identifier(original.actor, 'user'),
      // "jwt:<subject>" or "apikey:<key id>": the subject may be an e-mail address.
      credential: credentialOf(original.credential, this.redactor),
      target: this.redactor.identifier(original.target, 'id'),
      reason: original.reason === null ? null : this.redactor.text(original.reason).text,
      params: this.redactor.value(original.params).value,
    };
    const rows: Array<{ id: string }> = await this.db.query(
      `INSERT INTO audit_log (tenant_id, actor, actor_tenant_id, actor_roles, credential, action, target, reason,
         params, outcome, executor)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'requested', $10) RETURNING id::text`,
      [
        entry.tenantId,
        entry.actor,
        entry.actorTenantId,
        entry.actorRoles,
        entry.credential,
        entry.action,
        entry.target,
        entry.reason,
        JSON.stringify(entry.params),
        entry.executor,
      ],
    );
    return rows[0]!.id;
  }

  async finish(id: string, outcome: 'succeeded' | 'failed', detail: string): Promise<void> {
    await this.db.query(`UPDATE audit_log SET outcome = $2, detail = $3, finished_at = now() WHERE id = $1`, [
      id,
      outcome,
      this.redactor.text(detail.slice(0, 4_000)).text,
    ]);
  }

  /** One row by id, when it records `action`. */
  async get(id: string, action: string): Promise<AuditRow | undefined> {
    const rows: AuditRow[] = await this.db.query(
      `SELECT id::text, at, tenant_id, actor, actor_tenant_id, actor_roles, credential, action, target, reason, params,
              outcome, executor, detail, finished_at
         FROM audit_log WHERE id = $1::bigint AND action = $2`,
      [id, action],
    );
    return rows[0];
  }

  async list(filter: AuditFilter): Promise<AuditRow[]> {
    return this.db.query(
      `SELECT id::text, at, tenant_id, actor, actor_tenant_id, actor_roles, credential, action, target, reason, params,
              outcome, executor, detail, finished_at
         FROM audit_log
        WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR action = $2)
          AND at >= $3 AND at < $4 AND ($5::bigint IS NULL OR id < $5::bigint)
        ORDER BY id DESC
        LIMIT $6`,
      [filter.tenantId, filter.action ?? null, filter.from, filter.to, filter.beforeId, filter.limit],
    );
  }
}

function credentialOf(credential: string, redactor: Redactor): string {
  const colon = credential.indexOf(':');
  if (colon < 0) return redactor.identifier(credential, 'user');
  return credential.slice(0, colon + 1) + redactor.identifier(credential.slice(colon + 1), 'user');
}
