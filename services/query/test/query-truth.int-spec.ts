import { randomBytes } from 'node:crypto';
import { formatUsd, parseUsd, utcDay } from '@agentmeter/domain';
import { eventually } from '@agentmeter/testing';
import { call, ingestAll, parseCsv, seed, startQuery, token, type RunningQuery, type Seeded } from './query.fixture';
import { data, groupOf, isDay, phaseTruth, sumBy, todayOf } from './query.truth';

/**
 * Every number the query API answers equals a total computed independently from the stored events (the
 * workload's ground truth and query.truth.ts), for runs, timelines, cost and usage analytics, the phase
 * metrics and the three overviews; CSV answers carry the same rows as JSON; the run stream pushes changes.
 */
describe('query API numbers against the ground truth', () => {
  const prefix = `qt${randomBytes(2).toString('hex')}`;
  let s: Seeded;
  let q: RunningQuery;
  let admin: string;
  const tenant1 = `${prefix}-tenant-1`;

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

  it('serves every run exactly as its ground truth (metrics), newest-first pages covering each run once', async () => {
    for (const run of s.workload.truth.runs) {
      const body = await get(`/runs/${run.run_id}/metrics`, await token(run.tenant_id, ['op']));
      expect({ run: run.run_id, status: body.status, totals: body.totals }).toEqual({
        run: run.run_id,
        status: run.status,
        totals: run.totals,
      });
      expect(body.stages).toEqual(run.stages.map((stage) => expect.objectContaining(stage)));
      expect(body.mcp_cache === null).toBe(run.mcp_cache === null);
      if (run.mcp_cache) expect(body.mcp_cache.tree).toMatchObject(run.mcp_cache.tree);
    }

    const seen: Array<{ run_id: string; cost_usd: string; first_event_at: string }> = [];
    let cursor: string | null = null;
    do {
      const page: { items: typeof seen; next_cursor: string | null } = await get(
        `/runs?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    const expected = [...s.workload.truth.runs.map((r) => [r.run_id, r.totals.cost_usd]), [s.cappedRunId, '0.090000']];
    expect(seen.map((r) => [r.run_id, r.cost_usd]).sort()).toEqual(expected.sort());
    const times = seen.map((r) => r.first_event_at);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it('filters runs by project, status, phase and model', async () => {
    const run = s.workload.truth.runs.find((r) => r.status === 'failed')!;
    const byProject = await get(`/runs?project_id=${run.project_id}&status=failed&limit=500`);
    const expected = s.workload.truth.runs.filter((r) => r.project_id === run.project_id && r.status === 'failed');
    expect(byProject.items.map((r: { run_id: string }) => r.run_id).sort()).toEqual(
      expected.map((r) => r.run_id).sort(),
    );
    const byModel = await get(`/runs?model=gpt-4.1&phase=plan&limit=500`);
    for (const item of byModel.items) expect(item).toMatchObject({ model: 'gpt-4.1', phase: 'plan' });
  });

  it("lists a run's timeline: every event once, in event-time order, across pages", async () => {
    const run = s.workload.truth.runs[0]!;
    const items: Array<{ id: string; time: string }> = [];
    let cursor: string | null = null;
    do {
      const page: { items: typeof items; next_cursor: string | null } = await get(
        `/runs/${run.run_id}/events?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
      );
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    const expected = s.events.filter((e) => (data(e).run_id as string) === run.run_id);
    expect(items.map((e) => e.id).sort()).toEqual(expected.map((e) => e.id).sort());
    expect(items.map((e) => e.time)).toEqual([...items.map((e) => e.time)].sort());
    const llm = await get(`/runs/${run.run_id}/events?types=llm_call&limit=500`);
    expect(llm.items.length).toBe(expected.filter((e) => e.type === 'llm_call').length);
  });

  it.each(['model', 'tenant', 'project', 'agent', 'phase', 'user', 'mcp_server'])(
    'attributes costs by %s exactly, and every grouping adds up to the same total',
    async (dimension) => {
      const body = await get(`/api/v1/analytics/costs?period=30d&group_by=${dimension}`);
      const truth = sumBy(s.events, groupOf(dimension, s.events));
      const rows = body.rows.map(
        (r: {
          tenant_id: string | null;
          key: string | null;
          llm_cost_usd: string;
          external_cost_usd: string;
          calls: number;
        }) => [
          dimension === 'project' ? `${r.tenant_id}/${r.key}` : r.key,
          r.llm_cost_usd,
          r.external_cost_usd,
          r.calls,
        ],
      );
      const expected = [...truth.entries()].map(([key, v]) => [key, formatUsd(v.llm), formatUsd(v.ext), v.calls]);
      expect(sortRows(rows)).toEqual(sortRows(expected));
      const all = sumBy(s.events, () => 'all').get('all')!;
      expect(body.totals).toMatchObject({
        cost_usd: formatUsd(all.llm + all.ext),
        calls: all.calls,
        input_tokens: all.input,
      });
    },
  );

  it('splits costs per day with interval=day', async () => {
    const body = await get(`/api/v1/analytics/costs?period=7d&group_by=tenant&interval=day`);
    const truth = sumBy(s.events, (e) => `${utcDay(e.time)}|${String(data(e).tenant_id)}`);
    const rows = body.rows.map((r: { bucket: string; key: string; cost_usd: string }) => [
      `${r.bucket}|${r.key}`,
      r.cost_usd,
    ]);
    expect(sortRows(rows)).toEqual(sortRows([...truth.entries()].map(([k, v]) => [k, formatUsd(v.llm + v.ext)])));
  });

  it('answers usage rollups per model and per MCP server', async () => {
    const llm = await get(`/api/v1/analytics/usage?period=30d&group_by=model&kind=llm`);
    const calls = new Map<string, number>();
    for (const e of s.events)
      if (e.type === 'llm_call') calls.set(String(data(e).model), (calls.get(String(data(e).model)) ?? 0) + 1);
    expect(sortRows(llm.rows.map((r: { key: string; calls: number }) => [r.key, r.calls]))).toEqual(
      sortRows([...calls.entries()]),
    );
    const tools = await get(`/api/v1/analytics/usage?period=30d&group_by=mcp_server&kind=tool`);
    const toolCalls = s.events.filter((e) => e.type === 'tool_call').length;
    expect(tools.rows).toEqual([expect.objectContaining({ key: 'github', calls: toolCalls, failures: 0 })]);
    expect(tools.totals.p95_latency_ms).toEqual(expect.any(Number));
  });

  it('computes the phase metrics', async () => {
    const body = await get(`/api/v1/analytics/metrics?period=30d`);
    const truth = phaseTruth(s.events);
    for (const [phase, t] of truth) {
      const row = body.phases.find((p: { phase: string }) => p.phase === phase);
      const sorted = [...t.ttg].sort((a, b) => a - b);
      expect({ phase, ...row }).toMatchObject({
        phase,
        runs: t.pairs,
        retries: t.retries,
        success_rate: round4(t.passedPairs / t.finishedPairs),
        validation_failure_rate: round4(t.failedAttempts / t.finishedAttempts),
        time_to_gate_ms: {
          avg: Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
          p50: sorted[Math.ceil(0.5 * sorted.length) - 1],
        },
      });
    }
    const runs = s.workload.truth.runs;
    const total = runs.length + 1;
    const all = sumBy(s.events, () => 'all').get('all')!;
    const passed = [...truth.values()].reduce((sum, t) => sum + t.passedPairs, 0);
    const half = (n: bigint, k: number) => (n * 2n + BigInt(k)) / (2n * BigInt(k));
    expect(body).toMatchObject({
      runs: {
        total,
        succeeded: runs.filter((r) => r.status === 'succeeded').length,
        failed: runs.filter((r) => r.status === 'failed').length,
        running: runs.filter((r) => r.status === 'running').length + 1,
        human_intervention_rate: round4(1 / total),
        cost_per_run_usd: formatUsd(half(all.llm + all.ext, total)),
      },
      cost_per_successful_advance_usd: formatUsd(half(all.llm + all.ext, passed)),
      cap_interventions: 1,
      proof_completion_rate: 0.5,
      queue_latency: { tasks: 2, avg_ms: 60_000, p95_ms: 90_000 },
    });
    const failedRuns = runs.filter((r) => r.status === 'failed');
    expect(body.mttr.failed_runs).toBe(failedRuns.length);
    const daily = sumBy(s.events, (e) => `${utcDay(e.time)}|${String(data(e).tenant_id)}`);
    expect(
      sortRows(
        body.daily_cost.map((r: { day: string; tenant_id: string; cost_usd: string }) => [
          `${r.day}|${r.tenant_id}`,
          r.cost_usd,
        ]),
      ),
    ).toEqual(sortRows([...daily.entries()].map(([k, v]) => [k, formatUsd(v.llm + v.ext)])));
  });

  it("shows the Admin Overview: today's spend, last failures, stuck projects, caps approaching, trends", async () => {
    const body = await get('/admin/overview');
    const today = todayOf(new Date());
    const byModel = sumBy(s.events, groupOf('model'), (e) => isDay(today)(e) && e.type === 'llm_call');
    expect(
      sortRows(body.spend_today.by_model.map((r: { model: string; cost_usd: string }) => [r.model, r.cost_usd])),
    ).toEqual(sortRows([...byModel.entries()].map(([k, v]) => [k, formatUsd(v.llm)])));
    const byTenant = sumBy(s.events, groupOf('tenant'), isDay(today));
    expect(
      sortRows(
        body.spend_today.by_tenant.map((r: { tenant_id: string; cost_usd: string }) => [r.tenant_id, r.cost_usd]),
      ),
    ).toEqual(sortRows([...byTenant.entries()].map(([k, v]) => [k, formatUsd(v.llm + v.ext)])));

    const failures = s.events.filter((e) => e.type === 'validation_failed' || e.type === 'run_failed');
    expect(body.last_failures).toHaveLength(Math.min(10, failures.length));
    const lastSeen = body.last_failures.map((f: { last_seen: string }) => f.last_seen);
    expect([...lastSeen].sort().reverse()).toEqual(lastSeen);
    for (const f of body.last_failures) {
      expect(f).toMatchObject({ phase: expect.any(String), role: expect.any(String), why_blocked: expect.any(String) });
      if (f.artifact_ref) expect(f.artifact_url).toContain('https://artifacts.example.test/');
    }
    expect(body.last_failures.some((f: { artifact_ref: string | null }) => f.artifact_ref)).toBe(true);

    const running = [
      ...s.workload.truth.runs.filter((r) => r.status === 'running'),
      { tenant_id: tenant1, project_id: `${prefix}-t1-project-1`, run_id: s.cappedRunId },
    ];
    const projects = new Map<string, number>();
    for (const r of running)
      projects.set(`${r.tenant_id}/${r.project_id}`, (projects.get(`${r.tenant_id}/${r.project_id}`) ?? 0) + 1);
    expect(
      sortRows(
        body.stuck_projects.map((p: { tenant_id: string; project_id: string; running_runs: number }) => [
          `${p.tenant_id}/${p.project_id}`,
          p.running_runs,
        ]),
      ),
    ).toEqual(sortRows([...projects.entries()].slice(0, 10)));

    expect(body.caps_approaching).toEqual([
      expect.objectContaining({
        scope: 'run',
        run_id: s.cappedRunId,
        cap: 'cost',
        used: '0.090000',
        limit: '0.100000',
        ratio: 0.9,
      }),
    ]);

    const all = sumBy(s.events, () => 'all').get('all')!;
    expect(body.trends.days).toHaveLength(30);
    expect(body.trends.last_30_days).toEqual({
      days: 30,
      total_tokens: all.input + all.output,
      cost_usd: formatUsd(all.llm + all.ext),
    });
    const week = body.trends.days
      .slice(-7)
      .reduce((sum: bigint, d: { cost_usd: string }) => sum + parseUsd(d.cost_usd), 0n);
    expect(body.trends.last_7_days.cost_usd).toBe(formatUsd(week));
  });

  it('filters the Admin Overview by tenant, model and phase', async () => {
    const body = await get(`/admin/overview?tenant_id=${tenant1}&model=gpt-4.1&phase=validate`);
    const today = todayOf(new Date());
    const truth = sumBy(
      s.events,
      groupOf('tenant'),
      (e) => isDay(today)(e) && e.type === 'llm_call' && data(e).model === 'gpt-4.1' && data(e).tenant_id === tenant1,
    );
    expect(
      body.spend_today.by_tenant.map((r: { tenant_id: string; cost_usd: string }) => [r.tenant_id, r.cost_usd]),
    ).toEqual([...truth.entries()].map(([k, v]) => [k, formatUsd(v.llm)]));
    for (const f of body.last_failures) expect(f).toMatchObject({ tenant_id: tenant1, phase: 'validate' });
    expect(body.notes.length).toBeGreaterThan(0);
  });

  it('shows the Tenant Overview and the Project Overview', async () => {
    const owner = await token(tenant1, ['owner']);
    const body = await get(`/tenants/${tenant1}/overview`, owner);
    const ships = s.events.filter((e) => e.type === 'publish_done' && data(e).tenant_id === tenant1);
    expect(body.recent_ships).toHaveLength(Math.min(10, ships.length));
    const month = sumBy(
      s.events,
      () => 'x',
      (e) => data(e).tenant_id === tenant1,
    ).get('x')!;
    expect(body.costs.last_30_days_usd).toBe(formatUsd(month.llm + month.ext));
    expect(body.proofs).toEqual({ due: 2, completed: 1, passed: 1, completion_rate: 0.5 });
    const [{ time_zone }] = await s.db.query('SELECT time_zone FROM tenants WHERE tenant_id = $1', [tenant1]);
    expect(body.time_zone).toBe(time_zone);
    expect(body.time_to_gate.map((p: { phase: string }) => p.phase)).toEqual(expect.arrayContaining(['plan']));

    const project = await get(`/projects/${prefix}-t1-project-1/overview`, owner);
    expect(project.time_zone).toBe(time_zone);
    const runsOfProject = s.workload.truth.runs.filter((r) => r.project_id === `${prefix}-t1-project-1`).length + 1;
    expect(project.recent_runs).toHaveLength(runsOfProject);
    expect(project.latest_run.run_id).toBe(project.recent_runs[0].run_id);
    const writes = s.events.filter(
      (e) => e.type === 'artifact_written' && data(e).project_id === `${prefix}-t1-project-1`,
    ).length;
    expect(project.artifact_heatmap.reduce((n: number, c: { writes: number }) => n + c.writes, 0)).toBe(writes);
    expect(project.next_action.action).toEqual(expect.any(String));
  });

  it('exports every list and analytics answer as CSV with the same rows as JSON', async () => {
    const cases: Array<[string, string]> = [
      ['/runs?limit=500', 'items'],
      [`/runs/${s.workload.truth.runs[0]!.run_id}/events?limit=500`, 'items'],
      ['/api/v1/analytics/costs?group_by=model', 'rows'],
      ['/api/v1/analytics/usage?group_by=agent', 'rows'],
      ['/audit', 'items'],
    ];
    for (const [path, key] of cases) {
      const json = await get(path);
      const csv = await call(q.url, admin, `${path}${path.includes('?') ? '&' : '?'}format=csv`);
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
      const rows = parseCsv(csv.text);
      expect(rows).toHaveLength(json[key].length);
      const blank = Object.fromEntries(Object.keys(rows[0] ?? {}).map((column) => [column, '']));
      json[key].forEach((item: Record<string, unknown>, i: number) =>
        expect(rows[i]).toEqual({ ...blank, ...asCsv(item) }),
      );
    }
    for (const path of ['/admin/overview', `/tenants/${tenant1}/overview`, '/api/v1/analytics/metrics']) {
      const json = await get(path);
      const csv = await call(q.url, admin, path, { headers: { accept: 'text/csv' } });
      expect(csv.status).toBe(200);
      const rows = parseCsv(csv.text);
      for (const row of rows.filter(
        (r) => r.section === 'spend_today' || r.section === 'costs' || r.section === 'runs',
      )) {
        const value = (row.field ?? '')
          .split('.')
          .reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], json[row.section!]);
        expect(value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value ?? '')).toBe(
          row.value,
        );
      }
      expect(rows.length).toBeGreaterThan(0);
    }
  });

  it('hides raw tokens from Owners when the tenant says so, and from nobody else', async () => {
    const run = s.workload.truth.runs.find((r) => r.tenant_id === tenant1 && r.status === 'succeeded')!;
    const owner = await token(tenant1, ['owner']);
    const patched = await call(q.url, admin, `/tenants/${tenant1}/settings`, {
      method: 'PATCH',
      body: { owner_sees_tokens: false, reason: 'owners see $ and time' },
    });
    expect(patched.status).toBe(200);
    await eventually(
      async () => {
        const body = await get(`/runs/${run.run_id}/metrics`, owner);
        expect(body.totals).toEqual({ cost_usd: run.totals.cost_usd, llm_calls: run.totals.llm_calls });
      },
      20_000,
      200,
    );
    const costs = await get('/api/v1/analytics/costs?group_by=model', owner);
    expect(JSON.stringify(costs)).not.toMatch(/_tokens/);
    const asOp = await get(`/runs/${run.run_id}/metrics`, await token(tenant1, ['op']));
    expect(asOp.totals).toEqual(run.totals);
    const asOwnerAndBu = await get(`/runs/${run.run_id}/metrics`, await token(tenant1, ['owner', 'bu']));
    expect(asOwnerAndBu.totals).toEqual(run.totals);
    await call(q.url, admin, `/tenants/${tenant1}/settings`, {
      method: 'PATCH',
      body: { owner_sees_tokens: true, reason: 'back' },
    });
  });

  it("lists tenants near their daily cap from cost-cap's caps, raises included", async () => {
    const tenant2 = `${prefix}-tenant-2`;
    const today = todayOf(new Date());
    await s.db.query(
      `INSERT INTO caps (tenant_id, date, daily_cap_micros, spent_micros) VALUES ($1, $3, 10000000, 8500000),
              ($2, $3, 10000000, 1000000)`,
      [tenant2, tenant1, today],
    );
    const body = await get('/admin/overview');
    expect(body.caps_approaching).toEqual(
      expect.arrayContaining([
        {
          scope: 'tenant',
          tenant_id: tenant2,
          project_id: null,
          run_id: null,
          cap: 'daily_cost',
          used: '8.500000',
          limit: '10.000000',
          ratio: 0.85,
        },
      ]),
    );
    expect(body.caps_approaching.filter((c: { scope: string }) => c.scope === 'tenant')).toHaveLength(1);
    await s.db.query(
      `INSERT INTO cap_overrides (override_id, tenant_id, target, value, actor, reason, created_at, expires_at)
       VALUES (gen_random_uuid(), $1, 'tenant_daily_cost', 20000000, 'admin', 'launch', now(), now() + interval '72 hours')`,
      [tenant2],
    );
    const raised = await get('/admin/overview');
    expect(raised.caps_approaching.filter((c: { scope: string }) => c.scope === 'tenant')).toEqual([]);
  });

  it("answers a tenant's caps in force: remaining daily budget, policy, pause and raises", async () => {
    const tenant2 = `${prefix}-tenant-2`;
    const today = todayOf(new Date());
    await s.db.query(
      `INSERT INTO caps (tenant_id, date, daily_cap_micros, spent_micros, blocked) VALUES ($1, $2, 10000000, 12500000, true)
       ON CONFLICT (tenant_id, date) DO UPDATE SET daily_cap_micros = 10000000, spent_micros = 12500000, blocked = true`,
      [tenant1, today],
    );
    await s.db.query(
      `INSERT INTO cap_policies (tenant_id, project_id, daily_cap_micros, run_max_tokens, run_max_cost_micros, updated_by)
       VALUES ($1, '', 10000000, 50000, 2500000, 'admin')`,
      [tenant1],
    );
    await s.db.query(
      `INSERT INTO tenant_pauses (tenant_id, paused_at, paused_by, reason) VALUES ($1, now(), 'admin', 'budget review')`,
      [tenant1],
    );
    await s.db.query(
      `INSERT INTO cap_overrides (override_id, tenant_id, target, run_id, value, actor, reason, created_at, expires_at)
       VALUES (gen_random_uuid(), $1, 'run_tokens', $2, 90000, 'admin', 'long run', now(), now() + interval '72 hours'),
              (gen_random_uuid(), $1, 'run_cost', NULL, 1, 'admin', 'expired', now() - interval '4 days', now() - interval '1 day')`,
      [tenant1, s.cappedRunId],
    );
    const body = await get(`/tenants/${tenant1}/caps`);
    expect(body).toEqual({
      tenant_id: tenant1,
      available: true,
      paused: { paused_at: expect.any(String), paused_by: 'admin', reason: 'budget review' },
      daily_cost: {
        date: today,
        limit_usd: '10.000000',
        spent_usd: '12.500000',
        remaining_usd: '0.000000',
        ratio: 1.25,
        blocked: true,
      },
      policy: {
        daily_cost_usd: '10.000000',
        run_max_tokens: 50000,
        run_max_wall_time_s: null,
        run_max_cost_usd: '2.500000',
        run_max_external_usd: null,
      },
      raises: [
        {
          cap: 'run_tokens',
          run_id: s.cappedRunId,
          limit: '90000',
          actor: 'admin',
          reason: 'long run',
          created_at: expect.any(String),
          expires_at: expect.any(String),
        },
      ],
    });
    await s.db.query(
      `INSERT INTO caps (tenant_id, date, daily_cap_micros, spent_micros) VALUES ($1, $2, 10000000, 8500000)
       ON CONFLICT (tenant_id, date) DO UPDATE SET daily_cap_micros = 10000000, spent_micros = 8500000, blocked = false`,
      [tenant2, today],
    );
    await s.db.query(
      `INSERT INTO cap_overrides (override_id, tenant_id, target, value, actor, reason, created_at, expires_at)
       VALUES (gen_random_uuid(), $1, 'tenant_daily_cost', 20000000, 'admin', 'launch', now(), now() + interval '72 hours')`,
      [tenant2],
    );
    const raised = await get(`/tenants/${tenant2}/caps`, await token(tenant2, ['owner']));
    expect(raised.daily_cost).toEqual({
      date: today,
      limit_usd: '20.000000',
      spent_usd: '8.500000',
      remaining_usd: '11.500000',
      ratio: 0.425,
      blocked: false,
    });
    expect(raised.paused).toBeNull();
    expect((await call(q.url, await token(tenant2, ['owner']), `/tenants/${tenant1}/caps`)).status).toBe(404);
    await s.db.query(`DELETE FROM tenant_pauses WHERE tenant_id = $1`, [tenant1]);
  });

  it('streams a running run until it finishes, with no polling by the client', async () => {
    const run = s.workload.truth.runs.find((r) => r.status === 'running')!;
    const controller = new AbortController();
    const response = await fetch(`${q.url}/runs/${run.run_id}/stream`, {
      headers: { authorization: `Bearer ${await token(run.tenant_id, ['bu'])}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = response.body!.getReader();
    let text = '';
    const read = async (until: RegExp) => {
      while (!until.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await read(/event: metrics\n(id: .*\n)?data: .*"status":"running"/);
    const finishedAt = new Date().toISOString();
    await ingestAll(s.ingest, [
      {
        specversion: '1.0',
        id: `${run.run_id}-finish`,
        source: `query-test/${prefix}`,
        type: 'run_finished',
        time: finishedAt,
        subject: run.tenant_id,
        data: { tenant_id: run.tenant_id, project_id: run.project_id, run_id: run.run_id },
      },
    ]);
    await read(/event: end/);
    controller.abort();
    expect(text).toMatch(/"status":"succeeded"/);
    expect(text).not.toMatch(/trace_id|grafana|tempo/);
  });
});

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function sortRows(rows: unknown[][]): unknown[][] {
  return [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

/** How a JSON item appears in the CSV: flattened with dotted keys, arrays as JSON, null as ''. */
function asCsv(item: Record<string, unknown>, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [key, value] of Object.entries(item)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      asCsv(value as Record<string, unknown>, name, out);
    else
      out[name] =
        value === null || value === undefined ? '' : Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
  return out;
}
