import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import { dropDatabase, ensureDatabase, MIGRATIONS, PartitionManager, PricingRepository } from '@agentmeter/database';
import { parseUsd, traceIdOf } from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { generateWorkload, testEnvironment, testRedactor } from '@agentmeter/testing';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { EventsRepository } from '../../ingest/src/events/events.repository';
import { EventsService } from '../../ingest/src/events/events.service';
import { IngestMetrics } from '../../ingest/src/events/ingest.metrics';
import { PricingService } from '../../ingest/src/pricing/pricing.service';
import { RunsRepository } from '../src/runs/runs.repository';

/**
 * The migration to call facts stored once (docs/decisions.md "Call facts stored once"): a database at the
 * migration before it, filled with the demo workload (`make up`) and a test workload as ingest stored them
 * then (every event in the log, the calls in their tables too), reads the same timeline for every run and
 * the same counts after the migration, and after reverting it; ingest then recognises every event again.
 */
describe('call facts stored once: the migration', () => {
  const demo = generateWorkload({
    seed: 42,
    tenants: 3,
    projectsPerTenant: 2,
    runsPerProject: 5,
    start: new Date('2026-12-01T10:00:00Z'),
    prefix: 'demo42',
  });
  const workload = generateWorkload({
    seed: 3,
    tenants: 2,
    projectsPerTenant: 2,
    runsPerProject: 4,
    start: new Date('2026-11-30T22:30:00Z'),
  });
  const events = [...demo.events, ...workload.events].map(
    ({ key: _key, ...event }) => AgentEventSchema.parse(event) as AgentEvent,
  );
  // Some calls are aggregate spans (in the log only, docs/otlp.md "Aggregate spans"); some carry a
  // traceparent of another trace than their data's (the log and the call table kept different trace ids).
  let calls = 0;
  const aggregates = new Set<AgentEvent>();
  const received = events.map((event) => {
    if (event.type === 'llm_call' && ++calls % 9 === 0) {
      const aggregate = { ...event, data: { ...event.data, ancestor_span_ids: [] } } as AgentEvent;
      aggregates.add(aggregate);
      return aggregate;
    }
    if ((event.type === 'llm_call' || event.type === 'tool_call') && calls % 7 === 0) {
      return { ...event, traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` };
    }
    return event;
  });
  const redactor = testRedactor();
  const name = `am_${testEnvironment().runId}_${randomBytes(4).toString('hex')}`;
  const url = Object.assign(new URL(testEnvironment().databaseUrl), { pathname: `/${name}` }).toString();
  const CallFactsStoredOnce = MIGRATIONS.find((migration) => migration.name === 'CallFactsStoredOnce1765600000000')!;
  const previous = MIGRATIONS.slice(0, MIGRATIONS.indexOf(CallFactsStoredOnce));
  let db: DataSource;

  beforeAll(async () => {
    await ensureDatabase(url);
    db = new DataSource({ type: 'postgres', url, migrations: previous, migrationsTableName: 'schema_migrations' });
    await db.initialize();
    await db.runMigrations({ transaction: 'each' });
    await storeAsBefore(db, received, aggregates);
  });

  afterAll(async () => {
    await db?.destroy();
    await dropDatabase(url);
  });

  it('keeps every run timeline, every count, and then recognises every event as stored', async () => {
    const before = await read(db);
    expect(before.counts.total).toBe(events.length);
    expect(before.counts.byType.filter((t) => t.n !== t.keys)).toEqual([]);

    const migrated = new DataSource({
      type: 'postgres',
      url,
      migrations: MIGRATIONS,
      migrationsTableName: 'schema_migrations',
    });
    await migrated.initialize();
    try {
      expect((await migrated.runMigrations({ transaction: 'each' })).map((m) => m.name)).toContain(
        'CallFactsStoredOnce1765600000000',
      );
      const after = await read(migrated);
      expect(after).toEqual(before);
      // Each fact once: the log keeps the other events and the aggregate calls only.
      expect(
        await migrated.query(
          `SELECT type, count(*)::int AS n FROM event_log WHERE type IN ('llm_call', 'tool_call', 'external_charge') GROUP BY 1`,
        ),
      ).toEqual([{ type: 'llm_call', n: aggregates.size }]);
      expect(await migrated.query(`SELECT DISTINCT parent FROM partitions_log ORDER BY 1`)).toEqual([
        { parent: 'event_log' },
        { parent: 'external_charges' },
        { parent: 'llm_calls' },
        { parent: 'tool_calls' },
      ]);
      expect(await migrated.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'events_p%'`)).toEqual([
        { n: 0 },
      ]);

      // Reverted, the log holds every event again; applied again, the same.
      const runner = migrated.createQueryRunner();
      try {
        await runner.startTransaction();
        await new CallFactsStoredOnce().down(runner);
        await runner.commitTransaction();
        expect(await read(migrated)).toEqual(before);
        await runner.startTransaction();
        await new CallFactsStoredOnce().up(runner);
        await runner.commitTransaction();
      } finally {
        await runner.release();
      }
      expect(await read(migrated)).toEqual(before);

      // Every event delivered again (redacted by ingest as it was then) is recognised as stored.
      const pricing = new PricingService(new PricingRepository(migrated), createLogger('migration-test', 'silent'));
      await pricing.refresh();
      const service = new EventsService(
        new EventsRepository(migrated),
        new PartitionManager(migrated),
        new IngestMetrics(),
        pricing,
        testRedactor(),
      );
      for (let i = 0; i < received.length; i += 50) await service.ingest(received.slice(i, i + 50));
      for (const event of [...aggregates]) await service.ingest([event]);
      expect(await read(migrated)).toEqual(before);
    } finally {
      await migrated.destroy();
    }
  });

  /**
   * How ingest stored a batch before this migration: every event (redacted, without prompt texts) in the log
   * `events`, each counted LLM call, tool call and external charge in its table too, and the span nodes of
   * the aggregates. Day partitions as PartitionManager made them then.
   */
  async function storeAsBefore(source: DataSource, batch: AgentEvent[], uncounted: Set<AgentEvent>): Promise<void> {
    const days = [...new Set(batch.map((e) => e.time.slice(0, 10)))];
    for (const day of days) {
      const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
      for (const table of ['events', 'llm_calls', 'tool_calls', 'external_charges']) {
        const partition = `${table}_p${day.replaceAll('-', '')}`;
        await source.query(
          `CREATE TABLE ${partition} PARTITION OF ${table} FOR VALUES FROM ('${day} 00:00:00+00') TO ('${next} 00:00:00+00')`,
        );
        await source.query(`INSERT INTO partitions_log (parent, partition, day) VALUES ($1, $2, $3)`, [
          table,
          partition,
          day,
        ]);
      }
    }
    const stored = batch.map((original) => {
      const { event } = redactor.event(original);
      const { prompt: _prompt, completion: _completion, ...data } = event.data as Record<string, unknown>;
      return { event: { ...event, data } as AgentEvent, aggregate: uncounted.has(original) };
    });
    const json = (rows: object[]) => [JSON.stringify(rows)];
    await source.query(
      `INSERT INTO events (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
       SELECT source, event_id, tenant_id, run_id, type, time, payload, trace_id
         FROM json_populate_recordset(NULL::events, $1::json)`,
      json(
        stored.map(({ event: e }) => ({
          source: e.source,
          event_id: e.id,
          tenant_id: e.data.tenant_id,
          run_id: 'run_id' in e.data ? e.data.run_id : null,
          type: e.type,
          time: e.time,
          payload: e.data,
          trace_id: traceIdOf(e.traceparent) ?? ('trace_id' in e.data ? (e.data.trace_id ?? null) : null),
        })),
      ),
    );
    const llm = stored.filter(({ event, aggregate }) => event.type === 'llm_call' && !aggregate);
    await source.query(
      `INSERT INTO llm_calls SELECT * FROM json_populate_recordset(NULL::llm_calls, $1::json)`,
      json(
        llm.map(({ event: e }) => {
          const d = (e as AgentEvent & { type: 'llm_call' }).data;
          return {
            ...d,
            source: e.source,
            event_id: e.id,
            cost_micros: d.cost_usd === undefined ? null : parseUsd(d.cost_usd).toString(),
            cost_source: d.cost_usd === undefined ? 'unpriced' : 'provided',
            trace_id: d.trace_id ?? traceIdOf(e.traceparent),
            time: e.time,
          };
        }),
      ),
    );
    await source.query(
      `INSERT INTO tool_calls SELECT * FROM json_populate_recordset(NULL::tool_calls, $1::json)`,
      json(
        stored
          .filter(({ event }) => event.type === 'tool_call')
          .map(({ event: e }) => {
            const d = (e as AgentEvent & { type: 'tool_call' }).data;
            return {
              ...d,
              source: e.source,
              event_id: e.id,
              trace_id: d.trace_id ?? traceIdOf(e.traceparent),
              time: e.time,
            };
          }),
      ),
    );
    await source.query(
      `INSERT INTO external_charges SELECT * FROM json_populate_recordset(NULL::external_charges, $1::json)`,
      json(
        stored
          .filter(({ event }) => event.type === 'external_charge')
          .map(({ event: e }) => {
            const d = (e as AgentEvent & { type: 'external_charge' }).data;
            return {
              ...d,
              source: e.source,
              event_id: e.id,
              amount_micros: parseUsd(d.amount_usd).toString(),
              time: e.time,
            };
          }),
      ),
    );
    await source.query(
      `INSERT INTO llm_call_spans SELECT * FROM json_populate_recordset(NULL::llm_call_spans, $1::json)`,
      json(
        stored
          .filter(({ aggregate }) => aggregate)
          .map(({ event: e }) => {
            const d = (e as AgentEvent & { type: 'llm_call' }).data;
            return {
              tenant_id: d.tenant_id,
              run_id: d.run_id,
              trace_id: d.trace_id,
              span_id: d.span_id,
              ancestor_span_ids: d.ancestor_span_ids,
              counted: false,
              source: e.source,
              event_id: e.id,
              time: e.time,
            };
          }),
      ),
    );
  }
});

