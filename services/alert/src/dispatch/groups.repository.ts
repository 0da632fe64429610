import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { AlertAudience, AlertMessage, AlertMessageItem, DeliveryChannel } from '@agentmeter/contracts';

export interface FlushedGroup {
  id: string;
  tenant_id: string;
  rule: string;
  audience: AlertAudience;
  /** A mute's summary: `mute:<id>` and the span of the mute (its start, and its end or cancellation). */
  muted_by: string | null;
  muted_from: Date | null;
  muted_until: Date | null;
}

export interface NewDelivery {
  id: string;
  groupId: string;
  tenantId: string;
  audience: AlertAudience;
  rule: string;
  channel: DeliveryChannel;
  contactId: string | null;
  message: AlertMessage;
}

/** Flushing groups into deliveries, and what the sweep looks for. */
@Injectable()
export class GroupsRepository {
  constructor(private readonly db: DataSource) {}

  transaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /** Closes an open group (locking it); null when it was flushed already. */
  async close(tx: EntityManager, groupId: string, now: Date): Promise<FlushedGroup | null> {
    const rows: FlushedGroup[] = await tx.query(
      `WITH closed AS (
         UPDATE alert_groups SET status = 'flushed', flushed_at = $2 WHERE id = $1 AND status = 'open'
         RETURNING id, tenant_id, rule, audience, muted_by)
       SELECT c.*, m.starts_at AS muted_from, LEAST(m.ends_at, m.cancelled_at) AS muted_until
         FROM closed c LEFT JOIN alert_mutes m ON c.muted_by = 'mute:' || m.id::text AND m.tenant_id = c.tenant_id`,
      [groupId, now.toISOString()],
    );
    return rows[0] ?? null;
  }

  /** The notifications of a group: queued into it, or (a mute's summary) muted and replayed in it. */
  async items(tx: EntityManager, groupId: string): Promise<AlertMessageItem[]> {
    const rows: Array<Omit<AlertMessageItem, 'at'> & { at: Date }> = await tx.query(
      `SELECT alert_key, rule, kind, severity, scope, period, title, body, created_at AS at
         FROM alert_notifications
        WHERE (group_id = $1 AND outcome = 'queued') OR (replay_group_id = $1 AND outcome = 'muted') ORDER BY id`,
      [groupId],
    );
    return rows.map((row) => ({ ...row, at: row.at.toISOString() }));
  }

  /** Live contacts of a tenant's audience; Admin alerts also reach platform Admins (tenant_id NULL). */
  async contactsOfTenant(
    tx: EntityManager,
    tenantId: string,
    audience: AlertAudience,
  ): Promise<Array<{ id: string; channel: Exclude<DeliveryChannel, 'banner'> }>> {
    return tx.query(
      `SELECT id, channel FROM alert_contacts
        WHERE deleted_at IS NULL AND audience = $2 AND (tenant_id = $1 OR (audience = 'admin' AND tenant_id IS NULL))
        ORDER BY created_at, id`,
      [tenantId, audience],
    );
  }

  /** Creates the deliveries (a repeat flush adds none: one per group and contact). Returns the new ones. */
  async insertDeliveries(tx: EntityManager, deliveries: NewDelivery[]): Promise<NewDelivery[]> {
    if (deliveries.length === 0) return [];
    const rows: Array<{ id: string }> = await tx.query(
      `INSERT INTO alert_deliveries (id, group_id, tenant_id, audience, rule, channel, contact_id, status, message)
       SELECT id, group_id, tenant_id, audience, rule, channel, contact_id, 'pending', message
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::jsonb[])
           AS d(id, group_id, tenant_id, audience, rule, channel, contact_id, message)
       ON CONFLICT DO NOTHING RETURNING id`,
      [
        deliveries.map((d) => d.id),
        deliveries.map((d) => d.groupId),
        deliveries.map((d) => d.tenantId),
        deliveries.map((d) => d.audience),
        deliveries.map((d) => d.rule),
        deliveries.map((d) => d.channel),
        deliveries.map((d) => d.contactId),
        deliveries.map((d) => JSON.stringify(d.message)),
      ],
    );
    const created = new Set(rows.map((row) => row.id));
    return deliveries.filter((d) => created.has(d.id));
  }

  /** Open groups whose window passed some time ago (their flush job was lost), every tenant. */
  async overdueGroupsOfAllTenants(before: Date): Promise<Array<{ id: string }>> {
    return this.db.query(`SELECT id FROM alert_groups WHERE status = 'open' AND flush_at < $1 LIMIT 1000`, [
      before.toISOString(),
    ]);
  }

  /**
   * Unfinished deliveries created before `before` that no worker holds a lease on, every tenant: pending or
   * retrying ones, and sending ones whose lease ran out (the worker died mid-send).
   */
  async staleDeliveriesOfAllTenants(before: Date, now: Date): Promise<Array<{ id: string; channel: DeliveryChannel }>> {
    return this.db.query(
      `SELECT id, channel FROM alert_deliveries
        WHERE status IN ('pending', 'sending', 'retrying') AND created_at < $1
          AND (lease_until IS NULL OR lease_until < $2)
        ORDER BY created_at LIMIT 1000`,
      [before.toISOString(), now.toISOString()],
    );
  }

  /** Forgets counted samples older than `before` (the longest window is far shorter). */
  async pruneSamples(before: Date): Promise<number> {
    const rows: Array<{ n: number }> = await this.db.query(
      `WITH gone AS (DELETE FROM alert_samples WHERE time < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone`,
      [before.toISOString()],
    );
    return rows[0]?.n ?? 0;
  }
}
