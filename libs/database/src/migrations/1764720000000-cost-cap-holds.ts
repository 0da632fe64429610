import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * cost-cap: holds last until their spend is known (docs/cost-cap.md "Reservations and holds").
 * - A reservation past its expiry stays `expired` and keeps its hold until it is committed or released. Rows
 *   expired under the old rule (their hold was given back at expiry) become `lapsed`: a late commit still
 *   counts them, a rebuild does not hold them.
 * - Partial indexes on the unsettled reservations of a run and of a tenant-day: a counter key found missing
 *   in Redis is reloaded from them and the ledger.
 * - reservations.request_hash: the fingerprint of the reserve request, so a repeated idempotency_key with a
 *   different body is refused (409) rather than answered with the first reservation.
 * - cost_cap_outbox.trace_headers: the trace context of the decision that enqueued a message, published
 *   with it (the outbox publishes after the request is over).
 */
export class CostCapHolds1764720000000 implements MigrationInterface {
  name = 'CostCapHolds1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
      ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
        CHECK (status IN ('open', 'committed', 'released', 'expired', 'lapsed'));
      UPDATE reservations SET status = 'lapsed' WHERE status = 'expired';
      ALTER TABLE reservations ADD COLUMN request_hash text;
      CREATE INDEX reservations_unsettled_run ON reservations (tenant_id, run_id) WHERE status IN ('open', 'expired');
      CREATE INDEX reservations_unsettled_day ON reservations (tenant_id, day) WHERE status IN ('open', 'expired');
      ALTER TABLE cost_cap_outbox ADD COLUMN trace_headers jsonb;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE cost_cap_outbox DROP COLUMN trace_headers;
      DROP INDEX reservations_unsettled_day;
      DROP INDEX reservations_unsettled_run;
      ALTER TABLE reservations DROP COLUMN request_hash;
      UPDATE reservations SET status = 'expired' WHERE status = 'lapsed';
      ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
      ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
        CHECK (status IN ('open', 'committed', 'released', 'expired'));
    `);
  }
}
