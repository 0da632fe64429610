import { createTestDatabase, type TestDatabase } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { createDataSource } from './data-source';
import { queryPrepared } from './prepared-statement';

/** A named statement is prepared once per connection, runs a cached generic plan, and sees partitions added later. */
describe('queryPrepared', () => {
  let db: TestDatabase;
  let source: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    // One connection, so the statement and the catalogue reads below share a session.
    source = createDataSource({ url: db.url, poolSize: 1 });
    await source.initialize();
    await source.query(`CREATE TABLE readings (day date NOT NULL, value int NOT NULL) PARTITION BY RANGE (day)`);
    await source.query(
      `CREATE TABLE readings_d1 PARTITION OF readings FOR VALUES FROM ('2026-12-01') TO ('2026-12-02');
       INSERT INTO readings VALUES ('2026-12-01', 5), ('2026-12-01', 7)`,
    );
  });

  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  const TEXT = `SELECT count(*)::int AS n, coalesce(sum(value), 0)::int AS total FROM readings WHERE day >= $1 AND day < $2`;
  const read = (from: string, to: string) =>
    queryPrepared<{ n: number; total: number }>(source, 'test-readings', TEXT, [from, to]);

  it('answers with its parameters, prepared once and then planned generically', async () => {
    for (let i = 0; i < 7; i++) expect(await read('2026-12-01', '2026-12-02')).toEqual([{ n: 2, total: 12 }]);
    expect(await read('2026-11-01', '2026-11-02')).toEqual([{ n: 0, total: 0 }]);
    const statements: Array<{ name: string; generic_plans: string }> = await source.query(
      `SELECT name, generic_plans::text FROM pg_prepared_statements WHERE name = 'test-readings'`,
    );
    expect(statements).toHaveLength(1);
    expect(Number(statements[0]!.generic_plans)).toBeGreaterThan(0);
  });

  it('sees a day partition created after it was prepared', async () => {
    await source.query(
      `CREATE TABLE readings_d2 PARTITION OF readings FOR VALUES FROM ('2026-12-02') TO ('2026-12-03');
       INSERT INTO readings VALUES ('2026-12-02', 30)`,
    );
    expect(await read('2026-12-01', '2026-12-03')).toEqual([{ n: 3, total: 42 }]);
    expect(await read('2026-12-02', '2026-12-03')).toEqual([{ n: 1, total: 30 }]);
  });
});
