import { randomBytes, randomUUID } from 'node:crypto';
import type { ReserveResponse } from '@agentmeter/contracts';
import { eventually } from '@agentmeter/testing';
import { ExpirySweeper } from '../src/admission/expiry.sweeper';
import { CountersStore } from '../src/counters/counters.store';
import { RebuildService } from '../src/settlement/rebuild.service';
import { LedgerRepository, type NewReservation } from '../src/ledger/ledger.repository';
import { type ApiResponse, FakeClock, type Harness, pool, reserveBody, startInProcess } from './harness';
import { OverridesService } from '../src/overrides/overrides.service';

/**
 * Admission against real PostgreSQL, Redis and Kafka (docs/cost-cap.md "Tests and benchmark"): exact admission under concurrency,
 * mixed run and tenant caps, Redis losing its data mid-load, temporary raises expiring on time, the
 * tenant-day following the tenant's zone, expiry of unsettled reservations, and the API's edges.
 */
describe('admission', () => {
  // Midday in Los Angeles, 2026-03-01 (PST, UTC-8): a fixed time, months away from the real one, so every
  // decision must follow the injected clock (none reads PostgreSQL's now() or the machine clock).
  const clock = new FakeClock(new Date('2026-03-01T20:00:00Z'));
  let h: Harness;
  const ops = { actor: 'ops@agentmeter', reason: 'test setup' };

  beforeAll(async () => {
    h = await startInProcess({ clock });
  });

  afterAll(async () => {
    await h?.close();
  });

  const tenant = () => `t-${randomBytes(4).toString('hex')}`;
  const reserve = (body: Record<string, unknown>) => h.api<ReserveResponse>('POST', '/v1/admission/reserve', body);
  const commit = (id: string, cost: string, eventId = randomBytes(8).toString('hex')) =>
    h.api('POST', `/v1/admission/reservations/${id}/commit`, {
      event: { source: 'coordinator/test', id: eventId },
      actual: { cost_usd: cost },
    });
  const setCaps = async (tenantId: string, body: Record<string, unknown>) => {
    const response = await h.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, ...body });
    expect(response.status).toBe(200);
  };
  const ledgerSum = async (where: string, params: unknown[]) => {
    const { rows } = await h.pg.query(
      `SELECT COALESCE(sum(cost_micros), 0)::bigint AS s FROM spend_ledger WHERE ${where}`,
      params,
    );
    return BigInt(rows[0].s);
  };

  /** Retries an admission call while the counters are being rebuilt (503 + Retry-After), as clients do. */
  async function withRetry<T>(attempt: () => Promise<ApiResponse<T>>): Promise<ApiResponse<T>> {
    for (;;) {
      const response = await attempt();
      if (response.status !== 503) return response;
      expect(response.headers.get('retry-after')).toBe('1');
    }
  }

  it('admits exactly K of 500 concurrent reservations when the cap fits exactly K', async () => {
    const tenantId = tenant();
    const K = 137;
    await setCaps(tenantId, { daily_cap_usd: `${K * 0.01}` });
    const responses = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        reserve(reserveBody({ tenant_id: tenantId, run_id: `run-${i % 25}`, estimate: { cost_usd: '0.010000' } })),
      ),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const allowed = responses.filter((r) => r.body.decision === 'allow');
    const denied = responses.filter((r) => r.body.decision === 'deny');
    expect(allowed).toHaveLength(K);
    expect(denied).toHaveLength(500 - K);
    expect(denied[0]!.body.denied_by).toMatchObject({
      scope: 'tenant',
      cap: 'cost',
      limit: '1.370000',
      remaining: '0.000000',
      reason: 'insufficient',
      resets_at: expect.any(String),
    });
    const { rows } = await h.pg.query(
      `SELECT count(*)::int AS n FROM reservations WHERE tenant_id = $1 AND status = 'open'`,
      [tenantId],
    );
    expect(rows[0].n).toBe(K);

    // Committing them all reaches the cap exactly; nothing more fits.
    await pool(
      allowed.map((r) => () => commit(r.body.reservation_id!, '0.010000')),
      50,
    );
    expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(BigInt(K) * 10_000n);
    const after = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.000001' } }));
    expect(after.body).toMatchObject({ decision: 'deny', denied_by: { reason: 'cap_reached', spent: '1.370000' } });
  });

  it('keeps every run and the tenant-day within their caps under mixed concurrent load', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '2.00', run: { max_cost_usd: '0.35', max_tokens: 5_000 } });
    const runs = Array.from({ length: 8 }, (_, i) => `run-${i}`);
    // Half the requests go to run-0, which reaches its run cap (~9 requests) long before the runs together
    // reach the tenant's: both kinds of denial happen whatever the interleaving.
    const tasks = Array.from({ length: 400 }, (_, i) => async () => {
      const run = i % 2 === 0 ? runs[0]! : runs[1 + (i % (runs.length - 1))]!;
      const cents = 1 + (i % 7);
      const response = await reserve(
        reserveBody({
          tenant_id: tenantId,
          run_id: run,
          estimate: { cost_usd: `0.0${cents}`, prompt_tokens: 100 + (i % 5) * 50, completion_tokens: 50 },
        }),
      );
      if (response.body.decision === 'deny') return response.body.denied_by!.scope;
      // Most reservations are spent in full, some released, some left to expire.
      if (i % 10 === 0) await h.api('POST', `/v1/admission/reservations/${response.body.reservation_id}/release`);
      else if (i % 10 !== 1) await commit(response.body.reservation_id!, `0.0${cents}`);
      return 'allowed';
    });
    const outcomes = await pool(tasks, 50);
    expect(outcomes).toContain('run');
    expect(outcomes).toContain('tenant');
    for (const run of runs) {
      expect(await ledgerSum('tenant_id = $1 AND run_id = $2', [tenantId, run])).toBeLessThanOrEqual(350_000n);
      const { rows } = await h.pg.query(
        `SELECT COALESCE(sum(tokens), 0)::int AS t FROM spend_ledger WHERE tenant_id = $1 AND run_id = $2`,
        [tenantId, run],
      );
      expect(rows[0].t).toBeLessThanOrEqual(5_000);
    }
    // Committed plus still-held never above the tenant cap, in PostgreSQL and in Redis.
    const held = await h.pg.query(
      `SELECT COALESCE(sum(cost_micros), 0)::bigint AS s FROM reservations WHERE tenant_id = $1 AND status = 'open'`,
      [tenantId],
    );
    expect((await ledgerSum('tenant_id = $1', [tenantId])) + BigInt(held.rows[0].s)).toBeLessThanOrEqual(2_000_000n);
    const state = await h.api<{ daily: { spent: string; reserved: string } }>('GET', `/v1/tenants/${tenantId}/caps`);
    expect(Number(state.body.daily.spent) + Number(state.body.daily.reserved)).toBeLessThanOrEqual(2);
  });

  it('rebuilds the counters from the ledger when Redis loses its data mid-load, with no overspend', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '3.00' });
    let flushed = false;
    let admitted = 0;
    const tasks = Array.from({ length: 600 }, (_, i) => async () => {
      const response = await withRetry(() =>
        reserve(reserveBody({ tenant_id: tenantId, run_id: `run-${i % 10}`, estimate: { cost_usd: '0.010000' } })),
      );
      if (response.body.decision !== 'allow') return;
      admitted += 1;
      if (admitted === 120 && !flushed) {
        flushed = true;
        await h.flushRedis(); // in flight: reservations held, commits still to come
      }
      await withRetry(() => commit(response.body.reservation_id!, '0.010000'));
    });
    await pool(tasks, 40);
    expect(flushed).toBe(true);
    expect(admitted).toBe(300);
    expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(3_000_000n);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/agentmeter_cost_cap_counter_rebuilds_total\{cause="lost"[^}]*\} [1-9]/);
  });

  it.each([
    ['rebuilt before its row is written', 'before'],
    ['rebuilt after its row is written', 'after'],
    ['lost, and rebuilt only when the request retries', 'lost'],
  ] as const)(
    'retries a reservation whose counters were %s with a fresh id: no 500, held once',
    async (_name, when) => {
      const tenantId = tenant();
      await setCaps(tenantId, { daily_cap_usd: '0.05' });
      // The counter epoch changes between the hold in Redis and the ledger row: the hold is voided and the
      // request retried against the rebuilt counters.
      const ledger = h.app.get(LedgerRepository);
      const rebuild = h.app.get(RebuildService);
      const record = ledger.recordReservation.bind(ledger);
      const spy = jest.spyOn(ledger, 'recordReservation').mockImplementationOnce(async (r: NewReservation) => {
        if (when === 'before') {
          await h.flushRedis();
          await rebuild.ensure();
        }
        const recorded = await record(r);
        if (when !== 'before') await h.flushRedis();
        if (when === 'after') await rebuild.ensure();
        return recorded;
      });
      try {
        const first = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.03' } }));
        expect(first.status).toBe(200);
        expect(first.body).toMatchObject({ decision: 'allow', reserved: { cost_usd: '0.030000' } });
        expect(spy).toHaveBeenCalledTimes(2);
        // One open reservation (the one answered), the voided attempt released; Redis holds exactly it.
        const { rows } = await h.pg.query(
          `SELECT reservation_id, status FROM reservations WHERE tenant_id = $1 ORDER BY created_at, status`,
          [tenantId],
        );
        expect(rows.filter((row) => row.status === 'open')).toEqual([
          { reservation_id: first.body.reservation_id, status: 'open' },
        ]);
        expect(rows.filter((row) => row.status !== 'open').map((row) => row.status)).toEqual(['released']);
        const state = await h.api<{ daily: { reserved: string } }>('GET', `/v1/tenants/${tenantId}/caps`);
        expect(state.body.daily.reserved).toBe('0.030000');
        // So the cap still holds: 0.03 held, 0.02 left.
        expect(
          (await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.03' } }))).body,
        ).toMatchObject({ decision: 'deny', denied_by: { reason: 'insufficient', remaining: '0.020000' } });
        expect((await commit(first.body.reservation_id!, '0.03')).status).toBe(200);
        expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(30_000n);
      } finally {
        spy.mockRestore();
      }
    },
  );

  it('answers a reserve repeated with the same idempotency_key with the same reservation, held once', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '0.10' });
    const reserved = async () =>
      (await h.api<{ daily: { reserved: string } }>('GET', `/v1/tenants/${tenantId}/caps`)).body.daily.reserved;
    const body = reserveBody({
      tenant_id: tenantId,
      idempotency_key: 'run-1/implement/1/call-1',
      estimate: { cost_usd: '0.04' },
    });
    const first = await reserve(body);
    expect(first.body).toMatchObject({ decision: 'allow', reserved: { cost_usd: '0.040000' } });
    expect(first.body.replayed).toBeUndefined();
    const again = await reserve(body); // the Coordinator timed out and retries
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      decision: 'allow',
      reservation_id: first.body.reservation_id,
      expires_at: first.body.expires_at,
      reserved: { cost_usd: '0.040000' },
      replayed: true,
    });
    expect(await reserved()).toBe('0.040000');

    // Concurrent retries of one request: one reservation, whoever records it first.
    const concurrent = { ...body, idempotency_key: 'run-1/implement/1/call-2' };
    const answers = await Promise.all(Array.from({ length: 20 }, () => reserve(concurrent)));
    expect(answers.every((a) => a.status === 200 && a.body.decision === 'allow')).toBe(true);
    expect(new Set(answers.map((a) => a.body.reservation_id)).size).toBe(1);
    expect(await reserved()).toBe('0.080000');
    const { rows } = await h.pg.query(`SELECT count(*)::int AS n FROM reservations WHERE tenant_id = $1`, [tenantId]);
    expect(rows[0].n).toBe(2);

    // Redis losing its data changes nothing: the key lives in PostgreSQL.
    await h.flushRedis();
    const afterLoss = await withRetry(() => reserve(body));
    expect(afterLoss.body).toMatchObject({ reservation_id: first.body.reservation_id, replayed: true });
    expect(await reserved()).toBe('0.080000');

    // Committed, the retry still names it (and holds nothing); the spend counts once.
    expect((await commit(first.body.reservation_id!, '0.04')).status).toBe(200);
    const afterCommit = await reserve(body);
    expect(afterCommit.body).toMatchObject({ reservation_id: first.body.reservation_id, replayed: true });
    expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(40_000n);
    expect(await reserved()).toBe('0.040000');

    // The key belongs to one request of one tenant.
    const reused = await h.api<{ detail: string }>('POST', '/v1/admission/reserve', { ...body, run_id: 'run-2' });
    expect(reused.status).toBe(409);
    expect(reused.body.detail).toContain('run_id');
    const otherTenant = await reserve({ ...body, tenant_id: tenant() });
    expect(otherTenant.body.decision).toBe('allow');
    expect(otherTenant.body.reservation_id).not.toBe(first.body.reservation_id);
  });

  it('applies a temporary raise at once and drops it exactly at its expiry (72 h by default)', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '0.05' });
    const spend = async (cost: string) => {
      const response = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: cost } }));
      if (response.body.reservation_id) await commit(response.body.reservation_id, cost);
      return response.body;
    };
    expect((await spend('0.05')).decision).toBe('allow');
    expect((await spend('0.01')).decision).toBe('deny');

    const start = clock.now();
    const raise = await h.api<{ override_id: string; expires_at: string }>(
      'POST',
      `/v1/tenants/${tenantId}/overrides`,
      {
        actor: 'owner@acme',
        reason: 'launch day',
        cap: 'tenant_daily_cost',
        limit: '0.08',
      },
    );
    expect(raise.status).toBe(201);
    expect(raise.body.expires_at).toBe(new Date(start.getTime() + 72 * 3_600_000).toISOString());
    const raised = await spend('0.01');
    expect(raised).toMatchObject({ decision: 'allow' });
    expect(raised.scopes.find((s) => s.scope === 'tenant')).toMatchObject({
      limit: '0.080000',
      override: { override_id: raise.body.override_id, actor: 'owner@acme', reason: 'launch day', limit: '0.080000' },
    });

    // A second, shorter raise an hour later on the same day replaces it while in force, then gives way.
    clock.advance(3_600_000);
    const short = await h.api<{ override_id: string; expires_at: string }>(
      'POST',
      `/v1/tenants/${tenantId}/overrides`,
      {
        actor: 'owner@acme',
        reason: 'one more hour',
        cap: 'tenant_daily_cost',
        limit: '0.10',
        duration_hours: 1,
      },
    );
    clock.set(new Date(new Date(short.body.expires_at).getTime() - 1));
    expect((await spend('0.01')).scopes.find((s) => s.scope === 'tenant')!.limit).toBe('0.100000');
    clock.set(short.body.expires_at);
    const after = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.03' } }));
    expect(after.body.scopes.find((s) => s.scope === 'tenant')).toMatchObject({
      limit: '0.080000',
      override: { override_id: raise.body.override_id },
    });
    clock.set(raise.body.expires_at); // 72 h after the first raise: gone, the cap is back
    const state = await h.api<{ daily: { limit: string; override: unknown } }>('GET', `/v1/tenants/${tenantId}/caps`);
    expect(state.body.daily).toMatchObject({ limit: '0.050000', override: null });

    // The expiry timer records it in the audit (enforcement did not wait for it).
    await h.app.get(OverridesService).recordExpiry(raise.body.override_id);
    const audit = await h.api<Array<{ action: string; actor: string; expires_at: string }>>(
      'GET',
      `/v1/tenants/${tenantId}/audit`,
    );
    expect(audit.body.map((row) => row.action)).toEqual(['raise_expired', 'raise', 'raise', 'set_caps']);
    expect(audit.body[2]).toMatchObject({ actor: 'owner@acme', expires_at: raise.body.expires_at });
    clock.set(start);
  });

  it("counts the tenant-day in the tenant's time zone and resets at its local midnight", async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '0.02', time_zone: 'America/Los_Angeles' });
    const saved = clock.now();
    clock.set('2026-11-26T07:59:59Z'); // 23:59:59 on the 25th in Los Angeles, already the 26th in UTC
    const late = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.02' } }));
    expect(late.body).toMatchObject({ decision: 'allow', day: '2026-11-25' });
    await commit(late.body.reservation_id!, '0.02');
    const blocked = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.01' } }));
    expect(blocked.body.denied_by).toMatchObject({
      scope: 'tenant',
      reason: 'cap_reached',
      resets_at: '2026-11-26T08:00:00.000Z',
    });

    clock.set('2026-11-26T08:00:00Z'); // local midnight: a new day and a fresh budget
    const next = await reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.02' } }));
    expect(next.body).toMatchObject({ decision: 'allow', day: '2026-11-26' });
    expect(next.body.scopes.find((s) => s.scope === 'tenant')).toMatchObject({
      spent: '0.000000',
      resets_at: '2026-11-27T08:00:00.000Z',
    });
    const days = await h.pg.query(
      `SELECT day::text, sum(cost_micros)::int AS s FROM spend_ledger WHERE tenant_id = $1 GROUP BY day`,
      [tenantId],
    );
    expect(days.rows).toEqual([{ day: '2026-11-25', s: 20_000 }]);
    clock.set(saved);
  });

  it('keeps an expired reservation held until it is committed or released: a late commit never overshoots', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '0.05' });
    const saved = clock.now();
    const first = await Promise.all(
      Array.from({ length: 5 }, () => reserve(reserveBody({ tenant_id: tenantId, ttl_s: 1 }))),
    );
    expect(first.map((r) => r.body.decision)).toEqual(Array(5).fill('allow'));
    clock.advance(3_000); // every hold outlived its reservation; the calls are still running
    await h.app.get(ExpirySweeper).sweep(); // (the sweeper's own timer may have marked them first)
    const { rows } = await h.pg.query(`SELECT DISTINCT status FROM reservations WHERE tenant_id = $1`, [tenantId]);
    expect(rows).toEqual([{ status: 'expired' }]);
    const second = await Promise.all(
      Array.from({ length: 5 }, () => reserve(reserveBody({ tenant_id: tenantId, ttl_s: 1 }))),
    );
    expect(second.map((r) => r.body.decision)).toEqual(Array(5).fill('deny'));
    expect(second[0]!.body.denied_by).toMatchObject({ reason: 'insufficient', reserved: '0.050000' });
    // The late commits are accounted (the money was spent) and the ledger holds exactly the cap.
    for (const r of [...first, ...second].filter((r) => r.body.reservation_id)) {
      const late = await commit(r.body.reservation_id!, '0.01');
      expect(late.body).toMatchObject({ late: true, duplicate: false });
    }
    expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(50_000n);
    expect((await reserve(reserveBody({ tenant_id: tenantId }))).body.denied_by).toMatchObject({
      reason: 'cap_reached',
    });

    // Released, an expired reservation gives its hold back.
    const other = tenant();
    await setCaps(other, { daily_cap_usd: '0.01' });
    const held = await reserve(reserveBody({ tenant_id: other, ttl_s: 30 }));
    clock.advance(30_000);
    await h.app.get(ExpirySweeper).sweep();
    expect((await reserve(reserveBody({ tenant_id: other }))).body.decision).toBe('deny');
    const released = await h.api('POST', `/v1/admission/reservations/${held.body.reservation_id}/release`);
    expect(released.body).toEqual({ reservation_id: held.body.reservation_id, status: 'released' });
    expect((await reserve(reserveBody({ tenant_id: other }))).body.decision).toBe('allow');
    clock.set(saved);
  });

  it('extends a reservation whose call is still running, and counts it until it is committed', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '0.02' });
    const saved = clock.now();
    const held = await reserve(reserveBody({ tenant_id: tenantId, ttl_s: 1 }));
    const id = held.body.reservation_id!;
    clock.advance(900);
    const extended = await h.api<{ expires_at: string; status: string }>(
      'POST',
      `/v1/admission/reservations/${id}/extend`,
      { ttl_s: 600 },
    );
    expect(extended.status).toBe(200);
    expect(extended.body).toEqual({
      reservation_id: id,
      status: 'open',
      expires_at: new Date(clock.now().getTime() + 600_000).toISOString(),
    });
    clock.advance(300_000);
    await h.app.get(ExpirySweeper).sweep();
    const status = async () =>
      (await h.pg.query(`SELECT status FROM reservations WHERE reservation_id = $1`, [id])).rows[0].status;
    expect(await status()).toBe('open');
    // Expired, it can still be extended (it is open again); its hold never stopped counting.
    clock.advance(600_000);
    await h.app.get(ExpirySweeper).sweep();
    expect(await status()).toBe('expired');
    expect((await h.api('POST', `/v1/admission/reservations/${id}/extend`, { ttl_s: 60 })).body).toMatchObject({
      status: 'open',
    });
    expect(await status()).toBe('open');
    const admitted = await Promise.all(Array.from({ length: 4 }, () => reserve(reserveBody({ tenant_id: tenantId }))));
    expect(admitted.filter((r) => r.body.decision === 'allow')).toHaveLength(1);
    for (const r of [held, ...admitted].filter((r) => r.body.reservation_id)) {
      expect((await commit(r.body.reservation_id!, '0.01')).status).toBe(200);
    }
    expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(20_000n);
    // Settled, nothing to extend; an id that is not a reservation's is a 404.
    expect((await h.api('POST', `/v1/admission/reservations/${id}/extend`, { ttl_s: 60 })).status).toBe(409);
    const notUuid = await h.api('POST', '/v1/admission/reservations/not-a-uuid/extend', { ttl_s: 60 });
    expect(notUuid.status).toBe(404);
    expect(notUuid.headers.get('content-type')).toContain('application/problem+json');
    expect((await h.api('POST', `/v1/admission/reservations/${randomUUID()}/extend`, { ttl_s: 60 })).status).toBe(404);
    expect((await h.api('POST', `/v1/admission/reservations/${id}/extend`, { ttl_s: 0 })).status).toBe(400);
    clock.set(saved);
  });

  it.each([
    ['one run key', 'run'],
    ['one tenant-day key', 'day'],
    ['the hashes of held reservations', 'holds'],
  ] as const)('admits exactly the cap when Redis loses %s under concurrent load', async (_name, lose) => {
    const tenantId = tenant();
    const K = 37;
    await setCaps(tenantId, { daily_cap_usd: lose === 'day' ? `${K * 0.01}` : '5.00' });
    const runCaps = lose === 'day' ? undefined : { max_cost_usd: `${K * 0.01}` };
    const store = h.app.get(CountersStore);
    const day = '2026-03-01'; // the tenant's zone is UTC; the clock is pinned to this day
    let admitted = 0;
    let lost = false;
    const open: string[] = [];
    const tasks = Array.from({ length: 120 }, (_, i) => async () => {
      const response = await withRetry(() =>
        reserve(
          reserveBody({
            tenant_id: tenantId,
            run_id: lose === 'day' ? `run-${i % 6}` : 'run-1',
            run_caps: runCaps,
            estimate: { cost_usd: '0.010000' },
          }),
        ),
      );
      expect(response.status).toBe(200);
      if (response.body.decision !== 'allow') return;
      admitted += 1;
      open.push(response.body.reservation_id!);
      if (admitted === 20 && !lost) {
        lost = true;
        if (lose === 'run') await h.redis.del(store.runKey(tenantId, 'run-1'));
        else if (lose === 'day') await h.redis.del(store.dayKey(tenantId, day));
        else await h.redis.del(...open.map((id) => store.reservationKey(id)));
      }
      // Half of the holds are committed at once, the others once the load is over.
      if (i % 2 === 0) await withRetry(() => commit(response.body.reservation_id!, '0.010000'));
      else return response.body.reservation_id!;
    });
    const later = (await pool(tasks, 30)).filter((id): id is string => typeof id === 'string');
    for (const id of later) expect((await withRetry(() => commit(id, '0.010000'))).status).toBe(200);
    expect(lost).toBe(true);
    expect(admitted).toBe(K);
    expect(await ledgerSum('tenant_id = $1', [tenantId])).toBe(BigInt(K) * 10_000n);
    // Redis agrees with the ledger: the cap is reached, nothing is held any more.
    const state = await h.api<{ daily: { spent: string; reserved: string } }>('GET', `/v1/tenants/${tenantId}/caps`);
    expect(state.body.daily).toMatchObject({ spent: (K * 0.01).toFixed(6), reserved: '0.000000' });
    const next = await reserve(reserveBody({ tenant_id: tenantId, run_id: 'run-1', run_caps: runCaps }));
    expect(next.body).toMatchObject({ decision: 'deny', denied_by: { reason: 'cap_reached' } });
  });

  it('answers 409 to an idempotency_key repeated with a different body (estimate included)', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '1.00' });
    const body = reserveBody({ tenant_id: tenantId, idempotency_key: 'k-1', estimate: { cost_usd: '0.01' } });
    const first = await reserve(body);
    expect(first.body.decision).toBe('allow');
    const other = await h.api<{ detail: string }>('POST', '/v1/admission/reserve', {
      ...body,
      estimate: { cost_usd: '0.50' },
    });
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toContain('application/problem+json');
    expect(other.body.detail).toContain('k-1');
    expect((await reserve({ ...body, ttl_s: 5 })).status).toBe(409);
    // The same body (keys in another order) is a replay.
    const same = await reserve({ estimate: { cost_usd: '0.01' }, ...body });
    expect(same.body).toMatchObject({ reservation_id: first.body.reservation_id, replayed: true });
  });

  it('rounds an estimate up to the micro-dollar: a positive estimate never holds nothing', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '0.000002' });
    const tiny = () => reserve(reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.0000001' } }));
    expect((await tiny()).body).toMatchObject({ decision: 'allow', reserved: { cost_usd: '0.000001' } });
    expect((await tiny()).body.decision).toBe('allow');
    expect((await tiny()).body).toMatchObject({ decision: 'deny', denied_by: { reason: 'insufficient' } });
  });

  it('downgrades retries along the ladder, never the Validator, and cuts the Publisher to what is left', async () => {
    const tenantId = tenant();
    await setCaps(tenantId, { daily_cap_usd: '1.00' });
    await h.api('PUT', `/v1/tenants/${tenantId}/model-ladder`, {
      ...ops,
      steps: [
        { model: 'gpt-4.1', cheaper_model: 'gpt-4.1-mini' },
        { model: 'gpt-4.1-mini', cheaper_model: 'gpt-4.1-nano' },
      ],
    });
    const estimate = { prompt_tokens: 100_000, completion_tokens: 10_000 };
    const first = await reserve(reserveBody({ tenant_id: tenantId, estimate }));
    expect(first.body).toMatchObject({ decision: 'allow', model: 'gpt-4.1', reserved: { cost_usd: '0.280000' } });
    const retry = await reserve(reserveBody({ tenant_id: tenantId, attempt: 2, estimate }));
    expect(retry.body).toMatchObject({
      decision: 'allow_cheaper_model',
      model: 'gpt-4.1-mini',
      requested_model: 'gpt-4.1',
      reserved: { cost_usd: '0.056000', tokens: '110000' },
    });
    const third = await reserve(reserveBody({ tenant_id: tenantId, attempt: 3, estimate }));
    expect(third.body).toMatchObject({ decision: 'allow_cheaper_model', model: 'gpt-4.1-nano' });
    const validator = await reserve(reserveBody({ tenant_id: tenantId, attempt: 3, role: 'validator', estimate }));
    expect(validator.body).toMatchObject({ decision: 'allow', model: 'gpt-4.1' });

    const left = 1_000_000 - 280_000 - 56_000 - 14_000 - 280_000;
    const publish = await reserve(
      reserveBody({
        tenant_id: tenantId,
        role: 'publisher',
        kind: 'charge',
        model: 'netlify',
        estimate: { cost_usd: '5' },
      }),
    );
    expect(publish.body).toMatchObject({
      decision: 'publish_partial',
      reserved: { cost_usd: (left / 1e6).toFixed(6) },
      partial: { left_usd: (left / 1e6).toFixed(6) },
    });
    const nothingLeft = await reserve(
      reserveBody({
        tenant_id: tenantId,
        role: 'publisher',
        kind: 'charge',
        model: 'netlify',
        estimate: { cost_usd: '1' },
      }),
    );
    expect(nothingLeft.body.decision).toBe('deny');
  });

  it("stores an action's reason redacted: the request body passes the redaction step before the handler", async () => {
    const tenantId = tenant();
    const reason = 'overdue, ask jane.doe.fake@example.com';
    expect((await h.api('POST', `/v1/tenants/${tenantId}/pause`, { actor: 'admin@am', reason })).status).toBe(200);
    const rows = await h.pg.query<{ reason: string }>(
      `SELECT reason FROM cap_audit WHERE tenant_id = $1 AND action = 'pause'`,
      [tenantId],
    );
    expect(rows.rows.map((row) => row.reason)).toEqual(['overdue, ask [REDACTED:email]']);
    await h.api('POST', `/v1/tenants/${tenantId}/unpause`, { actor: 'admin@am', reason: 'paid' });
  });

  it('denies a paused tenant and a frozen playbook, with who and why', async () => {
    const tenantId = tenant();
    expect(
      (await h.api('POST', `/v1/tenants/${tenantId}/pause`, { actor: 'admin@am', reason: 'invoice overdue' })).status,
    ).toBe(200);
    const paused = await reserve(reserveBody({ tenant_id: tenantId }));
    expect(paused.body.denied_by).toMatchObject({ scope: 'tenant', cap: 'paused', reason: 'paused' });
    expect(paused.body.denied_by!.detail).toContain('admin@am');
    expect(paused.body.denied_by!.detail).toContain('invoice overdue');
    await h.api('POST', `/v1/tenants/${tenantId}/unpause`, { actor: 'admin@am', reason: 'paid' });
    expect((await reserve(reserveBody({ tenant_id: tenantId }))).body.decision).toBe('allow');

    const playbook = `pb-${randomBytes(3).toString('hex')}`;
    const samples = await h.api<{ frozen: boolean; newly_frozen: boolean; failure_rate: number }>(
      'POST',
      `/v1/playbooks/${playbook}/validator-samples`,
      { samples: Array.from({ length: 10 }, (_, i) => ({ sample_id: `s${i}`, passed: i >= 3 })) },
    );
    expect(samples.body).toMatchObject({ frozen: true, newly_frozen: true, failure_rate: 0.3 });
    const publisher = reserveBody({ tenant_id: tenantId, role: 'publisher', playbook, kind: 'charge', model: 'x' });
    const frozen = await eventually(async () => {
      const response = await reserve(publisher);
      expect(response.body.decision).toBe('deny');
      return response;
    });
    expect(frozen.body.denied_by).toMatchObject({ scope: 'playbook', cap: 'publisher_frozen', reason: 'frozen' });
    // Other roles of the playbook are not affected.
    expect((await reserve({ ...publisher, role: 'implementer' })).body.decision).toBe('allow');
    await h.api('POST', `/v1/playbooks/${playbook}/unfreeze`, { actor: 'admin@am', reason: 'validator fixed' });
    expect((await reserve(publisher)).body.decision).toBe('allow');
  });

  it('answers bad input with problem+json and a clear 4xx', async () => {
    const noToken = await h.api('POST', '/v1/admission/reserve', reserveBody(), '');
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('content-type')).toContain('application/problem+json');
    expect((await h.api('POST', '/v1/admission/reserve', reserveBody(), 'wrong-token-wrong-token')).status).toBe(401);

    const malformed = await h.api<{ detail: string }>('POST', '/v1/admission/reserve', '{"tenant_id":');
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toContain('application/problem+json');

    const invalid = await h.api<{ detail: string; status: number }>(
      'POST',
      '/v1/admission/reserve',
      reserveBody({ attempt: 0, estimate: { cost_usd: '-1' } }),
    );
    expect(invalid.status).toBe(400);
    expect(invalid.body.detail).toContain('attempt');
    expect(invalid.body.detail).toContain('estimate.cost_usd');

    const unpriced = await h.api<{ detail: string }>(
      'POST',
      '/v1/admission/reserve',
      reserveBody({ model: 'no-such-model', estimate: { prompt_tokens: 10 } }),
    );
    expect(unpriced.status).toBe(422);
    expect(unpriced.body.detail).toContain('no-such-model');

    const missing = await h.api('POST', '/v1/admission/reservations/00000000-0000-0000-0000-000000000000/commit', {
      event: { source: 's', id: 'e' },
      actual: {},
    });
    expect(missing.status).toBe(404);

    const noReason = await h.api<{ detail: string }>('POST', '/v1/tenants/x/pause', { actor: 'a' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.detail).toContain('reason');
    const blankActor = await h.api('POST', '/v1/tenants/x/overrides', {
      actor: '  ',
      reason: 'r',
      cap: 'tenant_daily_cost',
      limit: '5',
    });
    expect(blankActor.status).toBe(400);
    const nothingToRaise = await h.api('POST', `/v1/tenants/${tenant()}/overrides`, {
      ...ops,
      cap: 'tenant_daily_cost',
      limit: '5',
    });
    expect(nothingToRaise.status).toBe(409);
    const badZone = await h.api<{ detail: string }>('PUT', '/v1/tenants/x/caps', { ...ops, time_zone: 'Mars/Base' });
    expect(badZone.status).toBe(400);
    expect(badZone.body.detail).toContain('time_zone');

    // Health and metrics need no token; the OpenAPI document describes the admission API.
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
    const openApi = (await (await fetch(`${h.url}/docs-json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openApi.paths)).toEqual(
      expect.arrayContaining(['/v1/admission/reserve', '/v1/tenants/{tenant_id}/overrides']),
    );
  });
});
