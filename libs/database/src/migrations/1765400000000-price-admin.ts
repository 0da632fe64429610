import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Price administration through the query API (docs/query.md "Prices"): each price row gets an id the API
 * names it by and a retired_at (from then on the price no longer applies, libs/domain pricing.ts), and a
 * reprice records the API request that started it (its audit_log id), so the request's status can show
 * the outcome.
 */
export class PriceAdmin1765400000000 implements MigrationInterface {
  name = 'PriceAdmin1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE model_prices
        ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
        ADD COLUMN retired_at timestamptz CHECK (retired_at = date_trunc('milliseconds', retired_at));
      ALTER TABLE tenant_model_prices
        ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
        ADD COLUMN retired_at timestamptz CHECK (retired_at = date_trunc('milliseconds', retired_at));
      ALTER TABLE reprice_audit ADD COLUMN request_id bigint UNIQUE;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE reprice_audit DROP COLUMN request_id;
      ALTER TABLE tenant_model_prices DROP COLUMN id, DROP COLUMN retired_at;
      ALTER TABLE model_prices DROP COLUMN id, DROP COLUMN retired_at;
    `);
  }
}
