import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import type { ModelPrice } from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, type TestDatabase, testRedactor } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { EventsRepository } from '../src/events/events.repository';
import { EventsService } from '../src/events/events.service';
import { IngestMetrics } from '../src/events/ingest.metrics';
import { PricingService } from '../src/pricing/pricing.service';

type LlmCall = AgentEvent & { type: 'llm_call' };

interface Call {
  id: string;
  tenant: string;
  run: string;
  phase: string;
  model: string;
  provider: string;
  time: string;
  prompt: number;
  completion: number;
  cached?: number;
  reasoning?: number;
  costUsd?: string;
  userId?: string;
}

function llmCall(call: Call): LlmCall {
  return AgentEventSchema.parse({
    specversion: '1.0',
    id: call.id,
    source: 'pricing-test',
    type: 'llm_call',
    time: call.time,
    subject: call.tenant,
    data: {
      tenant_id: call.tenant,
      project_id: 'p1',
      run_id: call.run,
      phase: call.phase,
      role: call.phase === 'plan' ? 'planner' : 'implementer',
      model: call.model,
      provider: call.provider,
      prompt_tokens: call.prompt,
      completion_tokens: call.completion,
      cached_tokens: call.cached ?? 0,
      reasoning_tokens: call.reasoning ?? 0,
      latency_ms: 100,
      ...(call.costUsd ? { cost_usd: call.costUsd } : {}),
      ...(call.userId ? { user_id: call.userId } : {}),
    },
  }) as LlmCall;
}

/**
 * Pricing at ingest (seeded list prices, a tenant override, an unknown model) and repricing after a price
 * correction: every projection moves by the same delta, provided costs stay, and the audit says so.
 */
