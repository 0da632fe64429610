import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * usage_model_daily: the LLM rows of usage_daily summed per UTC day, tenant, model and provider, for the
 * Admin Overview (today's spend by model and tenant, token and $ trends over 30 days). usage_daily has one
 * row per day x tenant x project x role x model x user (and tool rows), so those sums grew with its rows;
 * this table has one row per day x tenant x model.
 *
 * It is always the sum of usage_daily's llm rows by its key: ingest adds to both in the batch transaction,
 * the reprice moves both by the same deltas, and retention deletes its days when it folds usage_daily's
 * into months. Phase is not a key: usage_daily is not kept per phase either.
 *
 * The backfill locks usage_daily against writes (ingest waits) so it sums a settled table. Ingest replicas
 * of an earlier release write usage_daily only: stop them before this migration (docs/operations.md,
 * docs/query.md "Speed").
 */
export class UsageModelDaily1764700000000 implements MigrationInterface {
  name = 'UsageModelDaily1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE usage_model_daily (
        day             date NOT NULL,
        tenant_id       text NOT NULL,
        model           text NOT NULL,
        provider        text NOT NULL,
        call_count      bigint NOT NULL,
        input_tokens    bigint NOT NULL,
        output_tokens   bigint NOT NULL,
        cached_tokens   bigint NOT NULL,
        cost_micros     bigint NOT NULL,
        unpriced_calls  bigint NOT NULL,
        PRIMARY KEY (day, tenant_id, model, provider)
      );
      -- One tenant's days (the primary key serves every tenant's).
      CREATE INDEX usage_model_daily_tenant_day ON usage_model_daily (tenant_id, day);

      LOCK TABLE usage_daily IN SHARE MODE;
      INSERT INTO usage_model_daily (day, tenant_id, model, provider, call_count, input_tokens, output_tokens,
          cached_tokens, cost_micros, unpriced_calls)
        SELECT day, tenant_id, model, provider, sum(call_count), sum(input_tokens), sum(output_tokens),
               sum(cached_tokens), sum(cost_micros), sum(unpriced_calls)
          FROM usage_daily
         WHERE kind = 'llm'
         GROUP BY day, tenant_id, model, provider;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE usage_model_daily`);
  }
}
