import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { AlertAudience } from '@agentmeter/contracts';

export interface EndedMute {
  id: string;
  tenant_id: string;
}

export interface MutedNotification {
  id: string;
  alert_key: string;
  rule: string;
  audience: AlertAudience;
}

/** What the replay of an ended mute reads and writes: its claim, its muted notifications, summary groups. */
@Injectable()
export class MuteReplayRepository {
  constructor(private readonly db: DataSource) {}

  transaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /**
   * Claims the replay of a mute that is over at `now` (expired or cancelled): one caller ever gets the row,
   * whichever replica, job or sweep asks. Null when it is not over yet, already replayed, or unknown.
   */
  async claimEnded(tx: EntityManager, muteId: string, now: Date): Promise<EndedMute | null> {
    const rows: EndedMute[] = await tx.query(
      `WITH claimed AS (
         UPDATE alert_mutes SET replayed_at = $2
          WHERE id = $1 AND replayed_at IS NULL AND (cancelled_at IS NOT NULL OR ends_at <= $2)
         RETURNING id, tenant_id)
       SELECT * FROM claimed`,
      [muteId, now.toISOString()],
    );
    return rows[0] ?? null;
  }

  /**
   * The latest notification of each alert the mute silenced, when that one was a firing or a repeat (an alert
   * that fired and resolved while muted has nothing left to say).
   */
  async mutedNotifications(tx: EntityManager, tenantId: string, mutedBy: string): Promise<MutedNotification[]> {
    return tx.query(
      `SELECT latest.id::text AS id, latest.alert_key, latest.rule, a.audience FROM (
         SELECT DISTINCT ON (alert_key) id, alert_key, rule, kind FROM alert_notifications
          WHERE tenant_id = $1 AND muted_by = $2 AND outcome = 'muted' AND replay_group_id IS NULL
          ORDER BY alert_key, id DESC) latest
       JOIN alerts a ON a.alert_key = latest.alert_key
       WHERE latest.kind <> 'resolved'
       ORDER BY latest.id`,
      [tenantId, mutedBy],
    );
  }

  /** Another mute silences these alerts now: its end replays them instead. */
  async handOver(tx: EntityManager, tenantId: string, from: string, to: string, keys: string[]): Promise<void> {
    await tx.query(
      `UPDATE alert_notifications SET muted_by = $3
        WHERE tenant_id = $1 AND muted_by = $2 AND outcome = 'muted' AND alert_key = ANY($4::text[])`,
      [tenantId, from, to, keys],
    );
  }

  /**
   * A summary group, due now, holding the given muted notifications. Its group key (`mute:<id>`) keeps it apart
   * from the rule's open group, which live notifications keep joining.
   */
  async insertSummaryGroup(
    tx: EntityManager,
    group: { id: string; tenantId: string; rule: string; audience: AlertAudience; mutedBy: string; now: Date },
    notificationIds: string[],
  ): Promise<void> {
    await tx.query(
      `INSERT INTO alert_groups (id, tenant_id, rule, audience, group_key, muted_by, status, opened_at, flush_at)
       VALUES ($1, $2, $3, $4, $5, $5, 'open', $6, $6)`,
      [group.id, group.tenantId, group.rule, group.audience, group.mutedBy, group.now.toISOString()],
    );
    await tx.query(
      `UPDATE alert_notifications SET replay_group_id = $2 WHERE tenant_id = $1 AND id = ANY($3::bigint[])`,
      [group.tenantId, group.id, notificationIds],
    );
  }

  /** The summary counts as a notification: repeats of still-firing alerts count from it. */
  async markNotified(tx: EntityManager, tenantId: string, keys: string[], now: Date): Promise<void> {
    await tx.query(
      `UPDATE alerts SET last_notified_at = $3 WHERE tenant_id = $1 AND alert_key = ANY($2::text[]) AND status = 'firing'`,
      [tenantId, keys, now.toISOString()],
    );
  }

  /** Mutes over at `now` whose replay has not happened (its job was lost, or ran before the end), every tenant. */
  async endedUnreplayedOfAllTenants(now: Date): Promise<Array<{ id: string }>> {
    return this.db.query(
      `SELECT id FROM alert_mutes WHERE replayed_at IS NULL AND (cancelled_at IS NOT NULL OR ends_at <= $1)
        ORDER BY ends_at LIMIT 100`,
      [now.toISOString()],
    );
  }
}
