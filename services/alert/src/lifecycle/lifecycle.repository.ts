import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { AlertAudience, AlertSeverity } from '@agentmeter/contracts';
import type { AlertStatus, NotificationKind } from '@agentmeter/domain';

export interface StoredAlert {
  alert_key: string;
  rule: string;
  tenant_id: string;
  scope: string;
  period: string;
  audience: AlertAudience;
  severity: AlertSeverity;
  status: AlertStatus;
  title: string;
  body: string;
  threshold_fp: string;
  fired_at: Date;
  last_observed_at: Date;
  last_notified_at: Date | null;
  resolved_at: Date | null;
  notifications: number;
}

export interface AlertFacts {
  key: string;
  rule: string;
  tenantId: string;
  scope: string;
  period: string;
  audience: AlertAudience;
  severity: AlertSeverity;
  title: string;
  body: string;
  thresholdFingerprint: string;
}

export interface NotificationRow {
  alertKey: string;
  groupId: string | null;
  tenantId: string;
  rule: string;
  kind: NotificationKind;
  outcome: 'queued' | 'muted';
  mutedBy: string | null;
  severity: AlertSeverity;
  scope: string;
  period: string;
  title: string;
  body: string;
  at: Date;
}

/** The lifecycle state of alerts, their notifications and the open groups those join. */
@Injectable()
export class LifecycleRepository {
  constructor(private readonly db: DataSource) {}

  transaction<T>(work: (tx: LifecycleWriter) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(new LifecycleWriter(manager)));
  }

  /** Firing alerts of one rule, every tenant (evaluations resolve the ones no longer observed). */
  async firingOfRuleOfAllTenants(rule: string): Promise<StoredAlert[]> {
    return this.db.query(`SELECT * FROM alerts WHERE rule = $1 AND status = 'firing'`, [rule]);
  }

  /** Firing alerts of the given rules not observed since `before`, every tenant. */
  async quietFiringOfAllTenants(rules: string[], servicePrefix: string, before: Date): Promise<StoredAlert[]> {
    return this.db.query(
      `SELECT * FROM alerts WHERE status = 'firing' AND last_observed_at < $3
          AND (rule = ANY($1::text[]) OR starts_with(rule, $2))`,
      [rules, servicePrefix, before.toISOString()],
    );
  }

  async listOfTenant(tenantId: string, status: AlertStatus | null, limit: number): Promise<StoredAlert[]> {
    return this.db.query(
      `SELECT * FROM alerts WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY updated_at DESC LIMIT $3`,
      [tenantId, status, limit],
    );
  }

  async notificationsOfTenant(tenantId: string, limit: number): Promise<unknown[]> {
    return this.db.query(
      `SELECT id::text, alert_key, group_id, rule, kind, outcome, muted_by, severity, scope, period, title, created_at
         FROM alert_notifications WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2`,
      [tenantId, limit],
    );
  }
}

class LifecycleWriter {
  constructor(readonly manager: EntityManager) {}

  /** Locks the alert's row for the rest of the transaction; null when it does not exist. */
  async lock(key: string): Promise<StoredAlert | null> {
    const rows: StoredAlert[] = await this.manager.query(`SELECT * FROM alerts WHERE alert_key = $1 FOR UPDATE`, [key]);
    return rows[0] ?? null;
  }

  /** Creates the alert as firing; false when another transaction created it first (decide again). */
  async insertFiring(facts: AlertFacts, now: Date): Promise<boolean> {
    const rows: unknown[] = await this.manager.query(
      `INSERT INTO alerts (alert_key, rule, tenant_id, scope, period, audience, severity, status, title, body,
         threshold_fp, fired_at, last_observed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'firing', $8, $9, $10, $11, $11)
       ON CONFLICT (alert_key) DO NOTHING RETURNING 1`,
      [
        facts.key,
        facts.rule,
        facts.tenantId,
        facts.scope,
        facts.period,
        facts.audience,
        facts.severity,
        facts.title,
        facts.body,
        facts.thresholdFingerprint,
        now.toISOString(),
      ],
    );
    return rows.length > 0;
  }

  /** Firing (again): a new firing restarts fired_at; a repeat keeps it. */
  async markFiring(facts: AlertFacts, now: Date, restart: boolean): Promise<void> {
    await this.manager.query(
      `UPDATE alerts SET status = 'firing', severity = $2, title = $3, body = $4, threshold_fp = $5,
         fired_at = CASE WHEN $7 THEN $6::timestamptz ELSE fired_at END, resolved_at = NULL,
         last_observed_at = $6, updated_at = now()
       WHERE alert_key = $1`,
      [facts.key, facts.severity, facts.title, facts.body, facts.thresholdFingerprint, now.toISOString(), restart],
    );
  }

  /** Still firing, nothing to send: remember that it was seen (event rules resolve after going quiet). */
  async touch(key: string, body: string, now: Date): Promise<void> {
    await this.manager.query(`UPDATE alerts SET last_observed_at = $2, body = $3 WHERE alert_key = $1`, [
      key,
      now.toISOString(),
      body,
    ]);
  }

  async markNotified(key: string, now: Date): Promise<void> {
    await this.manager.query(
      `UPDATE alerts SET last_notified_at = $2, notifications = notifications + 1, updated_at = now() WHERE alert_key = $1`,
      [key, now.toISOString()],
    );
  }

  /** Resolves the alert and its in-app banners (whatever was or was not sent). */
  async markResolved(key: string, now: Date): Promise<void> {
    await this.manager.query(
      `UPDATE alerts SET status = 'resolved', resolved_at = $2, updated_at = now() WHERE alert_key = $1`,
      [key, now.toISOString()],
    );
    await this.manager.query(
      `UPDATE alert_banners SET resolved_at = $2, updated_at = now() WHERE alert_key = $1 AND resolved_at IS NULL`,
      [key, now.toISOString()],
    );
  }

  /**
   * The open group of (tenant, rule, audience), or a new one flushing at `flushAt`. The conflict update
   * locks the group row, so a concurrent flush either sees this notification or runs before it (then the
   * row is no longer open and a new group is made).
   */
  async joinGroup(
    id: string,
    tenantId: string,
    rule: string,
    audience: AlertAudience,
    groupKey: string,
    now: Date,
    flushAt: Date,
  ): Promise<{ id: string; created: boolean; flushAt: Date }> {
    const rows: Array<{ id: string; flush_at: Date }> = await this.manager.query(
      `INSERT INTO alert_groups (id, tenant_id, rule, audience, group_key, status, opened_at, flush_at)
       VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)
       ON CONFLICT (tenant_id, rule, audience, group_key) WHERE status = 'open' DO UPDATE SET status = 'open'
       RETURNING id, flush_at`,
      [id, tenantId, rule, audience, groupKey, now.toISOString(), flushAt.toISOString()],
    );
    const row = rows[0]!;
    return { id: row.id, created: row.id === id, flushAt: row.flush_at };
  }

  async insertNotification(n: NotificationRow): Promise<void> {
    await this.manager.query(
      `INSERT INTO alert_notifications (alert_key, group_id, tenant_id, rule, kind, outcome, muted_by, severity, scope,
         period, title, body, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        n.alertKey,
        n.groupId,
        n.tenantId,
        n.rule,
        n.kind,
        n.outcome,
        n.mutedBy,
        n.severity,
        n.scope,
        n.period,
        n.title,
        n.body,
        n.at.toISOString(),
      ],
    );
  }
}
