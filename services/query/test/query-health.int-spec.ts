import { randomBytes, randomUUID } from 'node:crypto';
import type { AgentEventInput } from '@agentmeter/contracts';
import { call, ingestAll, parseCsv, seed, startQuery, token, type RunningQuery, type Seeded } from './query.fixture';

type Input = AgentEventInput & { key?: string };

/**
 * Health analytics (docs/query.md "Health analytics"): tool calls by hour of the week, MCP servers per hour with
 * the circuit-breaker openings the breaker rule observes, and tool and webhook delivery error rates per day,
 * each against the events and delivery attempts stored, for one tenant (never another's) and as CSV.
 */
describe('query API: health analytics', () => {
  const prefix = `qh${randomBytes(2).toString('hex')}`;
  let s: Seeded;
  let q: RunningQuery;
  let tenant1: string;
  let tenant2: string;
  const server = `${prefix}-flaky`;
  // A streak of 6 failed calls (the breaker rule's default opens at 5), closed by a success, then 2 failures.
  const statuses = ['ok', 'ok', 'error', 'error', 'error', 'error', 'error', 'error', 'ok', 'error', 'error'] as const;
  let callTimes: Date[];
  const today = () => new Date().toISOString().slice(0, 10);

  beforeAll(async () => {
    s = await seed(prefix);
    q = await startQuery(s.database.url);
    tenant1 = `${prefix}-tenant-1`;
    tenant2 = `${prefix}-tenant-2`;
    const run = s.workload.truth.runs.find((r) => r.tenant_id === tenant1)!;
    // One minute apart, ending 20 minutes ago (inside the 7-day period, whatever the time of day).
    const end = Date.now() - 20 * 60_000;
    callTimes = statuses.map((_, i) => new Date(end - (statuses.length - 1 - i) * 60_000));
    const events: Input[] = statuses.map(
      (status, i) =>
        ({
          specversion: '1.0',
          id: `${prefix}-flaky-${i}`,
          source: `query-health/${prefix}`,
          type: 'tool_call',
          time: callTimes[i]!.toISOString(),
          subject: tenant1,
          data: {
            tenant_id: tenant1,
            project_id: run.project_id,
            run_id: run.run_id,
            phase: 'implement',
            role: 'implementer',
            attempt: 1,
            tool: 'flaky.search',
            mcp_server: server,
            latency_ms: 40,
            status,
          },
        }) as Input,
    );
    await ingestAll(s.ingest, events);
    s.events.push(...events);
    await webhookAttempts(tenant1, ['retry', 'retry', 'sent', 'dead']);
    await webhookAttempts(tenant2, ['retry', 'dead']);
  });

  afterAll(async () => {
    await q?.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  /** Delivery attempts as the alert worker records them: a contact, a group, a delivery and its attempts. */
  async function webhookAttempts(tenantId: string, outcomes: Array<'sent' | 'retry' | 'dead'>): Promise<void> {
    const contact = randomUUID();
    const group = randomUUID();
    const delivery = randomUUID();
    await s.db.query(
      `INSERT INTO alert_contacts (id, tenant_id, audience, channel, url_encrypted, url_host, secret_encrypted, created_by)
       VALUES ($1, $2, 'owner', 'webhook', '\\x00', 'hooks.example.test', '\\x00', 'test')`,
      [contact, tenantId],
    );
    await s.db.query(
      `INSERT INTO alert_groups (id, tenant_id, rule, audience, status, flush_at, flushed_at)
       VALUES ($1, $2, 'usage.tool_error_rate', 'owner', 'flushed', now(), now())`,
      [group, tenantId],
    );
    await s.db.query(
      `INSERT INTO alert_deliveries (id, group_id, tenant_id, audience, rule, channel, contact_id, status, attempts, message)
       VALUES ($1, $2, $3, 'owner', 'usage.tool_error_rate', 'webhook', $4, 'dead', $5, '{}')`,
      [delivery, group, tenantId, contact, outcomes.length],
    );
    for (const [i, outcome] of outcomes.entries()) {
      await s.db.query(
        `INSERT INTO alert_delivery_attempts (delivery_id, tenant_id, channel, attempt, outcome, status_code, latency_ms)
         VALUES ($1, $2, 'webhook', $3, $4, $5, 12)`,
        [delivery, tenantId, i + 1, outcome, outcome === 'sent' ? 200 : 503],
      );
    }
  }

  const get = async (path: string, bearer: string) => {
    const answer = await call(q.url, bearer, path);
    expect({ path, status: answer.status, detail: answer.json?.detail }).toEqual({
      path,
      status: 200,
      detail: undefined,
    });
    return answer.json;
  };

  function toolCallsOf(tenantId: string) {
    return s.events
      .filter((e) => e.type === 'tool_call' && (e.data as { tenant_id: string }).tenant_id === tenantId)
      .map((e) => ({ time: new Date(e.time!), data: e.data as { status?: string; mcp_server?: string } }));
  }

  it('counts tool calls per UTC day of the week and hour, only of the caller tenant', async () => {
    const owner = await token(tenant1, ['owner']);
    const body = await get('/api/v1/analytics/tool-calls/hours?period=7d', owner);
    const expected = new Map<string, { calls: number; failures: number }>();
    for (const c of toolCallsOf(tenant1)) {
      const key = `${((c.time.getUTCDay() + 6) % 7) + 1}/${c.time.getUTCHours()}`;
      const cell = expected.get(key) ?? { calls: 0, failures: 0 };
      cell.calls += 1;
      if (c.data.status === 'error') cell.failures += 1;
      expected.set(key, cell);
    }
    const got = new Map(
      body.rows.map((r: { day_of_week: number; hour: number; calls: number; failures: number }) => [
        `${r.day_of_week}/${r.hour}`,
        { calls: r.calls, failures: r.failures },
      ]),
    );
    expect(got).toEqual(expected);
    expect(body.time_zone).toBe('UTC');
    expect(body.totals.calls).toBe(toolCallsOf(tenant1).length);
    expect(body.totals.failures).toBe(8);

    // The same cells as CSV; another tenant's owner never sees tenant 1's calls; asking for it is a 404.
    const csv = await call(q.url, owner, '/api/v1/analytics/tool-calls/hours?period=7d&format=csv');
    expect(parseCsv(csv.text).length).toBe(body.rows.length);
    const other = await get('/api/v1/analytics/tool-calls/hours?period=7d', await token(tenant2, ['owner']));
    expect(other.totals.calls).toBe(toolCallsOf(tenant2).length);
    expect(other.totals.failures).toBe(0);
    const asked = await call(
      q.url,
      await token(tenant2, ['owner']),
      `/api/v1/analytics/tool-calls/hours?tenant_id=${tenant1}`,
    );
    expect(asked.status).toBe(404);
  });

  it('opens the breaker at the fifth failed call in a row and closes it at the next success', async () => {
    const owner = await token(tenant1, ['owner']);
    const events = await get('/api/v1/analytics/mcp-breaker-events?period=7d', owner);
    expect(events.default_consecutive_errors).toBe(5);
    expect(events.rows).toEqual([
      {
        tenant_id: tenant1,
        server,
        opened_at: callTimes[6]!.toISOString(),
        closed_at: callTimes[8]!.toISOString(),
        open_ms: 2 * 60_000,
        failures: 6,
      },
    ]);
    // A tenant whose breaker rule opens at 2 failures also sees the trailing streak, still open.
    await s.db.query(
      `INSERT INTO alert_thresholds (tenant_id, rule, params, updated_by)
       VALUES ($1, 'usage.mcp_breaker_open', '{"consecutive_errors": 2}', 'test')`,
      [tenant1],
    );
    try {
      const stricter = await get('/api/v1/analytics/mcp-breaker-events?period=7d', owner);
      expect(
        stricter.rows.map((r: { opened_at: string; closed_at: string | null }) => [r.opened_at, r.closed_at]),
      ).toEqual([
        [callTimes[3]!.toISOString(), callTimes[8]!.toISOString()],
        [callTimes[10]!.toISOString(), null],
      ]);
    } finally {
      await s.db.query(`DELETE FROM alert_thresholds WHERE tenant_id = $1`, [tenant1]);
    }
    const other = await get('/api/v1/analytics/mcp-breaker-events?period=7d', await token(tenant2, ['owner']));
    expect(other.rows).toEqual([]);
  });

  it('gives each MCP server per hour its calls, failures and state, and its breaker openings', async () => {
    const owner = await token(tenant1, ['owner']);
    const body = await get('/api/v1/analytics/mcp-health?period=7d', owner);
    const expected = new Map<string, { calls: number; failures: number }>();
    for (const c of toolCallsOf(tenant1)) {
      if (!c.data.mcp_server) continue;
      const hour = new Date(Math.floor(c.time.getTime() / 3_600_000) * 3_600_000).toISOString();
      const key = `${c.data.mcp_server}@${hour}`;
      const cell = expected.get(key) ?? { calls: 0, failures: 0 };
      cell.calls += 1;
      if (c.data.status === 'error') cell.failures += 1;
      expected.set(key, cell);
    }
    const rows = body.rows as Array<{ server: string; hour: string; calls: number; failures: number; state: string }>;
    expect(new Map(rows.map((r) => [`${r.server}@${r.hour}`, { calls: r.calls, failures: r.failures }]))).toEqual(
      expected,
    );
    for (const r of rows) {
      expect(r.state).toBe(r.failures === 0 ? 'up' : r.failures === r.calls ? 'down' : 'degraded');
    }
    const flaky = body.servers.find((x: { server: string }) => x.server === server);
    expect(flaky).toEqual({ server, calls: 11, failures: 8, error_rate: 0.7273, breaker_openings: 1 });
    expect(body.servers.find((x: { server: string }) => x.server === 'github').breaker_openings).toBe(0);
    const csv = await call(q.url, owner, '/api/v1/analytics/mcp-health?period=7d&format=csv');
    expect(parseCsv(csv.text).length).toBe(rows.length);
  });

  it('gives tool failures and webhook delivery failures per day, every day of the period', async () => {
    const owner = await token(tenant1, ['owner']);
    const body = await get('/api/v1/analytics/error-rates?period=7d', owner);
    expect(body.interval).toBe('day');
    expect(body.rows).toHaveLength(7);
    expect(body.rows.at(-1).bucket).toBe(today());
    expect(body.totals).toEqual({
      tool_calls: toolCallsOf(tenant1).length,
      tool_failures: 8,
      tool_error_rate: Math.round((8 / toolCallsOf(tenant1).length) * 10_000) / 10_000,
      webhook_attempts: 4,
      webhook_failures: 3,
      webhook_failure_rate: 0.75,
    });
    const last = body.rows.at(-1);
    expect([last.webhook_attempts, last.webhook_failures]).toEqual([4, 3]);

    const admin = await token('platform', ['admin']);
    const all = await get('/api/v1/analytics/error-rates?period=7d', admin);
    expect([all.totals.webhook_attempts, all.totals.webhook_failures]).toEqual([6, 5]);
    const weekly = await get(`/api/v1/analytics/error-rates?period=7d&interval=week&tenant_id=${tenant2}`, admin);
    expect(weekly.rows.reduce((n: number, r: { webhook_failures: number }) => n + r.webhook_failures, 0)).toBe(2);
  });

  it('refuses bad input with a 400 naming the field, and ranges longer than raw calls are kept', async () => {
    const owner = await token(tenant1, ['owner']);
    const cases: Array<[string, RegExp]> = [
      ['/api/v1/analytics/error-rates?interval=hour', /interval/],
      ['/api/v1/analytics/mcp-health?period=365d', /at most 90 days/],
      ['/api/v1/analytics/tool-calls/hours?period=banana', /period/],
      ['/api/v1/analytics/mcp-breaker-events?from=2026-02-01&to=2026-01-01', /from/],
    ];
    for (const [path, detail] of cases) {
      const answer = await call(q.url, owner, path);
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(JSON.stringify(answer.json)).toMatch(detail);
    }
  });
});
