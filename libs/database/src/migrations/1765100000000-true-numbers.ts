import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * True numbers (docs/query.md "Definitions"):
 * - `runs.user_id`: the user a run_started names, carried by ingest onto the run's calls and usage rows
 *   (backfilled from the event log for runs whose run_started is still retained);
 * - `phase_targets`: per tenant and phase, the time a phase should take to advance (docs/query.md
 *   "Definitions a reader would otherwise guess": `phases_within_target`), set by Owner/Admin through query;
 * - `alert_feedback`: one verdict (useful or not) per alert and user, from which query reports precision;
 * - `latency_sketch` on the usage rollups: sparse DDSketch bins of the calls' latencies (libs/domain
 *   latency-sketch.ts), merged by adding counts (`jsonb_counts_add`, aggregate `jsonb_counts_sum`). Rows
 *   written before have none; their percentiles fall back to the histogram bound (docs/query.md).
 */
export class TrueNumbers1765100000000 implements MigrationInterface {
  name = 'TrueNumbers1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION jsonb_counts_add(a jsonb, b jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE (
                SELECT COALESCE(jsonb_object_agg(k, n), '{}'::jsonb)
                  FROM (SELECT k, sum(v::bigint) AS n
                          FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) AS t(k, v)
                         GROUP BY k HAVING sum(v::bigint) <> 0) AS s) END $$;
      CREATE AGGREGATE jsonb_counts_sum(jsonb) (SFUNC = jsonb_counts_add, STYPE = jsonb);
      ALTER TABLE usage_daily ADD COLUMN latency_sketch jsonb;
      ALTER TABLE usage_monthly ADD COLUMN latency_sketch jsonb;
    `);
    await q.query(`ALTER TABLE runs ADD COLUMN user_id text`);
    await q.query(`
      UPDATE runs r SET user_id = e.payload->>'user_id'
        FROM events e
       WHERE e.type = 'run_started' AND e.tenant_id = r.tenant_id AND e.run_id = r.run_id
         AND e.payload->>'user_id' IS NOT NULL`);
    await q.query(`
      CREATE TABLE phase_targets (
        tenant_id   text NOT NULL,
        phase       text NOT NULL,
        target_ms   bigint NOT NULL CHECK (target_ms > 0),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        updated_by  text NOT NULL,
        PRIMARY KEY (tenant_id, phase)
      );
      CREATE TABLE alert_feedback (
        alert_key   text NOT NULL,
        tenant_id   text NOT NULL,
        rule        text NOT NULL,
        user_id     text NOT NULL,
        useful      boolean NOT NULL,
        note        text,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (alert_key, user_id)
      );
      CREATE INDEX alert_feedback_tenant_rule ON alert_feedback (tenant_id, rule);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alert_feedback; DROP TABLE phase_targets; ALTER TABLE runs DROP COLUMN user_id`);
    await q.query(`ALTER TABLE usage_monthly DROP COLUMN latency_sketch; ALTER TABLE usage_daily DROP COLUMN latency_sketch;
      DROP AGGREGATE jsonb_counts_sum(jsonb); DROP FUNCTION jsonb_counts_add(jsonb, jsonb)`);
  }
}
