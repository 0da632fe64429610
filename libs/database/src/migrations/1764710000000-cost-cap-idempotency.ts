import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * cost-cap: client idempotency of admission (docs/cost-cap.md "Retries and idempotency").
 * - reservations.idempotency_key: the key a Coordinator may send with a reserve, so that repeating the
 *   request (after a timeout) answers with the same reservation instead of holding the spend twice. Unique
 *   per tenant; the partial index is also the arbiter of two concurrent requests with the same key.
 */
export class CostCapIdempotency1764710000000 implements MigrationInterface {
  name = 'CostCapIdempotency1764710000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE reservations ADD COLUMN idempotency_key text;
      CREATE UNIQUE INDEX reservations_idempotency ON reservations (tenant_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX reservations_idempotency;
      ALTER TABLE reservations DROP COLUMN idempotency_key;
    `);
  }
}
