import { randomBytes } from 'node:crypto';
import type { AgentEventInput } from '@agentmeter/contracts';
import { formatUsd, parseUsd } from '@agentmeter/domain';
import { RetentionRepository } from '../../ingest/src/retention/retention.repository';
import { call, ingestAll, seed, startQuery, token, type RunningQuery, type Seeded } from './query.fixture';
import { phaseTruth, runUsers, sumBy } from './query.truth';

type Input = AgentEventInput & { key?: string };

/**
 * True numbers (docs/query.md "Definitions"): the user of a run is carried onto its calls and usage rows, a run's
 * cost is its stages plus its external charges, and analytics read 13 months of rollups (daily, then monthly).
 */
describe('query API: users, cost parts and long ranges', () => {
  const prefix = `qn${randomBytes(2).toString('hex')}`;
  let s: Seeded;
  let q: RunningQuery;
  let admin: string;

  beforeAll(async () => {
    s = await seed(prefix);
    q = await startQuery(s.database.url);
    admin = await token('platform', ['admin']);
  });

  afterAll(async () => {
    await q?.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  const get = async (path: string, bearer = admin) => {
    const answer = await call(q.url, bearer, path);
    expect({ path, status: answer.status, detail: answer.json?.detail }).toEqual({
      path,
      status: 200,
      detail: undefined,
    });
    return answer.json;
  };

  const event = (id: string, type: Input['type'], time: string, data: object): Input =>
    ({
      specversion: '1.0',
      id,
      source: `true-numbers/${prefix}`,
      type,
      time,
      subject: (data as { tenant_id: string }).tenant_id,
      data,
    }) as Input;

  it("gives one cost row per user, each the exact sum of its runs' calls and charges", async () => {
    const users = runUsers(s.events);
    expect(users.size).toBe(s.workload.truth.runs.length); // every demo run carries a user
    const truth = sumBy(s.events, (e) => {
      const d = e.data as unknown as { tenant_id: string; run_id: string; user_id?: string };
      return d.user_id ?? users.get(`${d.tenant_id}/${d.run_id}`) ?? null;
    });
    const body = await get(`/api/v1/analytics/costs?period=30d&group_by=user`);
    const rows = body.rows.map((r: { key: string | null; llm_cost_usd: string; external_cost_usd: string }) => [
      r.key,
      r.llm_cost_usd,
      r.external_cost_usd,
    ]);
    const expected = [...truth.entries()].map(([key, v]) => [key, formatUsd(v.llm), formatUsd(v.ext)]);
    expect(sortRows(rows)).toEqual(sortRows(expected));
    expect(new Set(body.rows.map((r: { key: string | null }) => r.key))).toEqual(
      new Set([...users.values(), null]), // null: the fixture's extra run, whose run_started names no user
    );

    // Usage rows: LLM calls per user equal the events' count; tool calls carry no user (docs/events.md "Users").
    const usage = await get(`/api/v1/analytics/usage?period=30d&group_by=user`);
    const calls = new Map<string | null, number>();
    for (const e of s.events) {
      if (e.type !== 'llm_call' && e.type !== 'tool_call') continue;
      const d = e.data as unknown as { tenant_id: string; run_id: string; user_id?: string };
      const key = e.type === 'tool_call' ? null : (d.user_id ?? users.get(`${d.tenant_id}/${d.run_id}`) ?? null);
      calls.set(key, (calls.get(key) ?? 0) + 1);
    }
    expect(sortRows(usage.rows.map((r: { key: string | null; calls: number }) => [r.key, r.calls]))).toEqual(
      sortRows([...calls.entries()]),
    );
  });

  it('carries the user onto calls whose run_started came in an earlier batch, and keeps a call’s own user', async () => {
    const tenant = `${prefix}-later`;
    const base = { tenant_id: tenant, project_id: `${prefix}-p`, run_id: `${prefix}-later-run` };
    const call1 = { ...base, phase: 'plan', role: 'planner', attempt: 1, model: 'gpt-4.1', provider: 'openai' };
    const now = Date.now();
    const at = (ms: number) => new Date(now - 60_000 + ms).toISOString();
    await ingestAll(s.ingest, [event(`${prefix}-l1`, 'run_started', at(0), { ...base, user_id: 'alice' })]);
    await ingestAll(s.ingest, [
      event(`${prefix}-l2`, 'llm_call', at(1), {
        ...call1,
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_usd: '0.000100',
        latency_ms: 5,
      }),
      event(`${prefix}-l3`, 'llm_call', at(2), {
        ...call1,
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_usd: '0.000200',
        latency_ms: 5,
        user_id: 'bob',
      }),
      event(`${prefix}-l4`, 'tool_call', at(3), {
        ...base,
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        tool: 'search',
        latency_ms: 3,
      }),
    ]);
    const stored: Array<{ user_id: string | null; n: string }> = await s.db.query(
      `SELECT user_id, count(*)::text AS n FROM llm_calls WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`,
      [tenant],
    );
    expect(stored).toEqual([
      { user_id: 'alice', n: '1' },
      { user_id: 'bob', n: '1' },
    ]);
    const usage: Array<{ user_id: string; kind: string; calls: string; cost: string }> = await s.db.query(
      `SELECT user_id, kind, sum(call_count)::text AS calls, sum(cost_micros)::text AS cost
         FROM usage_daily WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
      [tenant],
    );
    expect(usage).toEqual([
      { user_id: '', kind: 'tool', calls: '1', cost: '0' },
      { user_id: 'alice', kind: 'llm', calls: '1', cost: '100' },
      { user_id: 'bob', kind: 'llm', calls: '1', cost: '200' },
    ]);

    // A run_started arriving after its calls: the calls and their usage move to its user.
    const late = { ...base, run_id: `${prefix}-late-run` };
    const lateCall = { ...call1, run_id: late.run_id, prompt_tokens: 1, completion_tokens: 1, latency_ms: 40 };
    await ingestAll(s.ingest, [
      event(`${prefix}-m1`, 'llm_call', at(10), { ...lateCall, cost_usd: '0.000300' }),
      event(`${prefix}-m2`, 'llm_call', at(11), { ...lateCall, cost_usd: '0.000400', user_id: 'bob' }),
    ]);
    await ingestAll(s.ingest, [event(`${prefix}-m3`, 'run_started', at(5), { ...late, user_id: 'carol' })]);
    const lateRows: Array<{ user_id: string | null; cost: string }> = await s.db.query(
      `SELECT user_id, cost_micros::text AS cost FROM llm_calls WHERE run_id = $1 ORDER BY user_id`,
      [late.run_id],
    );
    expect(lateRows).toEqual([
      { user_id: 'bob', cost: '400' },
      { user_id: 'carol', cost: '300' },
    ]);
    const recomputed: Array<{ user_id: string; calls: string; cost: string; buckets: string[] }> = await s.db.query(
      `SELECT user_id, sum(call_count)::text AS calls, sum(cost_micros)::text AS cost,
              bigint_array_sum(latency_buckets)::text[] AS buckets
         FROM usage_daily WHERE tenant_id = $1 AND kind = 'llm' GROUP BY 1 ORDER BY 1`,
      [tenant],
    );
    const bucket50 = (n: number) => ['0', '0', String(n), ...new Array<string>(10).fill('0')]; // 40 ms: <= 50
    const bucket10 = (n: number) => [String(n), ...new Array<string>(12).fill('0')]; // 5 ms: <= 10
    expect(recomputed).toEqual([
      { user_id: 'alice', calls: '1', cost: '100', buckets: bucket10(1) },
      {
        user_id: 'bob',
        calls: '2',
        cost: '600',
        buckets: bucket10(1).map((v, i) => String(Number(v) + Number(bucket50(1)[i]))),
      },
      { user_id: 'carol', calls: '1', cost: '300', buckets: bucket50(1) },
    ]); // no row of the empty user is left behind
  });

  it("adds up a run's cost: the stages' costs plus its external charges make its total", async () => {
    let withCharges = 0;
    for (const run of s.workload.truth.runs) {
      const body = await get(`/runs/${run.run_id}/metrics`, await token(run.tenant_id, ['op']));
      const stages = body.stages.reduce((sum: bigint, st: { cost_usd: string }) => sum + parseUsd(st.cost_usd), 0n);
      const external = s.events
        .filter((e) => e.type === 'external_charge' && (e.data as unknown as { run_id: string }).run_id === run.run_id)
        .reduce((sum, e) => sum + parseUsd((e.data as unknown as { amount_usd: string }).amount_usd), 0n);
      if (external > 0n) withCharges += 1;
      expect({ run: run.run_id, parts: body.cost_breakdown_usd }).toEqual({
        run: run.run_id,
        parts: {
          stages_usd: formatUsd(stages),
          external_usd: formatUsd(external),
          total_usd: formatUsd(stages + external),
        },
      });
      expect(body.totals.cost_usd).toBe(formatUsd(stages + external));
    }
    expect(withCharges).toBeGreaterThan(0); // the property is tested where the parts differ
    // Support sees no money: the whole breakdown is hidden.
    const run = s.workload.truth.runs[0]!;
    const support = await get(`/runs/${run.run_id}/metrics`, await token(run.tenant_id, ['support']));
    expect(support.cost_breakdown_usd).toBeUndefined();
  });

  it('keeps phase target times per tenant (Owner/Admin, audited) and reports the share advancing within them', async () => {
    const tenant1 = `${prefix}-tenant-1`;
    const tenant2 = `${prefix}-tenant-2`;
    const truth = phaseTruth(
      s.events.filter((e) => (e.data as unknown as { tenant_id: string }).tenant_id === tenant1),
    );
    const phases = [...truth.entries()].filter(([, t]) => t.ttg.length > 1).slice(0, 2);
    expect(phases.length).toBe(2);
    // A target between the fastest and the slowest pass, so that both sides of it are counted.
    const targets = Object.fromEntries(
      phases.map(([phase, t]) => [phase, [...t.ttg].sort((a, b) => a - b)[Math.floor(t.ttg.length / 2) - 1]!]),
    );
    const owner = await token(tenant1, ['owner'], 'owner-of-1');
    const put = (bearer: string, tenant = tenant1) =>
      call(q.url, bearer, `/tenants/${tenant}/phase-targets`, { method: 'PUT', body: { targets, reason: 'SLO' } });
    expect((await put(await token(tenant1, ['op']))).status).toBe(403);
    expect((await put(await token(tenant2, ['owner']))).status).toBe(404);
    const saved = await put(owner);
    expect(saved.status).toBe(200);
    expect(saved.json.targets.map((t: { phase: string; target_ms: number }) => [t.phase, t.target_ms])).toEqual(
      Object.entries(targets).sort(),
    );
    const read = await get(`/tenants/${tenant1}/phase-targets`, await token(tenant1, ['bu']));
    expect(read.targets).toEqual(saved.json.targets);
    const audit = await get(`/audit?action=tenant.phase_targets&tenant_id=${tenant1}`);
    expect(audit.items).toEqual([
      expect.objectContaining({ actor: 'owner-of-1', outcome: 'succeeded', params: { targets }, reason: 'SLO' }),
    ]);

    const metrics = await get(`/api/v1/analytics/metrics?period=30d`, owner);
    let advanced = 0;
    let within = 0;
    for (const [phase, t] of truth) {
      const row = metrics.phases.find((p: { phase: string }) => p.phase === phase);
      const target = targets[phase];
      const inTime = target === undefined ? 0 : t.ttg.filter((v) => v <= target).length;
      const passed = target === undefined ? 0 : t.ttg.length;
      advanced += passed;
      within += inTime;
      expect({ phase, target_ms: row.target_ms, within_target: row.within_target }).toEqual({
        phase,
        target_ms: target ?? null,
        within_target: {
          advanced: passed,
          within: inTime,
          rate: passed === 0 ? null : Math.round((inTime / passed) * 10_000) / 10_000,
        },
      });
    }
    expect(within).toBeGreaterThan(0);
    expect(within).toBeLessThan(advanced);
    expect(metrics.phases_within_target).toEqual({
      advanced,
      within,
      rate: Math.round((within / advanced) * 10_000) / 10_000,
    });
  });

  it('takes alert feedback (audited, one verdict per user) and reports precision per rule', async () => {
    const tenant1 = `${prefix}-tenant-1`;
    const tenant2 = `${prefix}-tenant-2`;
    const alerts = [
      ['owner.cap_warning', 'run-a'],
      ['owner.cap_warning', 'run-b'],
      ['owner.cap_warning', 'run-c'],
      ['owner.run_failed', 'run-a'],
    ];
    for (const [rule, scope] of alerts) {
      await s.db.query(
        `INSERT INTO alerts (alert_key, rule, tenant_id, scope, period, audience, severity, status, title, body,
                             threshold_fp, fired_at, last_observed_at)
         VALUES ($1, $2, $3, $4, 'once', 'owner', 'warning', 'firing', 't', 'b', 'fp', now(), now())`,
        [[rule, tenant1, scope, 'once'].join('\u001f'), rule, tenant1, scope],
      );
    }
    const owner = await token(tenant1, ['owner'], 'owner-1');
    const op = await token(tenant1, ['op'], 'op-1');
    const rate = (bearer: string, rule: string, scope: string, useful: boolean) =>
      call(q.url, bearer, '/alerts/feedback', { method: 'POST', body: { rule, scope, period: 'once', useful } });
    expect((await rate(owner, 'owner.cap_warning', 'run-a', false)).status).toBe(201);
    expect((await rate(owner, 'owner.cap_warning', 'run-a', true)).status).toBe(201); // replaces the first
    expect((await rate(op, 'owner.cap_warning', 'run-a', true)).status).toBe(201);
    expect((await rate(owner, 'owner.cap_warning', 'run-b', false)).status).toBe(201);
    expect((await rate(owner, 'owner.run_failed', 'run-a', true)).status).toBe(201);
    // Unknown alert, another tenant's alert, a role that cannot rate.
    expect((await rate(owner, 'owner.cap_warning', 'run-z', true)).status).toBe(404);
    expect((await rate(await token(tenant2, ['owner']), 'owner.cap_warning', 'run-a', true)).status).toBe(404);
    expect((await rate(await token(tenant1, ['bu']), 'owner.cap_warning', 'run-a', true)).status).toBe(403);

    const stored: Array<{ user_id: string; useful: boolean }> = await s.db.query(
      `SELECT user_id, useful FROM alert_feedback WHERE tenant_id = $1 AND alert_key = $2 ORDER BY user_id`,
      [tenant1, ['owner.cap_warning', tenant1, 'run-a', 'once'].join('\u001f')],
    );
    expect(stored).toEqual([
      { user_id: 'op-1', useful: true },
      { user_id: 'owner-1', useful: true },
    ]);
    const audit = await get(`/audit?action=alert.feedback&tenant_id=${tenant1}`);
    expect(audit.items.map((a: { outcome: string }) => a.outcome).sort()).toEqual([
      'failed',
      ...new Array<string>(5).fill('succeeded'),
    ]);

    const precision = await get(`/api/v1/analytics/alert-precision?period=30d`, await token(tenant1, ['finance']));
    expect(precision.rules).toEqual([
      { rule: 'owner.cap_warning', fired: 3, rated: 2, useful: 1, not_useful: 1, precision: 0.5 },
      { rule: 'owner.run_failed', fired: 1, rated: 1, useful: 1, not_useful: 0, precision: 1 },
    ]);
    expect(precision.totals).toEqual({ fired: 4, rated: 3, useful: 2, not_useful: 1, precision: 0.6667 });
    const other = await get(`/api/v1/analytics/alert-precision?period=30d`, await token(tenant2, ['owner']));
    expect(other.rules).toEqual([]);
  });

  it.each([
    ['llm', 'model', 'llm_calls', 'model'],
    ['llm', 'agent', 'llm_calls', 'role'],
    ['tool', 'tool', 'tool_calls', 'tool'],
  ])(
    'reports %s latency percentiles per %s within 2 %% of the exact values of the raw rows',
    async (kind, dimension, table, column) => {
      const body = await get(`/api/v1/analytics/usage?period=30d&group_by=${dimension}&kind=${kind}`);
      const raw: Array<{ key: string; latencies: number[] }> = await s.db.query(
        `SELECT ${column} AS key, array_agg(latency_ms ORDER BY latency_ms) AS latencies FROM ${table} GROUP BY 1`,
      );
      expect(body.rows.length).toBe(raw.length);
      let compared = 0;
      for (const { key, latencies } of raw) {
        const row = body.rows.find((r: { key: string }) => r.key === key);
        expect(row.latency_percentiles).toBe('sketch');
        for (const [field, q] of [
          ['p50_latency_ms', 0.5],
          ['p95_latency_ms', 0.95],
          ['p99_latency_ms', 0.99],
        ] as const) {
          // The rank docs/query.md gives: latencies sorted ascending, index ⌊q × (n − 1)⌋.
          const exact = latencies[Math.floor(q * (latencies.length - 1))]!;
          const error = exact === 0 ? row[field] : Math.abs(row[field] - exact) / exact;
          expect({ key, field, exact, error: error <= 0.02 }).toEqual({ key, field, exact, error: true });
          compared += 1;
        }
      }
      expect(compared).toBeGreaterThanOrEqual(6);
    },
  );

  it('reads 13 months: period=365d and from/to over daily and monthly rollups (after retention folds old days)', async () => {
    const tenant = `${prefix}-old`;
    const base = { tenant_id: tenant, project_id: `${prefix}-old-p`, run_id: `${prefix}-old-run` };
    const llm = { ...base, phase: 'plan', role: 'planner', attempt: 1, model: 'gpt-4.1', provider: 'openai' };
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    const dayAgo = (days: number) => new Date(today - days * 86_400_000 + 3_600_000).toISOString();
    const ages = [200, 120, 5];
    await ingestAll(
      s.ingest,
      ages.map((days, i) =>
        event(`${prefix}-o${i}`, 'llm_call', dayAgo(days), {
          ...llm,
          prompt_tokens: 10,
          completion_tokens: 10,
          cost_usd: `0.00${i + 1}000`,
          latency_ms: 7,
        }),
      ),
    );
    // Retention folds days older than 90 into usage_monthly (as RETENTION_DAILY_USAGE_DAYS does).
    const cutoff = new Date(today - 90 * 86_400_000).toISOString().slice(0, 10);
    await new RetentionRepository(s.db).foldUsageBefore(cutoff);
    const monthly: Array<{ n: string }> = await s.db.query(
      `SELECT count(*)::text AS n FROM usage_monthly WHERE tenant_id = $1`,
      [tenant],
    );
    expect(monthly[0]!.n).toBe('2');

    const cost = async (range: string) => {
      const body = await get(`/api/v1/analytics/costs?${range}&group_by=tenant&tenant_id=${tenant}`);
      return body.totals.llm_cost_usd as string;
    };
    expect(await cost('period=365d')).toBe('0.006000');
    expect(await cost('period=30d')).toBe('0.003000');
    const day = (days: number) => dayAgo(days).slice(0, 10);
    expect(await cost(`from=${day(396)}&to=${day(0)}`)).toBe('0.006000');
    expect(await cost(`from=${day(130)}&to=${day(100)}`)).toBe('0.002000'); // the 120-day-old month
    const usage = await get(`/api/v1/analytics/usage?period=365d&group_by=tenant&tenant_id=${tenant}`);
    expect(usage.totals).toMatchObject({ calls: 3, cost_usd: '0.006000' });
    const metrics = await call(q.url, admin, `/api/v1/analytics/metrics?period=365d&tenant_id=${tenant}`);
    expect(metrics.status).toBe(200);

    for (const bad of [
      'period=398d',
      `from=${day(400)}&to=${day(0)}`,
      `from=${day(1)}&to=${day(2)}`,
      `period=30d&to=${day(0)}`,
    ]) {
      const answer = await call(q.url, admin, `/api/v1/analytics/costs?${bad}`);
      expect({ bad, status: answer.status }).toEqual({ bad, status: 400 });
    }
  });
});

function sortRows(rows: unknown[][]): unknown[][] {
  return [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}
