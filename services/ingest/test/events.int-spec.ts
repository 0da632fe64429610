import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import { LATENCY_BUCKETS_MS } from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, generateWorkload, prng, type TestDatabase, testRedactor } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { EventsRepository } from '../src/events/events.repository';
import { EventsService } from '../src/events/events.service';
import { IngestMetrics } from '../src/events/ingest.metrics';
import { PricingService } from '../src/pricing/pricing.service';

/**
 * The projection must converge to the same rows whatever the arrival order, batching and repetition of
 * events: two databases, one fed in order, one fed shuffled in random batches with every event twice.
 */
describe('EventsService against PostgreSQL', () => {
  const workload = generateWorkload({
    seed: 3,
    tenants: 2,
    projectsPerTenant: 2,
    runsPerProject: 4,
    start: new Date('2026-11-01T00:00:00Z'),
  });
  const events = workload.events.map(({ key: _key, ...event }) => AgentEventSchema.parse(event) as AgentEvent);
  const metrics = new IngestMetrics();
  const databases: TestDatabase[] = [];
  const sources: DataSource[] = [];

  async function service(): Promise<{ events: EventsService; db: DataSource }> {
    const database = await createTestDatabase();
    const db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    databases.push(database);
    sources.push(db);
    const pricing = new PricingService(new PricingRepository(db), createLogger('ingest-test', 'silent'));
    await pricing.refresh();
    return {
      events: new EventsService(new EventsRepository(db), new PartitionManager(db), metrics, pricing, testRedactor()),
      db,
    };
  }

  afterAll(async () => {
    await Promise.all(sources.map((s) => s.destroy()));
    await Promise.all(databases.map((d) => d.drop()));
  });

  async function projection(db: DataSource): Promise<unknown> {
    const runs = await db.query(
      `SELECT tenant_id, run_id, project_id, status, error, phase, role, model, started_at, finished_at, tokens_in,
              tokens_out, cost_micros, external_micros, llm_calls, cached_calls, first_event_at, last_event_at
         FROM runs ORDER BY tenant_id, run_id`,
    );
    const stages = await db.query(
      `SELECT tenant_id, run_id, phase, attempt, role, status, started_at, finished_at, trace_id, prompt_tokens,
              completion_tokens, cached_tokens, cost_micros, llm_calls
         FROM stages ORDER BY tenant_id, run_id, phase, attempt`,
    );
    const counts = await db.query(
      `SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM llm_calls) AS llm,
              (SELECT count(*) FROM tool_calls) AS tools, (SELECT count(*) FROM external_charges) AS charges`,
    );
    const usage = await db.query(
      `SELECT * FROM usage_daily ORDER BY day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id`,
    );
    const modelUsage = await db.query(`SELECT * FROM usage_model_daily ORDER BY day, tenant_id, model, provider`);
    const failures = await db.query(`SELECT * FROM failures ORDER BY tenant_id, run_id, phase, reason, artifact_ref`);
    return { runs, stages, counts, usage, modelUsage, failures };
  }

  it('converges to the same rows for in-order and shuffled, batched, repeated delivery', async () => {
    const ordered = await service();
    await ordered.events.ingest(events);

    const shuffled = await service();
    const random = prng(11);
    const twice = [...events, ...events].map((event) => ({ event, sort: random() })).sort((a, b) => a.sort - b.sort);
    for (let i = 0; i < twice.length;) {
      const size = 1 + Math.floor(random() * 60);
      await shuffled.events.ingest(twice.slice(i, i + size).map((x) => x.event));
      i += size;
    }

    expect(await projection(shuffled.db)).toEqual(await projection(ordered.db));
  });

  it('matches the ground truth of every run', async () => {
    const { events: ingest, db } = await service();
    await ingest.ingest(events);
    for (const run of workload.truth.runs) {
      const [row] = await db.query(
        `SELECT status, tokens_in, tokens_out, cost_micros, llm_calls FROM runs WHERE tenant_id = $1 AND run_id = $2`,
        [run.tenant_id, run.run_id],
      );
      expect({ run: run.run_id, ...row }).toEqual({
        run: run.run_id,
        status: run.status,
        tokens_in: String(run.totals.prompt_tokens),
        tokens_out: String(run.totals.completion_tokens),
        cost_micros: run.totals.cost_usd.replace('.', '').replace(/^0+(?=\d)/, ''),
        llm_calls: run.totals.llm_calls,
      });
    }
  });

  it('keeps the daily usage rollups equal to a recomputation from the raw call rows', async () => {
    const { events: ingest, db } = await service();
    for (let i = 0; i < events.length; i += 37) await ingest.ingest(events.slice(i, i + 37));
    await ingest.ingest(events.slice(0, 100)); // duplicates change nothing
    const bounds = LATENCY_BUCKETS_MS.join(',');
    const recomputed = await db.query(
      `WITH calls AS (
         SELECT (time AT TIME ZONE 'UTC')::date AS day, tenant_id, project_id, role, 'llm' AS kind, model, provider,
                '' AS tool, '' AS mcp_server, COALESCE(user_id, '') AS user_id, status, latency_ms,
                prompt_tokens AS input_tokens, completion_tokens AS output_tokens, cached_tokens, cost_micros
           FROM llm_calls
         UNION ALL
         SELECT (time AT TIME ZONE 'UTC')::date, tenant_id, project_id, role, 'tool', '', '', tool,
                COALESCE(mcp_server, ''), '', status, latency_ms, 0, 0, 0, 0
           FROM tool_calls)
       SELECT day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id,
              count(*)::text AS call_count,
              count(*) FILTER (WHERE status = 'ok')::text AS success_count,
              count(*) FILTER (WHERE status <> 'ok')::text AS failure_count,
              sum(latency_ms)::text AS total_latency_ms,
              -- bucket i counts latencies above bound i-1 and at most bound i (Prometheus "le")
              ARRAY(SELECT count(*) FILTER (WHERE (SELECT count(*) FROM unnest(ARRAY[${bounds}]) AS u(bound)
                                                    WHERE u.bound < c2.latency_ms) = b)
                      FROM unnest(array_agg(latency_ms)) AS c2(latency_ms), generate_series(0, ${LATENCY_BUCKETS_MS.length}) AS b
                     GROUP BY b ORDER BY b)::text AS latency_buckets,
              sum(input_tokens)::text AS input_tokens, sum(output_tokens)::text AS output_tokens,
              sum(cached_tokens)::text AS cached_tokens, COALESCE(sum(cost_micros), 0)::text AS cost_micros,
              count(*) FILTER (WHERE kind = 'llm' AND cost_micros IS NULL)::text AS unpriced_calls
         FROM calls
        GROUP BY day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id
        ORDER BY day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id`,
    );
    const stored = await db.query(
      `SELECT day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id, call_count::text,
              success_count::text, failure_count::text, total_latency_ms::text, latency_buckets::text,
              input_tokens::text, output_tokens::text, cached_tokens::text, cost_micros::text, unpriced_calls::text
         FROM usage_daily
        ORDER BY day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id`,
    );
    expect(stored.length).toBeGreaterThan(0);
    expect(stored).toEqual(recomputed);

    // The second-level rollup is usage_daily's llm rows summed per day, tenant, model and provider.
    const summed = await db.query(
      `SELECT day, tenant_id, model, provider, sum(call_count)::text AS call_count,
              sum(input_tokens)::text AS input_tokens, sum(output_tokens)::text AS output_tokens,
              sum(cached_tokens)::text AS cached_tokens, sum(cost_micros)::text AS cost_micros,
              sum(unpriced_calls)::text AS unpriced_calls
         FROM usage_daily WHERE kind = 'llm'
        GROUP BY day, tenant_id, model, provider
        ORDER BY day, tenant_id, model, provider`,
    );
    const byModel = await db.query(
      `SELECT day, tenant_id, model, provider, call_count::text, input_tokens::text, output_tokens::text,
              cached_tokens::text, cost_micros::text, unpriced_calls::text
         FROM usage_model_daily ORDER BY day, tenant_id, model, provider`,
    );
    expect(byModel.length).toBeGreaterThan(0);
    expect(byModel.length).toBeLessThan(stored.length);
    expect(byModel).toEqual(summed);
  });

  it('counts repeated failures once per run, phase, reason and artifact', async () => {
    const { events: ingest, db } = await service();
    await ingest.ingest(events);
    const [expected] = await db.query(
      `SELECT count(*)::int AS n FROM events WHERE type IN ('validation_failed', 'run_failed')`,
    );
    const [stored] = await db.query(`SELECT sum(count)::int AS n FROM failures`);
    expect(stored.n).toBe(expected.n);
    expect(expected.n).toBeGreaterThan(0);
  });

  it('stores nothing of a batch whose write fails', async () => {
    const { events: ingest, db } = await service();
    const poisoned = [...events.slice(0, 20), { ...events[20]!, time: 'not a time' } as AgentEvent];
    await expect(ingest.ingest(poisoned)).rejects.toThrow();
    expect(await db.query(`SELECT count(*)::int AS n FROM events`)).toEqual([{ n: 0 }]);
    expect(await db.query(`SELECT count(*)::int AS n FROM runs`)).toEqual([{ n: 0 }]);
  });

  it('stores interventions and impersonation sessions, a session started and ended in one batch', async () => {
    const { events: ingest, db } = await service();
    const run = events.find((e) => e.type === 'run_started')!;
    const { tenant_id, project_id, run_id } = run.data as { tenant_id: string; project_id: string; run_id: string };
    const envelope = (id: string, type: string, time: string, data: object) =>
      AgentEventSchema.parse({
        specversion: '1.0',
        id,
        source: 'console/test',
        type,
        time,
        subject: tenant_id,
        data: { tenant_id, ...data },
      }) as AgentEvent;
    const audit = [
      envelope('ov-1', 'user_override', '2026-11-01T10:00:00Z', {
        project_id,
        run_id,
        user_id: 'u-1',
        action: 'raise_cap',
        reason: 'demo tomorrow',
      }),
      envelope('im-1', 'impersonation_started', '2026-11-01T10:01:00Z', {
        session_id: 's-1',
        actor_id: 'support-1',
        target_user_id: 'u-1',
        reason: 'ticket 42',
      }),
      envelope('im-2', 'impersonation_ended', '2026-11-01T10:31:00Z', { session_id: 's-1', actor_id: 'support-1' }),
    ];
    // With the workload's first events: the projections and the audit rows of one batch, twice.
    await ingest.ingest([...events.slice(0, 50), ...audit]);
    await ingest.ingest([...audit].reverse());

    expect(await db.query(`SELECT user_id, action, reason FROM interventions`)).toEqual([
      { user_id: 'u-1', action: 'raise_cap', reason: 'demo tomorrow' },
    ]);
    expect(
      await db.query(
        `SELECT session_id, actor_id, target_user_id, reason, started_at, ended_at FROM impersonation_sessions`,
      ),
    ).toEqual([
      {
        session_id: 's-1',
        actor_id: 'support-1',
        target_user_id: 'u-1',
        reason: 'ticket 42',
        started_at: new Date('2026-11-01T10:01:00Z'),
        ended_at: new Date('2026-11-01T10:31:00Z'),
      },
    ]);
    expect(await db.query(`SELECT count(*)::int AS n FROM events`)).toEqual([{ n: 53 }]);
  });
});
