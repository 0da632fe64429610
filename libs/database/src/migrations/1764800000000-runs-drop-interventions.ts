import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * runs.interventions was never maintained: human interventions are rows of `interventions` (one per
 * user_override event, idempotent by event), and the query API counts them there. A counter column beside
 * them would be a second truth to keep in step, so it goes.
 */
export class RunsDropInterventions1764800000000 implements MigrationInterface {
  name = 'RunsDropInterventions1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs DROP COLUMN interventions`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs ADD COLUMN interventions integer NOT NULL DEFAULT 0`);
    await q.query(`
      UPDATE runs SET interventions = i.n
        FROM (SELECT tenant_id, run_id, count(*)::int AS n FROM interventions GROUP BY tenant_id, run_id) i
       WHERE runs.tenant_id = i.tenant_id AND runs.run_id = i.run_id`);
  }
}
