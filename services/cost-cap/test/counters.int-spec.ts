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
import {
  type CounterSnapshot,
  CountersMissingError,
  CountersRebuildingError,
  CountersStore,
} from '../src/counters/counters.store';

/**
 * The Redis script decides exactly like the reference decideAdmission() of libs/domain, on random states,
 * limits and requests (the unit tests of the domain then cover the script too). The test writes and deletes
 * only the keys it names (never a SCAN or KEYS): Redis may hold any number of other keys.
 */
describe('the reservation script', () => {
  const prefix = `${testEnvironment().redisPrefix}lua-${randomBytes(4).toString('hex')}:`;
  let store: CountersStore;
  const created = new Set<string>();

  /** Writes the keys of a snapshot (in the current epoch) and remembers them for the clean-up. */
  async function write(snapshot: CounterSnapshot, generation = 'g1'): Promise<void> {
    for (const run of snapshot.runs) created.add(store.runKey(run.tenantId, run.runId));
    for (const day of snapshot.days) created.add(store.dayKey(day.tenantId, day.day));
    for (const r of snapshot.reservations) created.add(store.reservationKey(r.reservationId));
    await store.writeScopes(snapshot, generation);
  }
  const newEpoch = () => store.redis.set(store.epochKey, randomUUID());

  beforeAll(async () => {
    store = new CountersStore(
      loadConfig({
        REDIS_URL: testEnvironment().redisUrl,
        REDIS_KEY_PREFIX: prefix,
        COST_CAP_API_TOKEN: 'x'.repeat(16),
      }),
      createLogger('cost-cap-test', 'silent'),
    );
    created.add(store.epochKey).add(store.expiryKey);
    await newEpoch();
  });

  afterAll(async () => {
    const keys = [...created];
    for (let i = 0; i < keys.length; i += 500) await store.redis.del(...keys.slice(i, i + 500));
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
      await write({
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
      const reservationId = randomUUID();
      created.add(store.reservationKey(reservationId));
      const actual = await store.reserve({
        reservationId,
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
    await newEpoch();
  });

  it('adds a ledger entry once per epoch, however often it is applied', async () => {
    const apply = { entryKey: `event:s\u001f${randomUUID()}`, tokens: 5n, cost: 7n, external: 0n };
    const args = { tenantId: 'once', runId: 'r', day: '2026-11-25', reservationId: null, apply };
    created.add(store.markerKey(apply.entryKey));
    await write(emptyScopes('once', 'r', '2026-11-25'));
    expect((await store.settle(args)).applied).toBe(true);
    const again = await store.settle(args);
    expect(again.applied).toBe(false);
    expect(again.counters.run_cost.committed).toBe(7n);
    // A new epoch (a rebuild from the ledger) makes the marker stale: applying is then the caller's decision.
    await newEpoch();
    expect((await store.settle(args)).applied).toBe(true);
    // So does a new generation of one of its keys (loaded again from the ledger).
    await write(emptyScopes('once', 'r', '2026-11-25'), 'g2');
    expect((await store.settle(args)).applied).toBe(true);
  });

  it('never reads a missing counter key as zero: the scripts name the keys to load', async () => {
    const day = '2026-11-25';
    const limits = { run_tokens: null, run_cost: 100n, run_external: null, tenant_cost: 100n };
    const reserve = (tenantId: string, runId: string, money: bigint) => {
      const reservationId = randomUUID();
      created.add(store.reservationKey(reservationId));
      return store
        .reserve({
          reservationId,
          tenantId,
          runId,
          day,
          kind: 'charge' as const,
          tokens: 0n,
          money,
          partial: false,
          limits,
          expiresAt: new Date(Date.now() + 60_000),
        })
        .then((result) => ({ ...result, reservationId }));
    };
    // A new run of a new tenant: both keys missing, nothing held.
    const failure = await reserve('fresh', 'r', 10n).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CountersMissingError);
    expect((failure as CountersMissingError).scopes).toEqual([
      { kind: 'run', tenantId: 'fresh', runId: 'r' },
      { kind: 'day', tenantId: 'fresh', day },
    ]);
    expect(await store.redis.exists(store.runKey('fresh', 'r'), store.dayKey('fresh', day))).toBe(0);
    // Applying an entry needs both keys too; nothing is half-written.
    const apply = { entryKey: `event:s\u001f${randomUUID()}`, tokens: 0n, cost: 5n, external: 0n };
    await expect(
      store.settle({ tenantId: 'fresh', runId: 'r', day, reservationId: null, apply }),
    ).rejects.toBeInstanceOf(CountersMissingError);

    // A hold made in one generation is not subtracted from a key loaded again since (which counts only the
    // rows it was loaded from).
    await write(emptyScopes('gen', 'r', day), 'g1');
    const held = await reserve('gen', 'r', 60n);
    expect(held.status).toBe('ALLOW');
    expect(held.generations).toEqual({ run: 'g1', day: 'g1' });
    const epoch = (await store.epoch())!;
    const lost = await store.load(
      epoch,
      { kind: 'day', tenantId: 'gen', day, cost: 30n, holds: [] }, // the row of the hold is not written yet
      true,
    );
    expect(lost).toEqual([]);
    const released = await store.settle({
      tenantId: 'gen',
      runId: 'r',
      day,
      reservationId: held.reservationId,
      apply: null,
    });
    expect(released.released).toBe(true);
    expect(released.counters.run_cost.reserved).toBe(0n); // same generation: given back
    expect(released.counters.tenant_cost).toEqual({ committed: 30n, reserved: 0n }); // loaded without it
    // Loading is skipped when the key is there (unless forced) or the epoch changed.
    expect(await store.load(epoch, { kind: 'day', tenantId: 'gen', day, cost: 0n, holds: [] }, false)).toBeNull();
    expect(await store.load('other', { kind: 'day', tenantId: 'gen', day, cost: 0n, holds: [] }, true)).toBeNull();
  });
});

function emptyScopes(tenantId: string, runId: string, day: string): CounterSnapshot {
  return {
    runs: [
      {
        tenantId,
        runId,
        tokens: 0n,
        cost: 0n,
        external: 0n,
        heldTokens: 0n,
        heldCost: 0n,
        heldExternal: 0n,
        stop: null,
      },
    ],
    days: [{ tenantId, day, cost: 0n, heldCost: 0n }],
    reservations: [],
  };
}