describe('pricing against PostgreSQL', () => {
  const day = '2026-11-02';
  // Expected micros follow libs/domain pricing.ts: cached part of prompt, reasoning part of completion.
  const A = llmCall({
    id: 'a',
    tenant: 't-list',
    run: 'r1',
    phase: 'plan',
    model: 'gpt-4.1',
    provider: 'openai',
    time: `${day}T10:01:00Z`,
    prompt: 1234,
    cached: 1000,
    completion: 567,
  });
  const B = llmCall({
    id: 'b',
    tenant: 't-list',
    run: 'r1',
    phase: 'implement',
    model: 'o4-mini',
    provider: 'openai',
    time: `${day}T10:02:00Z`,
    prompt: 10_000,
    completion: 5_000,
    reasoning: 3_000,
  });
  const C = llmCall({
    id: 'c',
    tenant: 't-list',
    run: 'r1',
    phase: 'implement',
    model: 'acme-llm',
    provider: 'acme',
    time: `${day}T10:03:00Z`,
    prompt: 1_000,
    completion: 1_000,
    userId: 'u1',
  });
  const D = llmCall({
    id: 'd',
    tenant: 't-list',
    run: 'r2',
    phase: 'plan',
    model: 'gpt-4.1',
    provider: 'openai',
    time: `${day}T10:04:00Z`,
    prompt: 1_000,
    completion: 1_000,
    costUsd: '0.123456',
  });
  const E = llmCall({
    id: 'e',
    tenant: 't-override',
    run: 'r3',
    phase: 'plan',
    model: 'gpt-4.1',
    provider: 'openai',
    time: `${day}T10:05:00Z`,
    prompt: 1234,
    cached: 1000,
    completion: 567,
  });
  const F = llmCall({
    id: 'f',
    tenant: 't-override',
    run: 'r3',
    phase: 'plan',
    model: 'claude-sonnet-4-5',
    provider: 'anthropic',
    time: `${day}T10:06:00Z`,
    prompt: 2001,
    completion: 333,
  });
  const G = llmCall({
    id: 'g',
    tenant: 't-list',
    run: 'r2',
    phase: 'plan',
    model: 'acme-llm',
    provider: 'acme',
    time: '2026-11-03T10:00:00Z',
    prompt: 500,
    completion: 500,
  });

  const rates = (input: bigint, cached: bigint | null, output: bigint) => ({
    inputPerMillion: input,
    cachedInputPerMillion: cached,
    outputPerMillion: output,
    reasoningPerMillion: null,
  });
  const override: ModelPrice = {
    provider: 'openai',
    model: 'gpt-4.1',
    tenantId: 't-override',
    effectiveFrom: new Date('2026-01-01T00:00:00Z'),
    ...rates(1_000_000n, 250_000n, 4_000_000n),
  };

  let database: TestDatabase;
  let db: DataSource;
  let prices: PricingRepository;
  let pricing: PricingService;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    prices = new PricingRepository(db);
    pricing = new PricingService(prices, createLogger('pricing-test', 'silent'));
    await db.query(`INSERT INTO tenants (tenant_id) VALUES ('t-override')`);
    await prices.setPrice(override, 'negotiated');
    await pricing.refresh();
    const events = new EventsService(
      new EventsRepository(db),
      new PartitionManager(db),
      new IngestMetrics(),
      pricing,
      testRedactor(),
    );
    await events.ingest([A, B, C, D, E, F, G]);
  });

  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  async function calls(): Promise<Record<string, [string | null, string]>> {
    const rows: Array<{ event_id: string; cost_micros: string | null; cost_source: string }> = await db.query(
      `SELECT event_id, cost_micros, cost_source FROM llm_calls ORDER BY event_id`,
    );
    return Object.fromEntries(rows.map((r) => [r.event_id, [r.cost_micros, r.cost_source]]));
  }

  async function totals(): Promise<Record<string, string>> {
    const [row] = await db.query(
      `SELECT (SELECT COALESCE(sum(cost_micros), 0) FROM llm_calls)::text AS calls,
              (SELECT sum(cost_micros) FROM stages)::text AS stages,
              (SELECT sum(cost_micros) FROM runs)::text AS runs,
              (SELECT sum(cost_micros) FROM usage_daily)::text AS usage,
              (SELECT count(*) FROM llm_calls WHERE cost_source = 'unpriced')::text AS unpriced_calls,
              (SELECT sum(unpriced_calls) FROM runs)::text AS unpriced_runs,
              (SELECT sum(unpriced_calls) FROM usage_daily)::text AS unpriced_usage`,
    );
    return row;
  }

  /**
   * Every projection equals a recomputation from the call rows (no external charges here), and
   * usage_model_daily equals usage_daily summed per day, tenant, model and provider.
   */
  async function expectProjectionsMatchCalls(): Promise<void> {
    const mismatches = await db.query(
      `SELECT 'run' AS kind, r.run_id AS key FROM runs r
         LEFT JOIN (SELECT tenant_id, run_id, COALESCE(sum(cost_micros), 0) AS cost,
                           count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced
                      FROM llm_calls GROUP BY 1, 2) c USING (tenant_id, run_id)
        WHERE r.cost_micros <> c.cost OR r.unpriced_calls <> c.unpriced
       UNION ALL
       SELECT 'stage', s.run_id || '/' || s.phase FROM stages s
         LEFT JOIN (SELECT tenant_id, run_id, phase, attempt, COALESCE(sum(cost_micros), 0) AS cost
                      FROM llm_calls GROUP BY 1, 2, 3, 4) c USING (tenant_id, run_id, phase, attempt)
        WHERE s.cost_micros <> c.cost
       UNION ALL
       SELECT 'usage', u.day || '/' || u.tenant_id || '/' || u.model FROM usage_daily u
         LEFT JOIN (SELECT (time AT TIME ZONE 'UTC')::date AS day, tenant_id, project_id, role, model, provider,
                           COALESCE(user_id, '') AS user_id, COALESCE(sum(cost_micros), 0) AS cost,
                           count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced
                      FROM llm_calls GROUP BY 1, 2, 3, 4, 5, 6, 7) c
           USING (day, tenant_id, project_id, role, model, provider, user_id)
        WHERE u.kind = 'llm' AND (u.cost_micros <> c.cost OR u.unpriced_calls <> c.unpriced)
       UNION ALL
       SELECT 'model usage', day || '/' || tenant_id || '/' || model
         FROM usage_model_daily m
         FULL JOIN (SELECT day, tenant_id, model, provider, sum(call_count) AS calls, sum(cost_micros) AS cost,
                           sum(unpriced_calls) AS unpriced, sum(input_tokens + output_tokens) AS tokens
                      FROM usage_daily WHERE kind = 'llm' GROUP BY 1, 2, 3, 4) s
           USING (day, tenant_id, model, provider)
        WHERE m.cost_micros IS DISTINCT FROM s.cost OR m.unpriced_calls IS DISTINCT FROM s.unpriced
           OR m.call_count IS DISTINCT FROM s.calls OR m.input_tokens + m.output_tokens IS DISTINCT FROM s.tokens`,
    );
    expect(mismatches).toEqual([]);
  }

  it('prices calls at ingest: provided kept, list or override price computed, unknown models unpriced', async () => {
    expect(await calls()).toEqual({
      a: ['5504', 'computed'], // 234 x $2 + 1000 cached x $0.50 + 567 x $8 (per 1M)
      b: ['33000', 'computed'], // 10000 x $1.10 + (2000 + 3000 reasoning) x $4.40
      c: [null, 'unpriced'],
      d: ['123456', 'provided'],
      e: ['2752', 'computed'], // override: 234 x $1 + 1000 x $0.25 + 567 x $4
      f: ['10998', 'computed'], // 2001 x $3 + 333 x $15
      g: [null, 'unpriced'],
    });
    const runs = await db.query(`SELECT run_id, cost_micros::text, unpriced_calls FROM runs ORDER BY run_id`);
    expect(runs).toEqual([
      { run_id: 'r1', cost_micros: '38504', unpriced_calls: 1 },
      { run_id: 'r2', cost_micros: '123456', unpriced_calls: 1 },
      { run_id: 'r3', cost_micros: '13750', unpriced_calls: 0 },
    ]);
    expect(await totals()).toMatchObject({ unpriced_calls: '2', unpriced_runs: '2', unpriced_usage: '2' });
    await expectProjectionsMatchCalls();
  });

  it('reprices a period after a price correction, moving every projection by the same delta', async () => {
    const before = await totals();
    const provided = (await calls()).d;

    // A price for the unknown model from before the period, a gpt-4.1 list price correction from 10:00 that
    // day (in effect for a at 10:01), and an o4-mini change after the period that must not apply.
    await prices.setPrice({
      provider: 'acme',
      model: 'acme-llm',
      tenantId: null,
      effectiveFrom: new Date('2026-11-01T00:00:00Z'),
      ...rates(700_000n, null, 2_100_000n),
    });
    await prices.setPrice({
      provider: 'openai',
      model: 'gpt-4.1',
      tenantId: null,
      effectiveFrom: new Date(`${day}T10:00:00Z`),
      ...rates(3_000_000n, 750_000n, 9_000_000n),
    });
    await prices.setPrice({
      provider: 'openai',
      model: 'o4-mini',
      tenantId: null,
      effectiveFrom: new Date('2026-11-05T00:00:00Z'),
      ...rates(1n, 1n, 1n),
    });

    // Ingest sees the correction after its next refresh; the SQL reprice below must agree with it.
    expect(pricing.cost(A).micros).toBe(5504n);
    await pricing.refresh();
    expect(pricing.cost(A)).toEqual({ micros: 6555n, source: 'computed' }); // 234 x $3 + 1000 x $0.75 + 567 x $9
    expect(pricing.cost(C)).toEqual({ micros: 2800n, source: 'computed' });

    const period = { from: new Date(`${day}T00:00:00Z`), to: new Date('2026-11-03T00:00:00Z') };
    const who = { actor: 'ops@example.com', reason: 'gpt-4.1 list price correction' };

    // The override tenant's calls do not move: its override beats the corrected list price.
    const tenantOnly = await prices.reprice({ ...who, ...period, tenantId: 't-override' });
    expect(tenantOnly).toMatchObject({
      callsConsidered: 2,
      callsAffected: 0,
      oldTotalMicros: 13_750n,
      newTotalMicros: 13_750n,
    });

    const modelOnly = await prices.reprice({ ...who, ...period, model: 'acme-llm' });
    expect(modelOnly).toMatchObject({
      callsConsidered: 1,
      callsAffected: 1,
      oldTotalMicros: 0n,
      newTotalMicros: 2_800n,
      oldUnpricedCalls: 1,
      newUnpricedCalls: 0,
    });

    const all = await prices.reprice({ ...who, ...period });
    expect(all).toMatchObject({
      callsConsidered: 5, // a, b, c, e, f: d is provided, g is outside the period
      callsAffected: 1, // a
      oldTotalMicros: 5504n + 33_000n + 2_800n + 2_752n + 10_998n,
      newTotalMicros: 6555n + 33_000n + 2_800n + 2_752n + 10_998n,
      oldUnpricedCalls: 0,
      newUnpricedCalls: 0,
    });

    expect(await calls()).toEqual({
      a: ['6555', 'computed'],
      b: ['33000', 'computed'],
      c: ['2800', 'computed'],
      d: provided,
      e: ['2752', 'computed'],
      f: ['10998', 'computed'],
      g: [null, 'unpriced'],
    });

    const after = await totals();
    const delta = 2_800n + (6555n - 5504n);
    for (const table of ['calls', 'stages', 'runs', 'usage'] as const) {
      expect({ table, moved: BigInt(after[table]!) - BigInt(before[table]!) }).toEqual({ table, moved: delta });
    }
    expect(after).toMatchObject({ unpriced_calls: '1', unpriced_runs: '1', unpriced_usage: '1' });
    await expectProjectionsMatchCalls();

    const audit = await db.query(
      `SELECT actor, reason, model, tenant_id, period_from, period_to, calls_considered, calls_affected,
              old_total_micros::text, new_total_micros::text, old_unpriced_calls, new_unpriced_calls
         FROM reprice_audit ORDER BY id`,
    );
    const row = (
      model: string | null,
      tenant: string | null,
      counts: number[],
      old: string,
      next: string,
      unpriced: number[],
    ) => ({
      ...who,
      model,
      tenant_id: tenant,
      period_from: period.from,
      period_to: period.to,
      calls_considered: counts[0],
      calls_affected: counts[1],
      old_total_micros: old,
      new_total_micros: next,
      old_unpriced_calls: unpriced[0],
      new_unpriced_calls: unpriced[1],
    });
    expect(audit).toEqual([
      row(null, 't-override', [2, 0], '13750', '13750', [0, 0]),
      row('acme-llm', null, [1, 1], '0', '2800', [1, 0]),
      row(null, null, [5, 1], '55054', '56105', [0, 0]),
    ]);
  });

  it('reprices a wider period, and a repeat with the same prices changes nothing', async () => {
    const before = await totals();
    const again = await prices.reprice({
      actor: 'ops@example.com',
      reason: 'repeat',
      from: new Date(`${day}T00:00:00Z`),
      to: new Date('2026-11-04T00:00:00Z'),
    });
    // g (2026-11-03) is now in the period and gets the acme-llm price: 500 x $0.70 + 500 x $2.10
    expect(again).toMatchObject({ callsConsidered: 6, callsAffected: 1, newUnpricedCalls: 0 });
    expect(again.newTotalMicros - again.oldTotalMicros).toBe(1_400n);
    const after = await totals();
    expect(BigInt(after.runs!) - BigInt(before.runs!)).toBe(1_400n);
    await expectProjectionsMatchCalls();

    const settled = await totals();
    const idle = await prices.reprice({
      actor: 'ops@example.com',
      reason: 'repeat',
      from: new Date(`${day}T00:00:00Z`),
      to: new Date('2026-11-04T00:00:00Z'),
    });
    expect(idle).toMatchObject({ callsAffected: 0, oldTotalMicros: idle.newTotalMicros });
    expect(await totals()).toEqual(settled);
  });

  it('refuses a reprice without actor, reason or a valid period', async () => {
    const period = { from: new Date(`${day}T00:00:00Z`), to: new Date(`${day}T00:00:00Z`) };
    await expect(prices.reprice({ actor: 'a', reason: 'r', ...period })).rejects.toThrow('from must be before to');
    await expect(prices.reprice({ actor: ' ', reason: 'r', from: period.from, to: new Date() })).rejects.toThrow(
      'actor',
    );
  });
});
