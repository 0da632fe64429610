import { randomBytes } from 'node:crypto';
import { PartitionManager, PricingRepository } from '@agentmeter/database';
import { createLogger } from '@agentmeter/telemetry';
import { eventually, testRedactor } from '@agentmeter/testing';
import { EventsRepository } from '../../ingest/src/events/events.repository';
import { EventsService } from '../../ingest/src/events/events.service';
import { PricingService } from '../../ingest/src/pricing/pricing.service';
import { call, ingestAll, seed, startQuery, token, type RunningQuery, type Seeded } from './query.fixture';

/**
 * Price administration through the query API (docs/query.md "Prices"): Admins add, list and retire
 * effective-dated prices and reprice a period as a job; ingest prices new calls with a price once its table
 * reloaded; every change is in the audit log; other roles are refused; bad bodies are 400s naming the field.
 */
describe('price administration', () => {
  const prefix = `qp${randomBytes(3).toString('hex')}`;
  const tenant = `${prefix}-tenant-1`;
  const project = `${prefix}-t1-project-1`;
  let s: Seeded;
  let q: RunningQuery;
  let admin: string;
  /** Two ingest instances: one reloads its price table in the test, the other keeps the table of the start. */
  let fresh: { ingest: EventsService; pricing: PricingService };
  let stale: { ingest: EventsService; pricing: PricingService };
  let n = 0;

  const ingestOf = async () => {
    const pricing = new PricingService(new PricingRepository(s.db), createLogger('prices-test', 'silent'));
    await pricing.refresh();
    const ingest = new EventsService(
      new EventsRepository(s.db),
      new PartitionManager(s.db),
      s.metrics,
      pricing,
      testRedactor(),
    );
    return { ingest, pricing };
  };

  const llmCall = (model: string, at: Date) => {
    const id = `${prefix}-p${++n}`;
    return {
      specversion: '1.0' as const,
      id,
      source: `prices-test/${prefix}`,
      type: 'llm_call' as const,
      time: at.toISOString(),
      subject: tenant,
      data: {
        tenant_id: tenant,
        project_id: project,
        run_id: `${prefix}-run-${n}`,
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        model,
        provider: 'openai',
        prompt_tokens: 1_000,
        completion_tokens: 500,
        latency_ms: 100,
      },
    };
  };

  const costOf = async (eventId: string) => {
    const [row] = (await s.db.query(`SELECT cost_micros::text, cost_source FROM llm_calls WHERE event_id = $1`, [
      eventId,
    ])) as Array<{ cost_micros: string | null; cost_source: string }>;
    return row;
  };

  const body = (model: string, extra: Record<string, unknown> = {}) => ({
    provider: 'openai',
    model,
    input_usd_per_million: '2.00',
    output_usd_per_million: '8.00',
    reason: 'negotiated list price',
    ...extra,
  });

  beforeAll(async () => {
    s = await seed(prefix);
    q = await startQuery(s.database.url);
    admin = await token(tenant, ['admin'], 'price-admin');
    fresh = { ingest: s.ingest, pricing: s.pricing };
    stale = await ingestOf();
  });

  afterAll(async () => {
    await q?.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  it('adds a price, lists it, audits it, and prices newly ingested calls with it after the reload', async () => {
    const model = `${prefix}-model-a`;
    const created = await call(q.url, admin, '/admin/prices', { method: 'POST', body: body(model) });
    expect(created.status).toBe(201);
    expect(created.json.price).toMatchObject({
      model,
      provider: 'openai',
      tenant_id: null,
      status: 'current',
      input_usd_per_million: '2.000000',
      output_usd_per_million: '8.000000',
      cached_input_usd_per_million: null,
      retired_at: null,
    });

    const listed = await call(q.url, admin, `/admin/prices?model=${model}`);
    expect(listed.status).toBe(200);
    expect(listed.json.items.map((p: { id: string }) => p.id)).toEqual([created.json.price.id]);

    const audit = await call(q.url, admin, '/audit?action=prices.create');
    const row = audit.json.items.find((item: { id: string }) => item.id === created.json.audit_id);
    expect(row).toMatchObject({
      actor: 'price-admin',
      actor_roles: ['admin'],
      reason: 'negotiated list price',
      outcome: 'succeeded',
      target: `openai/${model}`,
      params: { before: null, after: { model, input_usd_per_million: '2.000000', output_usd_per_million: '8.000000' } },
    });

    // Before its reload, ingest does not know the price yet; after it, a new call costs
    // 1000 prompt tokens x 2 USD/M + 500 completion tokens x 8 USD/M = 0.006 USD.
    const before = llmCall(model, new Date(Date.now() + 1_000));
    await ingestAll(fresh.ingest, [before]);
    expect(await costOf(before.id)).toEqual({ cost_micros: null, cost_source: 'unpriced' });
    await fresh.pricing.refresh();
    const after = llmCall(model, new Date(Date.now() + 1_000));
    await ingestAll(fresh.ingest, [after]);
    expect(await costOf(after.id)).toEqual({ cost_micros: '6000', cost_source: 'computed' });
  });

  it('reprices, as a job, the calls priced before the new price reached ingest; the request is audited', async () => {
    const model = `${prefix}-model-b`;
    const created = await call(q.url, admin, '/admin/prices', { method: 'POST', body: body(model) });
    expect(created.status).toBe(201);
    const late = llmCall(model, new Date(Date.now() + 1_000));
    await ingestAll(stale.ingest, [late]);
    expect(await costOf(late.id)).toEqual({ cost_micros: null, cost_source: 'unpriced' });

    const requested = await call(q.url, admin, '/admin/reprices', {
      method: 'POST',
      body: {
        from: created.json.price.effective_from,
        to: new Date(Date.now() + 3_600_000).toISOString(),
        model,
        reason: 'calls priced before the reload',
      },
    });
    expect(requested.status).toBe(202);
    expect(requested.json).toMatchObject({ model, status: expect.stringMatching(/requested|succeeded/) });
    const done = await eventually(async () => {
      const status = await call(q.url, admin, `/admin/reprices?id=${requested.json.id}`);
      expect(status.json.items).toHaveLength(1);
      expect(status.json.items[0].status).toBe('succeeded');
      return status.json.items[0];
    });
    expect(done.result).toMatchObject({
      calls_considered: 1,
      calls_affected: 1,
      old_total_usd: '0.000000',
      new_total_usd: '0.006000',
      old_unpriced_calls: 1,
      new_unpriced_calls: 0,
    });
    expect(await costOf(late.id)).toEqual({ cost_micros: '6000', cost_source: 'computed' });
    const listed = await call(q.url, admin, '/admin/reprices');
    expect(listed.json.items[0]).toEqual(done);
    const [run] = (await s.db.query(`SELECT cost_micros::text, unpriced_calls FROM runs WHERE run_id = $1`, [
      late.data.run_id,
    ])) as Array<{ cost_micros: string; unpriced_calls: number }>;
    expect(run).toEqual({ cost_micros: '6000', unpriced_calls: 0 });

    const audit = await call(q.url, admin, '/audit?action=prices.reprice');
    const row = audit.json.items.find((item: { id: string }) => item.id === requested.json.id);
    expect(row).toMatchObject({ reason: 'calls priced before the reload', outcome: 'succeeded', params: { model } });
  });

  it('schedules a future price, refuses a second price at the same time, and retires a price with an audit row', async () => {
    const model = `${prefix}-model-c`;
    const later = new Date(Date.now() + 86_400_000).toISOString();
    const current = await call(q.url, admin, '/admin/prices', { method: 'POST', body: body(model) });
    const scheduled = await call(q.url, admin, '/admin/prices', {
      method: 'POST',
      body: body(model, { effective_from: later, input_usd_per_million: '1.5', tenant_id: tenant }),
    });
    expect(scheduled.status).toBe(201);
    expect(scheduled.json.price).toMatchObject({
      status: 'scheduled',
      tenant_id: tenant,
      input_usd_per_million: '1.500000',
    });
    const again = await call(q.url, admin, '/admin/prices', {
      method: 'POST',
      body: body(model, { effective_from: later, tenant_id: tenant }),
    });
    expect(again.status).toBe(409);
    expect(again.json.detail).toMatch(/effective_from/);

    const retired = await call(q.url, admin, `/admin/prices/${current.json.price.id}/retire`, {
      method: 'POST',
      body: { reason: 'model withdrawn' },
    });
    expect(retired.status).toBe(200);
    expect(retired.json.price).toMatchObject({ status: 'retired', retired_at: expect.any(String) });
    const twice = await call(q.url, admin, `/admin/prices/${current.json.price.id}/retire`, {
      method: 'POST',
      body: { reason: 'again' },
    });
    expect(twice.status).toBe(409);

    const listed = await call(q.url, admin, `/admin/prices?model=${model}`);
    expect(listed.json.items.map((p: { status: string }) => p.status)).toEqual(['scheduled']);
    const history = await call(q.url, admin, `/admin/prices?model=${model}&history=true`);
    expect(history.json.items.map((p: { status: string }) => p.status).sort()).toEqual(['retired', 'scheduled']);

    const audit = await call(q.url, admin, '/audit?action=prices.retire');
    const row = audit.json.items.find((item: { id: string }) => item.id === retired.json.audit_id);
    expect(row).toMatchObject({
      reason: 'model withdrawn',
      outcome: 'succeeded',
      params: { before: { status: 'current', retired_at: null }, after: { status: 'retired' } },
    });
    expect(row.params.after.retired_at).toEqual(retired.json.price.retired_at);

    // A retired list price no longer prices new calls.
    await fresh.pricing.refresh();
    const unpriced = llmCall(model, new Date(Date.now() + 1_000));
    await ingestAll(fresh.ingest, [unpriced]);
    expect(await costOf(unpriced.id)).toEqual({ cost_micros: null, cost_source: 'unpriced' });
  });

  it('refuses every other role (403) on every price route', async () => {
    const model = `${prefix}-model-d`;
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/admin/prices'],
      ['POST', '/admin/prices', body(model)],
      ['POST', '/admin/prices/00000000-0000-4000-8000-000000000000/retire', { reason: 'x' }],
      ['POST', '/admin/reprices', { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', reason: 'x' }],
      ['GET', '/admin/reprices'],
      ['GET', '/admin/reprices?id=1'],
    ];
    for (const role of ['owner', 'op', 'bu', 'auditor', 'support', 'finance']) {
      const bearer = await token(tenant, [role]);
      for (const [method, path, requestBody] of routes) {
        const answer = await call(q.url, bearer, path, { method, body: requestBody });
        expect({ role, method, path, status: answer.status }).toEqual({ role, method, path, status: 403 });
      }
    }
    const listed = await call(q.url, admin, `/admin/prices?model=${model}&history=true`);
    expect(listed.json.items).toEqual([]);
  });

  it('answers bad bodies with 400 problem+json naming the field', async () => {
    const model = `${prefix}-model-e`;
    const cases: Array<[string, unknown, string]> = [
      ['/admin/prices', body(model, { input_usd_per_million: '-1.00' }), 'input_usd_per_million'],
      ['/admin/prices', body(model, { output_usd_per_million: '-0.5' }), 'output_usd_per_million'],
      ['/admin/prices', body(model, { cached_input_usd_per_million: 'cheap' }), 'cached_input_usd_per_million'],
      ['/admin/prices', body(model, { input_usd_per_million: 2 }), 'input_usd_per_million'],
      ['/admin/prices', body(model, { discount: '10%' }), 'discount'],
      [
        '/admin/prices',
        body(model, { effective_from: new Date(Date.now() - 3_600_000).toISOString() }),
        'effective_from',
      ],
      ['/admin/prices', body(model, { effective_from: 'tomorrow' }), 'effective_from'],
      ['/admin/prices', body(model, { reason: undefined }), 'reason'],
      ['/admin/reprices', { from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z', reason: 'x' }, 'to'],
      ['/admin/reprices', { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', reason: 'x', all: true }, 'all'],
    ];
    for (const [path, requestBody, field] of cases) {
      const answer = await call(q.url, admin, path, { method: 'POST', body: requestBody });
      expect({ path, field, status: answer.status }).toEqual({ path, field, status: 400 });
      expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(answer.json.detail).toContain(field);
    }
    const bad = await call(q.url, admin, '/admin/prices/not-an-id/retire', { method: 'POST', body: { reason: 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.json.detail).toContain('price_id');
    const badId = await call(q.url, admin, '/admin/reprices?id=abc');
    expect(badId.status).toBe(400);
    expect(badId.json.detail).toContain('id');
    const listed = await call(q.url, admin, `/admin/prices?model=${model}&history=true`);
    expect(listed.json.items).toEqual([]);
  });
});