interface Reading {
  timelines: unknown[];
  filtered: unknown[];
  counts: {
    total: number;
    byType: Array<{ type: string; n: number; keys: number }>;
    tables: unknown;
  };
}

/** Every run's timeline through the query repository, page by page, unfiltered and by type; every count. */
async function read(db: DataSource): Promise<Reading> {
  const runs = new RunsRepository(db);
  const bounds: Array<{ tenant_id: string; run_id: string; first_event_at: Date; last_event_at: Date }> =
    await db.query(
      `SELECT tenant_id, run_id, min(time) AS first_event_at, max(time) AS last_event_at
         FROM events WHERE run_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2`,
    );
  const timelines: unknown[] = [];
  const filtered: unknown[] = [];
  for (const run of bounds) {
    const pages: unknown[] = [];
    let after: [string, string, string] | null = null;
    for (;;) {
      const page = await runs.events(run, null, after, 13);
      pages.push(page);
      if (page.length < 13) break;
      const last = page[page.length - 1]!;
      after = [last.position, last.source, last.event_id];
    }
    timelines.push({ run: run.run_id, pages });
    filtered.push(await runs.events(run, ['llm_call', 'external_charge'], null, 1000));
    filtered.push(await runs.events(run, ['phase_entered', 'tool_call'], null, 1000));
  }
  const [{ total }] = (await db.query(`SELECT count(*)::int AS total FROM events`)) as [{ total: number }];
  const byType = await db.query(
    `SELECT type, count(*)::int AS n, count(DISTINCT (source, event_id))::int AS keys FROM events GROUP BY 1 ORDER BY 1`,
  );
  const [tables] = await db.query(
    `SELECT (SELECT count(*)::int FROM llm_calls) AS llm, (SELECT count(*)::int FROM tool_calls) AS tools,
            (SELECT count(*)::int FROM external_charges) AS charges,
            (SELECT sum(prompt_tokens + completion_tokens)::text FROM llm_calls) AS tokens,
            (SELECT sum(cost_micros)::text FROM llm_calls) AS llm_micros,
            (SELECT sum(amount_micros)::text FROM external_charges) AS charge_micros,
            (SELECT count(*)::int FROM llm_call_spans) AS spans`,
  );
  return { timelines, filtered, counts: { total, byType, tables } };
}
