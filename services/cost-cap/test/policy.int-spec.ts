import { randomBytes, randomUUID } from 'node:crypto';
import type { ReserveResponse } from '@agentmeter/contracts';
import { type Harness, reserveBody, startInProcess } from './harness';

/**
 * Admission policies that fail closed (docs/cost-cap.md "Fail closed"): a deployment may require a daily cap
 * of every tenant, and `make up` sets deployment defaults; a finished run spends nothing more. Also the
 * validation of model ladders against the price table and the answers to ids that are not ids.
 */
describe('fail-closed admission', () => {
  const ops = { actor: 'ops@agentmeter', reason: 'test setup' };
  const tenant = () => `p-${randomBytes(4).toString('hex')}`;
  let strict: Harness;

  beforeAll(async () => {
    strict = await startInProcess({ env: { COST_CAP_REQUIRE_DAILY_CAP: 'true', COST_CAP_DEFAULT_RUN_USD: '2' } });
  });

  afterAll(async () => {
    await strict?.close();
  });

  const reserve = (h: Harness, body: Record<string, unknown>) =>
    h.api<ReserveResponse>('POST', '/v1/admission/reserve', body);

  it('denies a tenant without a daily cap when the deployment requires one', async () => {
    const tenantId = tenant();
    const denied = await reserve(strict, reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '100000' } }));
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({
      decision: 'deny',
      reservation_id: null,
      denied_by: { scope: 'tenant', cap: 'cost', reason: 'no_daily_cap', limit: null },
    });
    expect(denied.body.denied_by!.detail).toContain('COST_CAP_REQUIRE_DAILY_CAP');
    expect((await strict.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '1' })).status).toBe(200);
    expect((await reserve(strict, reserveBody({ tenant_id: tenantId }))).body.decision).toBe('allow');
    expect(
      (await reserve(strict, reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '100000' } }))).body.denied_by,
    ).toMatchObject({ reason: 'insufficient' });
  });

  it('holds a run to the deployment default run cap', async () => {
    const tenantId = tenant();
    await strict.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '10' });
    const run = await reserve(strict, reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '3' } }));
    expect(run.body.denied_by).toMatchObject({ scope: 'run', cap: 'cost', limit: '2.000000' });
    expect((await reserve(strict, reserveBody({ tenant_id: tenantId }))).body.decision).toBe('allow');
  });

  it('denies a run that finished', async () => {
    const tenantId = tenant();
    await strict.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '1' });
    await strict.pg.query(
      `INSERT INTO cost_runs (tenant_id, run_id, project_id, started_at, finished_at, updated_at)
       VALUES ($1, 'run-done', 'site', now() - interval '1 hour', now() - interval '1 minute', now())`,
      [tenantId],
    );
    const denied = await reserve(strict, reserveBody({ tenant_id: tenantId, run_id: 'run-done' }));
    expect(denied.body).toMatchObject({
      decision: 'deny',
      denied_by: { scope: 'run', cap: 'finished', reason: 'finished' },
    });
    expect(denied.body.denied_by!.detail).toContain('run-done');
    expect((await reserve(strict, reserveBody({ tenant_id: tenantId, run_id: 'run-live' }))).body.decision).toBe(
      'allow',
    );
  });

  it('accepts only model ladders that step down in price, naming the step at fault', async () => {
    const tenantId = tenant();
    const ladder = (steps: Array<{ model: string; cheaper_model: string }>) =>
      strict.api<{ detail: string }>('PUT', `/v1/tenants/${tenantId}/model-ladder`, { ...ops, steps });
    const ok = await ladder([
      { model: 'gpt-4.1', cheaper_model: 'gpt-4.1-mini' },
      { model: 'gpt-4.1-mini', cheaper_model: 'gpt-4.1-nano' },
    ]);
    expect(ok.status).toBe(200);

    const dearer = await ladder([
      { model: 'gpt-4.1-nano', cheaper_model: 'gpt-4.1-mini' },
      { model: 'gpt-4.1-mini', cheaper_model: 'gpt-4.1' },
    ]);
    expect(dearer.status).toBe(422);
    expect(dearer.headers.get('content-type')).toContain('application/problem+json');
    expect(dearer.body.detail).toContain('steps[0] (gpt-4.1-nano -> gpt-4.1-mini): gpt-4.1-mini is not cheaper');
    expect(dearer.body.detail).toContain('steps[1] (gpt-4.1-mini -> gpt-4.1)');

    const unknown = await ladder([{ model: 'gpt-4.1', cheaper_model: 'no-such-model' }]);
    expect(unknown.status).toBe(422);
    expect(unknown.body.detail).toContain('steps[0] (gpt-4.1 -> no-such-model): no known price for no-such-model');

    const loop = await ladder([
      { model: 'gpt-4.1-mini', cheaper_model: 'gpt-4.1-nano' },
      { model: 'gpt-4.1-nano', cheaper_model: 'gpt-4.1-mini' },
    ]);
    expect(loop.status).toBe(400);
    expect(loop.headers.get('content-type')).toContain('application/problem+json');
    expect(loop.body.detail).toContain('steps[0] (gpt-4.1-mini): the ladder loops back to gpt-4.1-mini');

    // Refused ladders changed nothing.
    const state = await strict.api<{ model_ladder: unknown[] }>('GET', `/v1/tenants/${tenantId}/caps`);
    expect(state.body.model_ladder).toHaveLength(2);
  });

  it('answers 404, never 500, to ids that are not ids', async () => {
    // Each route gets a body it accepts, so the id alone decides the answer.
    const commit = { event: { source: 's', id: 'e' }, actual: {} };
    for (const [path, body] of [
      ['/v1/overrides/not-a-uuid/revoke', ops],
      [`/v1/overrides/${randomUUID()}/revoke`, ops],
      ['/v1/admission/reservations/not-a-uuid/release', undefined],
      ['/v1/admission/reservations/1/commit', commit],
    ] as const) {
      const response = await strict.api('POST', path, body);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
  });
});
