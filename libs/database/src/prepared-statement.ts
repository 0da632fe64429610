import type { Pool, QueryResultRow } from 'pg';
import type { DataSource } from 'typeorm';

/**
 * Runs a named statement on the DataSource's connection pool. TypeORM's `query()` sends unnamed statements,
 * which PostgreSQL parses and plans on every call; a named one is parsed once per connection and, after five
 * executions, runs a cached generic plan. That matters for a statement whose planning costs more than its
 * execution: a lateral read of a day-partitioned table, whose partitions are pruned only when it runs (planning
 * it touches every partition). Each name must always stand for the same text (node-postgres refuses a name
 * reused with another text). Behind PgBouncer, transaction pooling needs `max_prepared_statements` (1.21+).
 */
export async function queryPrepared<T extends QueryResultRow>(
  db: DataSource,
  name: string,
  text: string,
  values: unknown[],
): Promise<T[]> {
  const pool = (db.driver as unknown as { master: Pool }).master;
  const result = await pool.query<T>({ name, text, values });
  return result.rows;
}
