import { randomBytes, randomUUID } from 'node:crypto';
import {
  type AdmissionRequest,
  type Counters,
  decideAdmission,
  type DimensionLimits,
  DIMENSIONS,
} from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { prng, testEnvironment } from '@agentmeter/testing';
import { loadConfig } from '../src/config';
import { CountersRebuildingError, CountersStore } from '../src/counters/counters.store';

/**
 * The Redis script decides exactly like the reference decideAdmission() of libs/domain, on random states,
 * limits and requests (the unit tests of the domain then cover the script too).
 */
describe('the reservation script', () => {
  const prefix = `${testEnvironment().redisPrefix}lua-${randomBytes(4).toString('hex')}:`;
  let store: CountersStore;

  beforeAll(async () => {
    store = new CountersStore(
      loadConfig({
        REDIS_URL: testEnvironment().redisUrl,
        REDIS_KEY_PREFIX: prefix,
        COST_CAP_API_TOKEN: 'x'.repeat(16),
      }),
      createLogger('cost-cap-test', 'silent'),
    );
    await store.writeSnapshot({ runs: [], days: [], reservations: [] });
  });

  afterAll(async () => {
    const keys = await store.redis.keys(`${prefix}*`);
    if (keys.length > 0) await store.redis.del(...keys);
    store.onApplicationShutdown();
  });

  it('agrees with decideAdmission on 1,000 random cases', async () => {
    const random = prng(42);
    const amount = (max: number) => BigInt(Math.floor(random() * max));
    for (let i = 0; i < 1_000; i++) {
      const counters = Object.fromEntries(
        DIMENSIONS.map((d) => [d, { committed: amount(100), reserved: amount(60) }]),
      ) as Counters;
      const limits = Object.fromEntries(
        DIMENSIONS.map((d) => [d, random() < 0.3 ? null : amount(200)]),
      ) as DimensionLimits;
      const stopped = random() < 0.05;
      const request: AdmissionRequest = {
        kind: random() < 0.5 ? 'llm' : 'charge',
        tokens: amount(60),
        money: amount(80),
        partial: random() < 0.3,
      };
      request.tokens = request.kind === 'llm' ? request.tokens : 0n;
      const tenantId = `t${i}`;
      const runId = `r${i}`;
      await store.writeSnapshot({
        runs: [
          {
            tenantId,
            runId,
            tokens: counters.run_tokens.committed,
            heldTokens: counters.run_tokens.reserved,
            cost: counters.run_cost.committed,
            heldCost: counters.run_cost.reserved,
            external: counters.run_external.committed,
            heldExternal: counters.run_external.reserved,
            stop: stopped ? 'wall_time' : null,
          },
        ],
        days: [
          {
            tenantId,
            day: '2026-11-25',
            cost: counters.tenant_cost.committed,
            heldCost: counters.tenant_cost.reserved,
          },
        ],
        reservations: [],
      });
      const expected = decideAdmission(counters, limits, stopped, request);
      const actual = await store.reserve({
        reservationId: randomUUID(),
        tenantId,
        runId,
        day: '2026-11-25',
        kind: request.kind,
        tokens: request.tokens,
        money: request.money,
        partial: request.partial,
        limits,
        expiresAt: new Date(Date.now() + 60_000),
      });
      const context = { i, counters, limits, stopped, request };
      if (expected.status === 'deny') {
        expect({
          ...context,
          status: actual.status.startsWith('DENY') ? 'deny' : actual.status,
          dimension: actual.dimension,
        }).toEqual({
          ...context,
          status: 'deny',
          dimension: expected.dimension === 'run_wall_time' ? 5 : DIMENSIONS.indexOf(expected.dimension) + 1,
        });
      } else {
        expect({ ...context, status: actual.status, granted: actual.granted }).toEqual({
          ...context,
          status: expected.status === 'allow' ? 'ALLOW' : 'PARTIAL',
          granted: expected.money,
        });
        // The hold was added to every dimension the request uses.
        expect(actual.counters.tenant_cost.reserved).toBe(counters.tenant_cost.reserved + expected.money);
      }
    }
  });

  it('refuses to count without an epoch (Redis lost its data)', async () => {
    await store.dropEpoch();
    await expect(
      store.settle({ tenantId: 't', runId: 'r', day: '2026-11-25', reservationId: null, apply: null }),
    ).rejects.toBeInstanceOf(CountersRebuildingError);
    await store.writeSnapshot({ runs: [], days: [], reservations: [] });
  });

  it('adds a ledger entry once per epoch, however often it is applied', async () => {
    const apply = { entryKey: 'event:s\u001fe1', tokens: 5n, cost: 7n, external: 0n };
    const args = { tenantId: 'once', runId: 'r', day: '2026-11-25', reservationId: null, apply };
    expect((await store.settle(args)).applied).toBe(true);
    const again = await store.settle(args);
    expect(again.applied).toBe(false);
    expect(again.counters.run_cost.committed).toBe(7n);
    // A new epoch (a rebuild from the ledger) makes the marker stale: applying is then the caller's decision.
    await store.writeSnapshot({ runs: [], days: [], reservations: [] });
    expect((await store.settle(args)).applied).toBe(true);
  });
});
