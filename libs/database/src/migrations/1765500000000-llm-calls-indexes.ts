import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Only the indexes a query uses on llm_calls, the largest table ingest writes after the event log: every
 * index is maintained for every call of every batch. `llm_calls_model_time (model, time)` served only the
 * optional model filter of the re-pricing tool, which reads a time range of day partitions anyway. Kept: the
 * primary key (deduplication, retraction), `llm_calls_run` (ingest carrying a late run_started's user onto
 * the run's calls) and `llm_calls_tenant_time` (analytics by phase, re-pricing of one tenant).
 * docs/decisions.md "Only the indexes a query uses on llm_calls".
 */
export class LlmCallsIndexes1765500000000 implements MigrationInterface {
  name = 'LlmCallsIndexes1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS llm_calls_model_time`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX llm_calls_model_time ON llm_calls (model, time)`);
  }
}
