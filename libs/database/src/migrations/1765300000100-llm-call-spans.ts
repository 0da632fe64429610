import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The span tree of LLM calls that name their ancestors (OTLP exports): one row per call span, with the
 * ancestors its exporter saw and whether its usage is counted. Ingest reads a trace's rows to count usage on
 * leaf-most spans only across export requests (docs/otlp.md "Aggregate spans"). Rows go with their run
 * (retention deletes them with the run's row).
 */
export class LlmCallSpans1765300000100 implements MigrationInterface {
  name = 'LlmCallSpans1765300000100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE llm_call_spans (
        tenant_id         text NOT NULL,
        run_id            text NOT NULL,
        trace_id          text NOT NULL,
        span_id           text NOT NULL,
        ancestor_span_ids text[] NOT NULL,
        counted           boolean NOT NULL,
        source            text NOT NULL,
        event_id          text NOT NULL,
        time              timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, run_id, trace_id, span_id)
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE llm_call_spans`);
  }
}
