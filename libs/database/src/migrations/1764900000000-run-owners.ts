import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A run id belongs to the first tenant whose event names it (docs/decisions.md): ingest claims it here
 * and dead-letters another tenant's events for the same run id, so a run never exists under two tenants.
 * Existing runs are claimed by the tenant that started them first.
 */
export class RunOwners1764900000000 implements MigrationInterface {
  name = 'RunOwners1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE run_owners (run_id text PRIMARY KEY, tenant_id text NOT NULL)`);
    await q.query(`
      INSERT INTO run_owners (run_id, tenant_id)
      SELECT DISTINCT ON (run_id) run_id, tenant_id FROM runs
       ORDER BY run_id, started_at NULLS LAST, tenant_id`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE run_owners`);
  }
}
