import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { createDataSource, PartitionManager } from '@agentmeter/database';
import { Clock } from '@agentmeter/domain';
import { createTestDatabase, type TestDatabase } from '@agentmeter/testing';
import { loadConfig } from '../src/config';
import { RetentionRepository } from '../src/retention/retention.repository';
import { RetentionService } from '../src/retention/retention.service';

describe('RetentionService against PostgreSQL', () => {
  let database: TestDatabase;
  let db: DataSource;
  let partitions: PartitionManager;
  let retention: RetentionService;
  const now = new Date('2026-11-25T03:17:00Z');
  const logger = { info: () => undefined } as unknown as Logger;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    partitions = new PartitionManager(db);
    const config = loadConfig({ DATABASE_URL: database.url, RETENTION_RAW_DAYS: '14' });
    retention = new RetentionService(config, logger, partitions, new RetentionRepository(db), new Clock());
  });

  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  async function usageRow(day: string, calls: number, latencyBuckets: number[]): Promise<void> {
    await db.query(
      `INSERT INTO usage_daily VALUES ($1, 't', 'p', 'planner', 'llm', 'gpt-4.1', 'openai', '', '', '', $2, $2, 0,
         $3, $4::bigint[], 100, 50, 10, 1000, 0)`,
      [day, calls, calls * 10, `{${latencyBuckets.join(',')}}`],
    );
    // Its per-model sum, as ingest writes it.
    await db.query(`INSERT INTO usage_model_daily VALUES ($1, 't', 'gpt-4.1', 'openai', $2, 100, 50, 10, 1000, 0)`, [
      day,
      calls,
    ]);
  }

  it('drops raw partitions past the window, keeps recent ones, and prepares the days ahead', async () => {
    await partitions.ensureDays(['2026-10-01', '2026-11-10', '2026-11-12']);
    await db.query(
      `INSERT INTO event_log (source, event_id, tenant_id, type, time, payload) VALUES
         ('s', 'old', 't', 'run_started', '2026-10-01T12:00:00Z', '{}'),
         ('s', 'new', 't', 'run_started', '2026-11-12T12:00:00Z', '{}')`,
    );

    const outcome = await retention.run(now);

    expect(outcome.droppedPartitions.sort()).toEqual(
      [
        'event_log_p20261001',
        'external_charges_p20261001',
        'llm_calls_p20261001',
        'tool_calls_p20261001',
        'event_log_p20261110',
        'external_charges_p20261110',
        'llm_calls_p20261110',
        'tool_calls_p20261110',
      ].sort(),
    );
    expect(await db.query(`SELECT event_id FROM events`)).toEqual([{ event_id: 'new' }]);
    const days: Array<{ day: string }> = await db.query(
      `SELECT DISTINCT day::text AS day FROM partitions_log ORDER BY 1`,
    );
    expect(days.map((d) => d.day)).toEqual([
      '2026-11-12',
      '2026-11-25',
      '2026-11-26',
      '2026-11-27',
      '2026-11-28',
      '2026-11-29',
      '2026-11-30',
      '2026-12-01',
      '2026-12-02',
    ]);
    // A day that was dropped can be written again (a late event) after its partition is recreated.
    await partitions.ensureDays(['2026-10-01']);
    await db.query(
      `INSERT INTO event_log (source, event_id, tenant_id, type, time, payload) VALUES ('s', 'late', 't', 'run_started', '2026-10-01T13:00:00Z', '{}')`,
    );
  });

  it('folds daily usage older than 90 days into months without changing any total', async () => {
    await usageRow('2026-07-01', 3, [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await usageRow('2026-07-15', 5, [0, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await usageRow('2026-08-01', 2, [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await usageRow('2026-11-01', 7, [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const totals = `SELECT sum(call_count)::int AS calls, sum(cost_micros)::int AS cost FROM (
      SELECT call_count, cost_micros FROM usage_daily UNION ALL SELECT call_count, cost_micros FROM usage_monthly) u`;
    const before = await db.query(totals);

    const outcome = await retention.run(now);

    expect(outcome.foldedUsageRows).toBe(3);
    expect(await db.query(totals)).toEqual(before);
    const months = await db.query(
      `SELECT month::text AS month, call_count::int AS calls, latency_buckets::text AS buckets FROM usage_monthly ORDER BY month`,
    );
    expect(months).toEqual([
      { month: '2026-07-01', calls: 8, buckets: '{1,3,4,0,0,0,0,0,0,0,0,0,0}' },
      { month: '2026-08-01', calls: 2, buckets: '{0,0,0,2,0,0,0,0,0,0,0,0,0}' },
    ]);
    expect(await db.query(`SELECT day::text AS day FROM usage_daily`)).toEqual([{ day: '2026-11-01' }]);
    // usage_model_daily loses the same days, so it stays the sum of usage_daily.
    expect(await db.query(`SELECT day::text AS day, call_count::int AS calls FROM usage_model_daily`)).toEqual([
      { day: '2026-11-01', calls: 7 },
    ]);
  });

  it('deletes runs and their stages after 13 months', async () => {
    await db.query(`INSERT INTO tenants (tenant_id) VALUES ('t') ON CONFLICT DO NOTHING`);
    await db.query(`INSERT INTO projects (tenant_id, project_id) VALUES ('t', 'p') ON CONFLICT DO NOTHING`);
    for (const [run, at] of [
      ['ancient', '2025-09-01T00:00:00Z'],
      ['recent', '2026-11-01T00:00:00Z'],
    ]) {
      await db.query(
        `INSERT INTO runs (tenant_id, run_id, project_id, first_event_at, last_event_at) VALUES ('t', $1, 'p', $2, $2)`,
        [run, at],
      );
      await db.query(`INSERT INTO stages (tenant_id, run_id, phase, attempt) VALUES ('t', $1, 'plan', 1)`, [run]);
    }
    const outcome = await retention.run(now);
    expect(outcome.deletedRuns).toBe(1);
    expect(await db.query(`SELECT run_id FROM runs`)).toEqual([{ run_id: 'recent' }]);
    expect(await db.query(`SELECT run_id FROM stages`)).toEqual([{ run_id: 'recent' }]);
  });
});
