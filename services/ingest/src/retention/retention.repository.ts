import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

const DIMENSIONS = 'tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id';

/** SQL of retention: folding old daily rollups into months and deleting expired aggregates. */
@Injectable()
export class RetentionRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Moves usage_daily rows before `cutoff` into usage_monthly (adding to existing months) and deletes the
   * same days of usage_model_daily, their per-model sums, in one transaction (tables in ingest's order):
   * usage_model_daily stays the sum of usage_daily. It is read for the last 30 days only, so months of
   * it are not kept.
   */
  async foldUsageBefore(cutoff: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows: Array<{ n: number }> = await tx.query(
        `WITH old AS (
         DELETE FROM usage_daily WHERE day < $1::date RETURNING *
       ), months AS (
         SELECT date_trunc('month', day)::date AS month, ${DIMENSIONS},
                sum(call_count) AS call_count, sum(success_count) AS success_count,
                sum(failure_count) AS failure_count, sum(total_latency_ms) AS total_latency_ms,
                bigint_array_sum(latency_buckets) AS latency_buckets, sum(input_tokens) AS input_tokens,
                sum(output_tokens) AS output_tokens, sum(cached_tokens) AS cached_tokens,
                sum(cost_micros) AS cost_micros, sum(unpriced_calls) AS unpriced_calls,
                jsonb_counts_sum(latency_sketch) AS latency_sketch
           FROM old
          GROUP BY 1, ${DIMENSIONS}
       ), folded AS (
         INSERT INTO usage_monthly AS m SELECT * FROM months
         ON CONFLICT (month, ${DIMENSIONS}) DO UPDATE SET
           call_count       = m.call_count + EXCLUDED.call_count,
           success_count    = m.success_count + EXCLUDED.success_count,
           failure_count    = m.failure_count + EXCLUDED.failure_count,
           total_latency_ms = m.total_latency_ms + EXCLUDED.total_latency_ms,
           latency_buckets  = bigint_array_add(m.latency_buckets, EXCLUDED.latency_buckets),
           input_tokens     = m.input_tokens + EXCLUDED.input_tokens,
           output_tokens    = m.output_tokens + EXCLUDED.output_tokens,
           cached_tokens    = m.cached_tokens + EXCLUDED.cached_tokens,
           cost_micros      = m.cost_micros + EXCLUDED.cost_micros,
           unpriced_calls   = m.unpriced_calls + EXCLUDED.unpriced_calls,
           latency_sketch   = jsonb_counts_add(m.latency_sketch, EXCLUDED.latency_sketch)
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM old)::int AS n`,
        [cutoff],
      );
      await tx.query(`DELETE FROM usage_model_daily WHERE day < $1::date`, [cutoff]);
      return rows[0]?.n ?? 0;
    });
  }

  /**
   * Deletes aggregates older than `cutoff`: monthly rollups, and runs (with their stages, failures and span tree)
   * whose last event is older. These tables are small next to the raw ones, so rows are deleted.
   */
  async deleteAggregatesBefore(cutoff: string): Promise<{ runs: number; months: number }> {
    return this.db.transaction(async (tx) => {
      const months: Array<{ n: number }> = await tx.query(
        `WITH d AS (DELETE FROM usage_monthly WHERE month < date_trunc('month', $1::date) RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
        [cutoff],
      );
      const runs: Array<{ n: number }> = await tx.query(
        `WITH expired AS (SELECT tenant_id, run_id FROM runs WHERE last_event_at < $1::date),
              s AS (DELETE FROM stages USING expired e WHERE stages.tenant_id = e.tenant_id AND stages.run_id = e.run_id),
              f AS (DELETE FROM failures USING expired e WHERE failures.tenant_id = e.tenant_id AND failures.run_id = e.run_id),
              i AS (DELETE FROM interventions USING expired e WHERE interventions.tenant_id = e.tenant_id AND interventions.run_id = e.run_id),
              t AS (DELETE FROM llm_call_spans USING expired e WHERE llm_call_spans.tenant_id = e.tenant_id AND llm_call_spans.run_id = e.run_id),
              r AS (DELETE FROM runs USING expired e WHERE runs.tenant_id = e.tenant_id AND runs.run_id = e.run_id RETURNING 1)
         SELECT count(*)::int AS n FROM r`,
        [cutoff],
      );
      return { runs: runs[0]?.n ?? 0, months: months[0]?.n ?? 0 };
    });
  }
}
