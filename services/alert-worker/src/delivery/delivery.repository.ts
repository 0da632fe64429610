import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { AlertAudience, AlertMessage, DeliveryChannel } from '@agentmeter/contracts';

export interface ClaimedDelivery {
  id: string;
  tenant_id: string;
  audience: AlertAudience;
  channel: DeliveryChannel;
  contact_id: string | null;
  /** This attempt's number, from 1. */
  attempts: number;
  message: AlertMessage;
  created_at: Date;
}

export interface DeliveryContact {
  channel: string;
  email: string | null;
  url_encrypted: Buffer | null;
  secret_encrypted: Buffer | null;
  deleted_at: Date | null;
}

export interface AttemptRecord {
  attempt: number;
  statusCode: number | null;
  error: string | null;
  retryAfterMs: number | null;
  latencyMs: number;
}

/**
 * alert_deliveries seen from the worker: claim before sending, then record the outcome with an attempt row,
 * in one transaction each. The claim is the guard against sending twice: only a pending or retrying
 * delivery (or one whose sender's lease ran out) can be claimed, and by one worker at a time.
 */
@Injectable()
export class DeliveryRepository {
  constructor(private readonly db: DataSource) {}

  async claim(deliveryId: string, now: Date, leaseMs: number): Promise<ClaimedDelivery | null> {
    const rows: ClaimedDelivery[] = await this.db.query(
      // (UPDATE ... RETURNING through TypeORM answers [rows, count]; the CTE makes it a plain SELECT.)
      `WITH claimed AS (
         UPDATE alert_deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $3
          WHERE id = $1
            AND (status IN ('pending', 'retrying') OR (status = 'sending' AND lease_until < $2))
          RETURNING id, tenant_id, audience, channel, contact_id::text, attempts, message, created_at)
       SELECT * FROM claimed`,
      [deliveryId, now.toISOString(), new Date(now.getTime() + leaseMs).toISOString()],
    );
    return rows[0] ?? null;
  }

  async statusOf(deliveryId: string): Promise<string | null> {
    const rows: Array<{ status: string }> = await this.db.query(`SELECT status FROM alert_deliveries WHERE id = $1`, [
      deliveryId,
    ]);
    return rows[0]?.status ?? null;
  }

  /** The contact a delivery goes to (also a deleted one: the caller decides). */
  async contactOfDelivery(deliveryId: string): Promise<DeliveryContact | null> {
    const rows: DeliveryContact[] = await this.db.query(
      `SELECT c.channel, c.email, c.url_encrypted, c.secret_encrypted, c.deleted_at
         FROM alert_deliveries d JOIN alert_contacts c ON c.id = d.contact_id WHERE d.id = $1`,
      [deliveryId],
    );
    return rows[0] ?? null;
  }

  async recordSent(delivery: ClaimedDelivery, record: AttemptRecord, now: Date): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE alert_deliveries SET status = 'sent', sent_at = $2, lease_until = NULL, last_error = NULL WHERE id = $1`,
        [delivery.id, now.toISOString()],
      );
      await insertAttempt(tx.query.bind(tx), delivery, 'sent', record, now);
    });
  }

  async recordRetry(delivery: ClaimedDelivery, record: AttemptRecord, now: Date): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE alert_deliveries SET status = 'retrying', lease_until = NULL, last_error = $2 WHERE id = $1`,
        [delivery.id, record.error],
      );
      await insertAttempt(tx.query.bind(tx), delivery, 'retry', record, now);
    });
  }

  /** The dead letter: no more attempts. The admin "delivery failures" rule reads these rows. */
  async recordDead(delivery: ClaimedDelivery, record: AttemptRecord, now: Date): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE alert_deliveries SET status = 'dead', dead_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1`,
        [delivery.id, now.toISOString(), record.error],
      );
      await insertAttempt(tx.query.bind(tx), delivery, 'dead', record, now);
    });
  }

  /**
   * In-app banners of a delivered group: one per audience and alert key, reopened when the alert fires
   * again; resolved_at follows the alert's current state, so a banner written after its alert resolved
   * (the group window is longer than the incident) is born resolved.
   */
  async writeBanners(delivery: ClaimedDelivery): Promise<void> {
    const latest = new Map<string, AlertMessage['alerts'][number]>();
    for (const item of delivery.message.alerts) if (item.kind !== 'resolved') latest.set(item.alert_key, item);
    const items = [...latest.values()];
    if (items.length === 0) return;
    await this.db.query(
      `INSERT INTO alert_banners AS b (tenant_id, audience, alert_key, rule, severity, title, body, resolved_at)
       SELECT $1, $2, i.alert_key, i.rule, i.severity, i.title, i.body,
              CASE WHEN a.status = 'resolved' THEN a.resolved_at END
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS i(alert_key, rule, severity, title, body)
         LEFT JOIN alerts a ON a.alert_key = i.alert_key
       ON CONFLICT (audience, alert_key) DO UPDATE SET
         severity = EXCLUDED.severity, title = EXCLUDED.title, body = EXCLUDED.body, updated_at = now(),
         resolved_at = EXCLUDED.resolved_at`,
      [
        delivery.tenant_id,
        delivery.audience,
        items.map((i) => i.alert_key),
        items.map((i) => i.rule),
        items.map((i) => i.severity),
        items.map((i) => i.title),
        items.map((i) => i.body),
      ],
    );
  }
}

type Query = (sql: string, parameters?: unknown[]) => Promise<unknown>;

async function insertAttempt(
  query: Query,
  delivery: ClaimedDelivery,
  outcome: 'sent' | 'retry' | 'dead',
  record: AttemptRecord,
  now: Date,
): Promise<void> {
  await query(
    `INSERT INTO alert_delivery_attempts (delivery_id, tenant_id, channel, attempt, outcome, status_code, error,
       retry_after_ms, latency_ms, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (delivery_id, attempt) DO NOTHING`,
    [
      delivery.id,
      delivery.tenant_id,
      delivery.channel,
      record.attempt,
      outcome,
      record.statusCode,
      record.error,
      record.retryAfterMs,
      Math.round(record.latencyMs),
      now.toISOString(),
    ],
  );
}
