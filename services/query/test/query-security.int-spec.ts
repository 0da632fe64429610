import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ControlCommand, topicName, Topics } from '@agentmeter/contracts';
import { createTestTopics, readAll, testEnvironment, testKafka } from '@agentmeter/testing';
import { call, seed, startQuery, token, type Answer, type RunningQuery, type Seeded } from './query.fixture';

/**
 * Who may see what: every role against every endpoint (docs/security.md, copied here as the expected
 * table), another tenant's ids answering exactly like missing ones, no trace ids or links for BU and
 * Auditor, API keys and JWKS-signed tokens, SQL-injection strings as harmless data, limits (413, 400, 429),
 * and the audited actions reaching the services that own them.
 */

type Role = 'admin' | 'owner' | 'op' | 'bu' | 'auditor' | 'support' | 'finance';
const ROLES: Role[] = ['admin', 'owner', 'op', 'bu', 'auditor', 'support', 'finance'];
const ALL = ROLES;

/** The matrix of docs/security.md: endpoint -> roles allowed (every other role: 403). */
const MATRIX: Array<[string, Role[]]> = [
  ['GET /runs', ALL],
  ['GET /runs/{run}/metrics', ALL],
  ['GET /runs/{run}/stream', ALL],
  ['GET /runs/{run}/events', ['admin', 'owner', 'op', 'auditor', 'support']],
  ['GET /config', ['admin', 'op']],
  ['GET /admin/overview', ['admin']],
  ['GET /tenants/{tenant}/overview', ['admin', 'owner', 'op', 'bu', 'auditor', 'finance']],
  ['GET /projects/{project}/overview', ['admin', 'owner', 'op', 'bu', 'auditor']],
  ['GET /api/v1/analytics/costs', ['admin', 'owner', 'op', 'auditor', 'finance']],
  ['GET /api/v1/analytics/usage', ['admin', 'owner', 'op', 'auditor', 'finance']],
  ['GET /api/v1/analytics/metrics', ['admin', 'owner', 'op', 'bu', 'auditor', 'finance']],
  ['GET /api/v1/analytics/tool-calls/hours', ['admin', 'owner', 'op', 'auditor', 'finance']],
  ['GET /api/v1/analytics/mcp-health', ['admin', 'owner', 'op', 'auditor', 'finance']],
  ['GET /api/v1/analytics/mcp-breaker-events', ['admin', 'owner', 'op', 'auditor', 'finance']],
  ['GET /api/v1/analytics/error-rates', ['admin', 'owner', 'op', 'auditor', 'finance']],
  ['GET /audit', ['admin', 'owner', 'auditor', 'finance']],
  ['GET /alerts/banners', ALL],
  ['POST /tenants/{tenant}/pause', ['admin']],
  ['POST /tenants/{tenant}/unpause', ['admin']],
  ['POST /tenants/{tenant}/caps', ['admin', 'owner', 'finance']],
  ['POST /runs/{run}/reopen-phase', ['admin', 'owner', 'op']],
  ['POST /runs/{run}/rerun-last-step', ['admin', 'owner', 'op']],
  ['POST /alerts/mutes', ['admin', 'owner']],
  ['DELETE /alerts/mutes/{mute}', ['admin', 'owner']],
  ['POST /api-keys', ['admin', 'owner']],
  ['GET /api-keys', ['admin', 'owner']],
  ['DELETE /api-keys/{key}', ['admin', 'owner']],
  ['PATCH /tenants/{tenant}/settings', ['admin']],
  ['GET /tenants/{tenant}/phase-targets', ['admin', 'owner', 'op', 'bu', 'auditor', 'finance']],
  ['PUT /tenants/{tenant}/phase-targets', ['admin', 'owner']],
  ['POST /alerts/feedback', ['admin', 'owner', 'op', 'finance']],
  ['GET /api/v1/analytics/alert-precision', ['admin', 'owner', 'op', 'bu', 'auditor', 'finance']],
  ['GET /admin/prices', ['admin']],
  ['POST /admin/prices', ['admin']],
  ['GET /admin/reprices', ['admin']],
  ['POST /admin/reprices', ['admin']],
  ['GET /tenants/{tenant}/prompt-audit', ['admin', 'owner']],
  ['PUT /tenants/{tenant}/prompt-audit', ['admin', 'owner']],
];

