import { createTestDatabase, type TestDatabase } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { createDataSource } from './data-source';
import { LlmCallsIndexes1765500000000 } from './migrations/1765500000000-llm-calls-indexes';
import { PartitionManager } from './partitions';

/** llm_calls keeps only the indexes a query uses, on the parent and on every day partition. */
describe('llm_calls indexes', () => {
  let db: TestDatabase;
  let source: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = createDataSource({ url: db.url, poolSize: 2 });
    await source.initialize();
  });

  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  const indexesOf = async (table: string): Promise<string[]> => {
    const rows: Array<{ definition: string }> = await source.query(
      `SELECT regexp_replace(indexdef, '^.* USING ', '') AS definition FROM pg_indexes WHERE tablename = $1 ORDER BY 1`,
      [table],
    );
    return rows.map((row) => row.definition);
  };

  const expected = ['btree (source, event_id, "time")', 'btree (tenant_id, "time")', 'btree (tenant_id, run_id)'];

  it('are the primary key, (tenant_id, time) and (tenant_id, run_id), on a later day partition too', async () => {
    await new PartitionManager(source).ensureDays(['2026-12-07']);
    expect(await indexesOf('llm_calls')).toEqual(expected);
    expect(await indexesOf('llm_calls_p20261207')).toEqual(expected);
  });

  it('come back as before when the migration is reverted, and go again when it is applied', async () => {
    const migration = new LlmCallsIndexes1765500000000();
    const runner = source.createQueryRunner();
    try {
      await migration.down(runner);
      expect(await indexesOf('llm_calls')).toEqual(['btree (model, "time")', ...expected]);
      await migration.up(runner);
      expect(await indexesOf('llm_calls')).toEqual(expected);
    } finally {
      await runner.release();
    }
  });
});
