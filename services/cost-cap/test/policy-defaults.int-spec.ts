import { randomBytes } from 'node:crypto';
import type { ReserveResponse } from '@agentmeter/contracts';
import { type Harness, reserveBody, startInProcess } from './harness';

/**
 * The deployment default of the daily cap (what `make up` sets): a tenant nobody configured is held to it, and
 * COST_CAP_REQUIRE_DAILY_CAP is then satisfied by it (docs/cost-cap.md "Fail closed").
 */
describe('deployment default caps', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startInProcess({ env: { COST_CAP_DEFAULT_DAILY_USD: '10', COST_CAP_REQUIRE_DAILY_CAP: 'true' } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('denies $100,000 for a tenant nobody configured', async () => {
    const tenantId = `d-${randomBytes(4).toString('hex')}`;
    const reserve = (cost: string) =>
      h.api<ReserveResponse>(
        'POST',
        '/v1/admission/reserve',
        reserveBody({ tenant_id: tenantId, estimate: { cost_usd: cost } }),
      );
    const huge = await reserve('100000');
    expect(huge.body).toMatchObject({
      decision: 'deny',
      denied_by: { scope: 'tenant', cap: 'cost', limit: '10.000000', reason: 'insufficient' },
    });
    expect((await reserve('9.99')).body.decision).toBe('allow');
    expect((await reserve('0.02')).body.decision).toBe('deny');
  });
});
