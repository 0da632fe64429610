import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { ReserveResponse } from '@agentmeter/contracts';
import { type PrivateRedis, type RunningService, startPrivateRedis, startService } from '@agentmeter/testing';
import { call, isolation, reserveBody } from './harness';

type Isolation = Awaited<ReturnType<typeof isolation>>;

/**
 * The fast path's recovery rule (docs/cost-cap.md "The fast path"): a reservation is answered only once its
 * row is committed, so whatever dies in the middle of a burst — a replica killed with SIGKILL between a hold
 * and its row, or between its row and its answer, then Redis losing every key — the counters rebuilt from
 * PostgreSQL count every reservation that may have been answered, and never admit more than the cap.
 */
describe('cost-cap killed in the middle of a burst, then Redis losing its data', () => {
  let iso: Isolation;
  let redis: PrivateRedis;
  let a: RunningService;
  let b: RunningService;
  let pg: Client;

  beforeAll(async () => {
    iso = await isolation();
    redis = await startPrivateRedis();
    const env = { ...iso.env, REDIS_URL: redis.url, LOG_LEVEL: 'error' };
    [a, b] = await Promise.all([startService('cost-cap', env), startService('cost-cap', env)]);
    pg = new Client({ connectionString: iso.db.url });
    await pg.connect();
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) console.log(a?.output(), b?.output(), redis?.log());
    await Promise.all([a?.stop(), b?.stop()]);
    await pg?.end();
    await redis?.destroy();
    await iso?.db.drop();
  });

  it('never admits more than the cap: the rebuild counts every reservation that may have been answered', async () => {
    const tenantId = `crash-${randomBytes(3).toString('hex')}`;
    expect(
      (await call(b.url, 'PUT', `/v1/tenants/${tenantId}/caps`, { actor: 'ops', reason: 'e2e', daily_cap_usd: '1.00' }))
        .status,
    ).toBe(200);
    let killed = false;
    // One reserve of $0.01 (the day has room for 100); requests to the killed replica fail, and what was
    // answered 503 (counters being rebuilt, Redis away) is sent again to the live one until it is decided.
    const reserve = async (i: number): Promise<'allow' | 'deny' | 'lost'> => {
      const body = reserveBody({ tenant_id: tenantId, run_id: `k-run-${i % 20}`, estimate: { cost_usd: '0.010000' } });
      for (let attempt = 0; attempt < 300; attempt++) {
        const replica = i % 2 === 0 && !killed && attempt === 0 ? a : b;
        const answer = await call<ReserveResponse>(replica.url, 'POST', '/v1/admission/reserve', body).catch(
          () => null,
        );
        // The killed replica may have held or recorded it: the caller never learns, so it is lost, not retried.
        if (answer === null && replica === a) return 'lost';
        if (answer?.status === 200) return answer.body.decision === 'allow' ? 'allow' : 'deny';
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`reserve ${i} was never decided`);
    };
    const outcomes: Array<'allow' | 'deny' | 'lost'> = [];
    let next = 0;
    const worker = async () => {
      while (next < 400) {
        const i = next++;
        if (i === 60 && !killed) {
          // In the middle of the burst: replica a dies with requests in flight, then Redis loses every key.
          killed = true;
          await a.kill();
          await redis.shutdownNosave();
          await redis.start();
        }
        outcomes.push(await reserve(i));
      }
    };
    await Promise.all(Array.from({ length: 30 }, worker));
    expect(killed).toBe(true);

    const allowed = outcomes.filter((o) => o === 'allow').length;
    const { rows } = await pg.query(
      `SELECT count(*)::int AS n, COALESCE(sum(cost_micros), 0)::bigint AS s
         FROM reservations WHERE tenant_id = $1 AND status IN ('open', 'expired')`,
      [tenantId],
    );
    // Every answered reservation has its row; rows without an answer (lost with replica a) still hold.
    expect(allowed).toBeLessThanOrEqual(100);
    expect(rows[0].n).toBeGreaterThanOrEqual(allowed);
    expect(Number(rows[0].n)).toBeLessThanOrEqual(100);
    expect(BigInt(rows[0].s)).toBeLessThanOrEqual(1_000_000n);

    // Filling what is left: the rebuilt counters hold every row, so rows and counters reach exactly the cap.
    const fill = await Promise.all(Array.from({ length: 150 }, (_, i) => reserve(1_000 + 2 * i + 1)));
    expect(allowed + fill.filter((o) => o === 'allow').length).toBeLessThanOrEqual(100);
    const after = await pg.query(
      `SELECT count(*)::int AS n, sum(cost_micros)::bigint AS s
         FROM reservations WHERE tenant_id = $1 AND status IN ('open', 'expired')`,
      [tenantId],
    );
    expect(after.rows[0]).toEqual({ n: 100, s: '1000000' });
    const caps = await call<{ daily: { reserved: string; remaining: string } }>(
      b.url,
      'GET',
      `/v1/tenants/${tenantId}/caps`,
      undefined,
    );
    expect(caps.body.daily).toMatchObject({ reserved: '1.000000', remaining: '0.000000' });
  });
});