const BODIES: Record<string, unknown> = {
  'POST /tenants/{tenant}/pause': { reason: 'matrix' },
  'POST /tenants/{tenant}/unpause': { reason: 'matrix' },
  'POST /tenants/{tenant}/caps': { cap: 'tenant_daily_cost', limit: '25', duration: '72h', reason: 'matrix' },
  'POST /runs/{run}/reopen-phase': { phase: 'plan', reason: 'matrix' },
  'POST /runs/{run}/rerun-last-step': { reason: 'matrix' },
  'POST /alerts/mutes': { rule: 'owner.cap_warning', duration_hours: 1, reason: 'matrix' },
  'DELETE /alerts/mutes/{mute}': { reason: 'matrix' },
  'POST /api-keys': { name: 'matrix', role: 'bu' },
  'PATCH /tenants/{tenant}/settings': { owner_sees_tokens: true, reason: 'matrix' },
  'PUT /tenants/{tenant}/phase-targets': { targets: { plan: 60_000 }, reason: 'matrix' },
  'POST /admin/prices': {
    provider: 'openai',
    model: 'matrix-model',
    input_usd_per_million: '1',
    output_usd_per_million: '2',
    reason: 'matrix',
  },
  'POST /admin/reprices': { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', reason: 'matrix' },
  'PUT /tenants/{tenant}/prompt-audit': { enabled: false, reason: 'matrix' },
  // The alert (of the callers' tenant) is stored in beforeAll.
  'POST /alerts/feedback': { rule: 'owner.cap_warning', scope: 'matrix', period: 'once', useful: true },
};

interface Stub {
  server: Server;
  url: string;
  requests: Array<{ method: string; path: string; auth: string | undefined; body: unknown }>;
}

async function stub(answer: (req: IncomingMessage) => [number, unknown] = () => [200, { ok: true }]): Promise<Stub> {
  const requests: Stub['requests'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push({
        method: req.method!,
        path: req.url!,
        auth: req.headers.authorization,
        body: body ? JSON.parse(body) : null,
      });
      const [status, payload] = answer(req);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}`, requests };
}

describe('query API security and limits', () => {
  const prefix = `qs${randomBytes(2).toString('hex')}`;
  const tenant1 = `${prefix}-tenant-1`;
  const tenant2 = `${prefix}-tenant-2`;
  let s: Seeded;
  let q: RunningQuery;
  let costCap: Stub;
  let alert: Stub;
  let jwks: Stub;
  let controlTopic: string;
  let keyPair: Awaited<ReturnType<typeof generateKeyPair>>;
  const kafka = testKafka();

  beforeAll(async () => {
    keyPair = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(keyPair.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
    jwks = await stub(() => [200, { keys: [jwk] }]);
    costCap = await stub();
    alert = await stub((req) =>
      req.url?.includes('broken') ? [500, { detail: 'alert is down' }] : [201, { mute_id: 'm-1' }],
    );
    const topicPrefix = await createTestTopics(kafka, 1);
    controlTopic = topicName(topicPrefix, Topics.Control);
    s = await seed(prefix);
    await s.db.query(
      `INSERT INTO alerts (alert_key, rule, tenant_id, scope, period, audience, severity, status, title, body,
                           threshold_fp, fired_at, last_observed_at)
       VALUES ($1, 'owner.cap_warning', $2, 'matrix', 'once', 'owner', 'warning', 'firing', 't', 'b', 'fp', now(), now())`,
      [['owner.cap_warning', tenant1, 'matrix', 'once'].join('\u001f'), tenant1],
    );
    q = await startQuery(s.database.url, {
      AUTH_JWKS_URL: `${jwks.url}/jwks.json`,
      COST_CAP_URL: costCap.url,
      COST_CAP_API_TOKEN: 'cost-cap-token',
      ALERT_URL: alert.url,
      ALERT_API_TOKEN: 'alert-token',
      KAFKA_BROKERS: testEnvironment().kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: topicPrefix,
      QUERY_BODY_LIMIT_BYTES: '4096',
    });
  });

  afterAll(async () => {
    await q?.stop();
    for (const server of [costCap, alert, jwks]) server?.server.close();
    await s?.db.destroy();
    await s?.database.drop();
  });

  const runOf = (tenant: string, status?: string) =>
    s.workload.truth.runs.find((r) => r.tenant_id === tenant && (!status || r.status === status))!;

  function request(endpoint: string, ids: { run: string; tenant: string; project: string }) {
    const [method, template] = endpoint.split(' ') as [string, string];
    const path = template
      .replace('{run}', encodeURIComponent(ids.run))
      .replace('{tenant}', encodeURIComponent(ids.tenant))
      .replace('{project}', encodeURIComponent(ids.project))
      .replace('{mute}', 'm-1')
      .replace('{key}', '0123456789abcdef');
    return { method, path, body: BODIES[endpoint] };
  }

  describe.each(ROLES)('role %s', (role) => {
    it.each(MATRIX)('%s', async (endpoint, allowed) => {
      const run = runOf(tenant1, 'succeeded');
      const { method, path, body } = request(endpoint, { run: run.run_id, tenant: tenant1, project: run.project_id });
      const answer = await call(q.url, await token(tenant1, [role]), path, { method, body });
      if (allowed.includes(role)) {
        const ok = [200, 201, 202, 204, ...(endpoint.startsWith('DELETE /api-keys') ? [404] : [])];
        const outcome = ok.includes(answer.status) ? 'allowed' : `${answer.status} ${answer.json?.detail}`;
        expect({ endpoint, role, outcome }).toEqual({ endpoint, role, outcome: 'allowed' });
      } else {
        expect({ endpoint, role, status: answer.status }).toEqual({ endpoint, role, status: 403 });
        expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
      }
    });
  });

  it('answers 401 without a credential, or with a bad or expired one, on every endpoint', async () => {
    const run = runOf(tenant1);
    const expired = await new SignJWT({ tenant_id: tenant1, roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setIssuer('agentmeter')
      .setAudience('agentmeter-api')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode('query-test-secret-0123456789abcdefghijklmnopqrstuv'));
    for (const [endpoint] of MATRIX) {
      const { method, path, body } = request(endpoint, { run: run.run_id, tenant: tenant1, project: run.project_id });
      for (const bearer of [null, 'not-a-token', expired, 'amk_0123456789abcdef_' + 'A'.repeat(43)]) {
        const answer = await call(q.url, bearer, path, { method, body });
        expect({ endpoint, status: answer.status }).toEqual({ endpoint, status: 401 });
      }
    }
    expect((await call(q.url, null, '/health')).status).toBe(200);
    expect((await call(q.url, null, '/metrics')).status).toBe(200);
  });

  it("answers another tenant's run, project and tenant exactly like missing ones (404), leaking nothing", async () => {
    const other = runOf(tenant2);
    const owner1 = await token(tenant1, ['owner']);
    const cases: Array<[string, string, string, unknown?]> = [
      ['GET', `/runs/${other.run_id}/metrics`, '/runs/no-such-run/metrics'],
      ['GET', `/runs/${other.run_id}/events`, '/runs/no-such-run/events'],
      ['GET', `/runs/${other.run_id}/stream`, '/runs/no-such-run/stream'],
      ['GET', `/tenants/${tenant2}/overview`, '/tenants/no-such-tenant/overview'],
      ['GET', `/projects/${other.project_id}/overview`, '/projects/no-such-project/overview'],
      ['GET', `/runs?tenant_id=${tenant2}`, '/runs?tenant_id=no-such-tenant'],
      ['GET', `/api/v1/analytics/costs?tenant_id=${tenant2}`, '/api/v1/analytics/costs?tenant_id=no-such-tenant'],
      ['POST', `/runs/${other.run_id}/rerun-last-step`, '/runs/no-such-run/rerun-last-step', { reason: 'x' }],
      ['POST', `/tenants/${tenant2}/caps`, '/tenants/no-such-tenant/caps', BODIES['POST /tenants/{tenant}/caps']],
    ];
    for (const [method, existing, missing, body] of cases) {
      const a = await call(q.url, owner1, existing, { method, body });
      const b = await call(q.url, owner1, missing, { method, body });
      const scrub = (answer: Answer) => ({
        status: answer.status,
        type: answer.headers.get('content-type'),
        body: JSON.stringify(answer.json)
          .replaceAll(other.run_id, 'ID')
          .replaceAll(tenant2, 'ID')
          .replaceAll(other.project_id, 'ID')
          .replace(/no-such-(run|tenant|project)/g, 'ID'),
      });
      expect({ existing, ...scrub(a) }).toEqual({ existing, ...scrub(b) });
      expect(a.status).toBe(404);
    }
    // Support reads any tenant's run (troubleshooting), Admin any tenant at all.
    expect((await call(q.url, await token(tenant1, ['support']), `/runs/${other.run_id}/metrics`)).status).toBe(200);
    expect((await call(q.url, await token(tenant1, ['admin']), `/tenants/${tenant2}/overview`)).status).toBe(200);
  });

  it('gives BU and Auditor no trace ids and no Grafana or Tempo links anywhere; OP and Admin get them', async () => {
    const run = runOf(tenant1, 'failed');
    const paths = [
      '/runs?limit=500',
      `/runs/${run.run_id}/metrics`,
      `/runs/${run.run_id}/events?limit=500`,
      `/tenants/${tenant1}/overview`,
      `/projects/${run.project_id}/overview`,
      '/api/v1/analytics/costs?group_by=phase',
      '/api/v1/analytics/usage',
      '/api/v1/analytics/metrics',
      '/alerts/banners',
      '/audit',
    ];
    for (const role of ['bu', 'auditor'] as const) {
      const bearer = await token(tenant1, [role]);
      for (const path of paths) {
        const answer = await call(q.url, bearer, path);
        if (answer.status === 403) continue;
        expect({ role, path, status: answer.status }).toEqual({ role, path, status: 200 });
        expect({ role, path, leaks: leaks(answer.json) }).toEqual({ role, path, leaks: [] });
      }
    }
    const asOp = await call(q.url, await token(tenant1, ['op']), `/runs/${run.run_id}/metrics`);
    expect(asOp.json.grafana_url).toContain('https://grafana.example.test/');
    expect(
      asOp.json.stages.some((st: { trace_url: string | null }) =>
        st.trace_url?.startsWith('https://grafana.example.test/explore?'),
      ),
    ).toBe(true);
    const config = await call(q.url, await token(tenant1, ['op']), '/config');
    expect(config.json).toMatchObject({
      grafana_url: 'https://grafana.example.test',
      tempo_url: 'https://tempo.example.test',
      run_dashboard_url_template: 'https://grafana.example.test/d/agentmeter-run/agentmeter-run?var-run_id={run_id}',
      trace_url_template: expect.stringMatching(/^https:\/\/grafana\.example\.test\/explore\?.*\{trace_id\}/),
      artifact_url_template: 'https://artifacts.example.test/{run_id}/{artifact_path}?v={artifact_version}',
      run_page_url_template: '/runs/{run_id}',
      dashboards: {
        admin_overview: 'https://grafana.example.test/d/agentmeter-admin-overview/agentmeter-admin-overview',
        pipeline_health: 'https://grafana.example.test/d/agentmeter-pipeline-health/agentmeter-pipeline-health',
        llm_token_accounting: 'https://grafana.example.test/d/llm-token-accounting/llm-token-accounting',
      },
    });
    const overview = await call(q.url, await token(tenant1, ['admin']), '/admin/overview');
    const failures = overview.json.last_failures as Array<Record<string, string | null>>;
    expect(failures.some((f) => f.trace_url?.startsWith('https://grafana.example.test/explore?'))).toBe(true);
    // A failure opens the run's console page and its artifact where ARTIFACT_URL_TEMPLATE says.
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) {
      expect(f.run_url).toBe(`/runs/${encodeURIComponent(f.run_id!)}`);
      if (f.artifact_ref) expect(f.artifact_url).toMatch(/^https:\/\/artifacts\.example\.test\//);
    }
    expect(failures.some((f) => f.artifact_url)).toBe(true);
  });

  it('treats SQL-injection strings in filters and paths as plain data', async () => {
    const admin = await token('platform', ['admin']);
    const [{ n: before }] = await s.db.query(`SELECT count(*)::int AS n FROM runs`);
    const evil = ["' OR '1'='1", "x'; DROP TABLE runs; --", "%' UNION SELECT * FROM api_keys --", '1) OR (1=1'];
    for (const value of evil) {
      const v = encodeURIComponent(value);
      for (const path of [
        `/runs?project_id=${v}`,
        `/runs?phase=${v}`,
        `/runs?model=${v}`,
        `/runs?tenant_id=${v}`,
        `/audit?action=${v}`,
      ]) {
        const answer = await call(q.url, admin, path);
        expect({ path, status: answer.status, items: answer.json.items }).toEqual({ path, status: 200, items: [] });
      }
      expect((await call(q.url, admin, `/runs/${v}/metrics`)).status).toBe(404);
      expect((await call(q.url, admin, `/projects/${v}/overview`)).status).toBe(404);
      expect((await call(q.url, admin, `/admin/overview?tenant_id=${v}`)).json.spend_today.by_tenant).toEqual([]);
      expect((await call(q.url, admin, `/api/v1/analytics/costs?group_by=${v}`)).status).toBe(400);
      expect((await call(q.url, admin, `/runs?status=${v}`)).status).toBe(400);
    }
    const [{ n: after }] = await s.db.query(`SELECT count(*)::int AS n FROM runs`);
    expect(after).toBe(before);
  });

  it('refuses bad parameters with 400 and the reason, oversize bodies with 413', async () => {
    const admin = await token('platform', ['admin']);
    const cases: Array<[string, RegExp]> = [
      ['/runs?limit=100000', /limit/],
      ['/runs?limit=501', /limit: at most 500/],
      ['/runs?from=yesterday', /from/],
      ['/runs?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', /time range: at most 90 days/],
      ['/runs?nonsense=1', /nonsense/],
      ['/runs?cursor=abc', /cursor/],
      ['/api/v1/analytics/costs?period=398d', /at most 397 days/],
      ['/api/v1/analytics/costs?period=lots', /period/],
      ['/api/v1/analytics/usage?interval=hour', /interval/],
    ];
    for (const [path, reason] of cases) {
      const answer = await call(q.url, admin, path);
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(answer.json.detail).toMatch(reason);
    }
    const caps = `/tenants/${tenant1}/caps`;
    const missingReason = await call(q.url, admin, caps, { method: 'POST', body: { cap: 'run_cost', limit: '1' } });
    expect(missingReason.status).toBe(400);
    expect(missingReason.json.detail).toMatch(/reason/);
    const big = { cap: 'run_cost', limit: '1', reason: 'x'.repeat(10_000) };
    const tooLarge = await call(q.url, admin, caps, { method: 'POST', body: big });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const rawLarge = await call(q.url, admin, caps, {
      method: 'POST',
      body: 'y'.repeat(10_000),
      headers: { 'content-type': 'text/plain' },
    });
    expect(rawLarge.status).toBe(413);
    const malformed = await call(q.url, admin, caps, { method: 'POST', body: '{"cap":', headers: {} });
    expect(malformed.status).toBe(400);
  });

  it('limits requests per credential: 429 with Retry-After, other credentials unaffected', async () => {
    const limited = await startQuery(s.database.url, { QUERY_RATE_LIMIT: '5', QUERY_RATE_WINDOW_MS: '60000' });
    try {
      const a = await token(tenant1, ['bu'], 'rate-a');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await call(limited.url, a, '/runs?limit=1')).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      const blocked = await call(limited.url, a, '/runs?limit=1');
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(blocked.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect((await call(limited.url, await token(tenant1, ['bu'], 'rate-b'), '/runs?limit=1')).status).toBe(200);
      expect((await call(limited.url, null, '/health')).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });

  it('shares the limit between replicas in Redis, and counts in-process while Redis is unreachable', async () => {
    const shared = { QUERY_RATE_LIMIT: '4', QUERY_RATE_WINDOW_MS: '60000' };
    const prefix = `${testEnvironment().redisPrefix}replicas:`;
    const replicas = [
      await startQuery(s.database.url, { ...shared, REDIS_KEY_PREFIX: prefix }),
      await startQuery(s.database.url, { ...shared, REDIS_KEY_PREFIX: prefix }),
    ];
    // Port 9 (discard) of this host: nothing listens, connections are refused at once.
    const isolated = await startQuery(s.database.url, { ...shared, REDIS_URL: 'redis://127.0.0.1:9' });
    try {
      const a = await token(tenant1, ['bu'], 'rate-shared');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await call(replicas[i % 2]!.url, a, '/runs?limit=1')).status);
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      const keys = await redisKeys(`${prefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.join(' ')).not.toContain('rate-shared'); // the subject is hashed into the key

      const alone: number[] = [];
      for (let i = 0; i < 5; i++) alone.push((await call(isolated.url, a, '/runs?limit=1')).status);
      expect(alone).toEqual([200, 200, 200, 200, 429]);
    } finally {
      await Promise.all([...replicas, isolated].map((replica) => replica.stop()));
    }
  });

  it('authenticates API keys (stored hashed, scoped to a tenant and role) until revoked', async () => {
    const owner = await token(tenant1, ['owner'], 'owner-keys');
    const created = await call(q.url, owner, '/api-keys', { method: 'POST', body: { name: 'ci', role: 'finance' } });
    expect(created.status).toBe(201);
    const key: string = created.json.api_key;
    expect(key).toMatch(/^amk_[0-9a-f]{16}_/);
    const [row] = await s.db.query(`SELECT * FROM api_keys WHERE key_id = $1`, [created.json.key_id]);
    expect(JSON.stringify(row)).not.toContain(key.split('_').slice(2).join('_'));
    expect(row).toMatchObject({ tenant_id: tenant1, role: 'finance' });

    expect((await call(q.url, key, '/api/v1/analytics/costs')).status).toBe(200);
    expect((await call(q.url, null, '/api/v1/analytics/costs', { headers: { 'x-api-key': key } })).status).toBe(200);
    expect((await call(q.url, key, '/admin/overview')).status).toBe(403);
    expect((await call(q.url, key, `/tenants/${tenant2}/overview`)).status).toBe(404);
    expect((await call(q.url, key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'), '/runs')).status).toBe(401);
    expect((await call(q.url, owner, '/api-keys', { method: 'POST', body: { name: 'x', role: 'admin' } })).status).toBe(
      403,
    );

    expect((await call(q.url, owner, `/api-keys/${created.json.key_id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await call(q.url, key, '/runs')).status).toBe(401);
  });

  it('accepts tokens signed by a key of the JWKS, and refuses other keys', async () => {
    const sign = (key: Parameters<SignJWT['sign']>[0], kid: string) =>
      new SignJWT({ tenant_id: tenant1, roles: ['op'] })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setSubject('idp-user')
        .setIssuer('agentmeter')
        .setAudience('agentmeter-api')
        .setExpirationTime('5m')
        .sign(key);
    expect((await call(q.url, await sign(keyPair.privateKey, 'test-key'), '/config')).status).toBe(200);
    const stranger = await generateKeyPair('RS256');
    expect((await call(q.url, await sign(stranger.privateKey, 'test-key'), '/config')).status).toBe(401);
  });

  it('carries out actions through their owning services, audited, and records failures too', async () => {
    const owner = await token(tenant1, ['owner'], 'owner-actions');
    const admin = await token('platform', ['admin'], 'admin-actions');
    const run = runOf(tenant1, 'failed');
    costCap.requests.length = 0;
    alert.requests.length = 0;

    const raise = await call(q.url, owner, `/tenants/${tenant1}/caps`, {
      method: 'POST',
      body: { cap: 'tenant_daily_cost', limit: '50', duration: '72h', reason: 'launch day' },
    });
    expect(raise.status).toBe(202);
    const permanent = await call(q.url, owner, `/tenants/${tenant1}/caps`, {
      method: 'POST',
      body: { cap: 'run_tokens', limit: '500000', duration: 'permanent', reason: 'bigger runs' },
    });
    expect(permanent.status).toBe(202);
    expect(
      (await call(q.url, admin, `/tenants/${tenant1}/pause`, { method: 'POST', body: { reason: 'abuse' } })).status,
    ).toBe(202);
    expect(costCap.requests).toEqual([
      {
        method: 'POST',
        path: `/v1/tenants/${tenant1}/overrides`,
        auth: 'Bearer cost-cap-token',
        body: {
          actor: 'owner-actions',
          reason: 'launch day',
          cap: 'tenant_daily_cost',
          limit: '50',
          duration_hours: 72,
        },
      },
      {
        method: 'PUT',
        path: `/v1/tenants/${tenant1}/caps`,
        auth: 'Bearer cost-cap-token',
        body: { actor: 'owner-actions', reason: 'bigger runs', run: { max_tokens: 500000 } },
      },
      {
        method: 'POST',
        path: `/v1/tenants/${tenant1}/pause`,
        auth: 'Bearer cost-cap-token',
        body: { actor: 'admin-actions', reason: 'abuse' },
      },
    ]);

    const mute = await call(q.url, owner, '/alerts/mutes', {
      method: 'POST',
      body: { rule: 'owner.cap_warning', duration_hours: 2, reason: 'known' },
    });
    expect(mute.status).toBe(202);
    expect(alert.requests[0]).toMatchObject({
      method: 'POST',
      path: '/admin/mutes',
      auth: 'Bearer alert-token',
      body: { tenant_id: tenant1, rule: 'owner.cap_warning', actor: 'owner-actions', reason: 'known' },
    });
    const broken = await call(q.url, owner, '/alerts/mutes/broken', { method: 'DELETE', body: { reason: 'try' } });
    expect(broken.status).toBe(502);
    expect(broken.json.detail).toMatch(/alert answered 500: alert is down/);

    const rerun = await call(q.url, owner, `/runs/${run.run_id}/rerun-last-step`, {
      method: 'POST',
      body: { reason: 'flaky validator' },
    });
    expect(rerun.status).toBe(202);
    const reopen = await call(q.url, owner, `/runs/${run.run_id}/reopen-phase`, {
      method: 'POST',
      body: { phase: 'plan', reason: 'brief changed' },
    });
    expect(reopen.status).toBe(202);
    const messages = await readAll(kafka, controlTopic);
    // Every command is valid under the shared agent.control.v1 contract the Coordinator consumes.
    for (const m of messages) expect(ControlCommand.safeParse(JSON.parse(m.value!)).error).toBeUndefined();
    const commands = messages.map((m) => ({ key: m.key, ...JSON.parse(m.value!) }));
    expect(commands).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          key: tenant1,
          type: 'rerun_last_step',
          run_id: run.run_id,
          issued_by: 'owner-actions',
          reason: 'flaky validator',
          version: 1,
        }),
        expect.objectContaining({
          key: tenant1,
          type: 'reopen_phase',
          run_id: run.run_id,
          phase: 'plan',
          reason: 'brief changed',
        }),
      ]),
    );

    const audit = await call(q.url, await token(tenant1, ['auditor']), '/audit?limit=100');
    const entries = audit.json.items.map((e: Record<string, unknown>) => [e.action, e.outcome, e.actor, e.reason]);
    expect(entries).toEqual(
      expect.arrayContaining([
        ['caps.raise_72h', 'succeeded', 'owner-actions', 'launch day'],
        ['caps.set', 'succeeded', 'owner-actions', 'bigger runs'],
        ['tenant.pause', 'succeeded', 'admin-actions', 'abuse'],
        ['alerts.mute', 'succeeded', 'owner-actions', 'known'],
        ['alerts.unmute', 'failed', 'owner-actions', 'try'],
        ['run.rerun_last_step', 'succeeded', 'owner-actions', 'flaky validator'],
        ['run.reopen_phase', 'succeeded', 'owner-actions', 'brief changed'],
      ]),
    );
    const other = await call(q.url, await token(tenant2, ['auditor']), '/audit?limit=100');
    expect(other.json.items.filter((e: { tenant_id: string }) => e.tenant_id === tenant1)).toEqual([]);
  });

  it('lists the in-app banners of the caller tenant only', async () => {
    await s.db.query(
      `INSERT INTO alert_banners (tenant_id, audience, alert_key, rule, severity, title, body)
       VALUES ($1, 'owner', 'k1', 'owner.cap_warning', 'warning', 'Cap at 80%', 'body'),
              ($2, 'owner', 'k2', 'owner.cap_warning', 'warning', 'Other tenant', 'body'),
              ('*', 'admin', 'k3', 'admin.queue_latency', 'critical', 'Queue latency', 'body')`,
      [tenant1, tenant2],
    );
    const asBu = await call(q.url, await token(tenant1, ['bu']), '/alerts/banners');
    expect(asBu.json.items.map((b: { title: string }) => b.title)).toEqual(['Cap at 80%']);
    const asAdmin = await call(q.url, await token(tenant1, ['admin']), '/alerts/banners');
    expect(asAdmin.json.items.map((b: { title: string }) => b.title).sort()).toEqual(['Cap at 80%', 'Queue latency']);
  });

  it("resolves a run id of several tenants: the caller's own tenant first, else 409 for a role that reads them all", async () => {
    const runId = `${prefix}-same-id`;
    const now = new Date();
    for (const tenant of [tenant1, tenant2]) {
      await s.db.query(
        `INSERT INTO runs (tenant_id, run_id, project_id, status, first_event_at, last_event_at)
         VALUES ($1, $2, $3, 'running', $4, $4)`,
        [tenant, runId, runOf(tenant).project_id, now],
      );
    }
    // Only tenant 2's run has a stage: each answer carries its own run's stages, never the other tenant's.
    await s.db.query(
      `INSERT INTO stages (tenant_id, run_id, phase, attempt, status, started_at) VALUES ($1, $2, 'plan', 1, 'running', $3)`,
      [tenant2, runId, now],
    );
    const metricsAs = async (tenant: string, role: string) =>
      call(q.url, await token(tenant, [role]), `/runs/${runId}/metrics`);
    const admin1 = await metricsAs(tenant1, 'admin');
    expect({ status: admin1.status, tenant: admin1.json.tenant_id, stages: admin1.json.stages }).toEqual({
      status: 200,
      tenant: tenant1,
      stages: [],
    });
    const owner2 = await metricsAs(tenant2, 'owner');
    expect({ status: owner2.status, tenant: owner2.json.tenant_id, stages: owner2.json.stages.length }).toEqual({
      status: 200,
      tenant: tenant2,
      stages: 1,
    });
    const support = await metricsAs('platform', 'support');
    expect(support.status).toBe(409);
    expect(support.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await metricsAs('platform', 'owner')).status).toBe(404);
  });
});

/** Keys and values that are observability links or trace ids. */
function leaks(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => leaks(item, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => [
      ...(/trace|span|grafana|tempo/i.test(key) ? [`${path}.${key}`] : []),
      ...leaks(item, `${path}.${key}`),
    ]);
  }
  if (typeof value === 'string' && (/^[0-9a-f]{32}$/.test(value) || /grafana|tempo/i.test(value)))
    return [`${path}=${value}`];
  return [];
}

async function redisKeys(pattern: string): Promise<string[]> {
  const redis = new Redis(testEnvironment().redisUrl);
  try {
    return await redis.keys(pattern);
  } finally {
    redis.disconnect();
  }
}
