import { randomBytes } from 'node:crypto';
import { startService, type RunningService } from '@agentmeter/testing';
import { call, parseCsv, SECRET, seed, token, type Seeded } from './query.fixture';

/**
 * The query service as production runs it (compiled, its own process, modules loaded natively): OpenAPI
 * lists every route with its parameters, and a run reads the same through JSON, CSV and the stream.
 */
describe('query service process', () => {
  const prefix = `qe${randomBytes(2).toString('hex')}`;
  let s: Seeded;
  let query: RunningService;

  beforeAll(async () => {
    s = await seed(prefix);
    query = await startService('query', {
      DATABASE_URL: s.database.url,
      AUTH_JWT_SECRET: SECRET,
      GRAFANA_URL: 'https://g.test',
    });
  });

  afterAll(async () => {
    await query?.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  it('publishes the OpenAPI document of every route, generated from the code', async () => {
    const doc = await call(query.url, null, '/docs-json');
    expect(doc.status).toBe(200);
    const paths = Object.keys(doc.json.paths);
    for (const path of [
      '/runs',
      '/runs/{run_id}/metrics',
      '/runs/{run_id}/events',
      '/runs/{run_id}/stream',
      '/config',
      '/admin/overview',
      '/tenants/{tenant_id}/overview',
      '/projects/{project_id}/overview',
      '/api/v1/analytics/costs',
      '/api/v1/analytics/usage',
      '/api/v1/analytics/metrics',
      '/api/v1/analytics/tool-calls/hours',
      '/api/v1/analytics/mcp-health',
      '/api/v1/analytics/mcp-breaker-events',
      '/api/v1/analytics/error-rates',
      '/audit',
      '/alerts/banners',
      '/tenants/{tenant_id}/pause',
      '/tenants/{tenant_id}/caps',
      '/runs/{run_id}/reopen-phase',
      '/alerts/mutes',
      '/api-keys',
      '/whoami',
    ]) {
      expect(paths).toContain(path);
    }
    const groupBy = doc.json.paths['/api/v1/analytics/costs'].get.parameters.find(
      (p: { name: string }) => p.name === 'group_by',
    );
    expect(groupBy.schema.enum).toEqual(['agent', 'tenant', 'project', 'model', 'user', 'mcp_server', 'phase']);
  });

  it('serves runs as JSON and CSV alike, and streams a finished run to its end', async () => {
    const run = s.workload.truth.runs.find((r) => r.status === 'succeeded')!;
    const bearer = await token(run.tenant_id, ['op']);
    const json = await call(query.url, bearer, '/runs?limit=500');
    const csv = await call(query.url, bearer, '/runs?limit=500&format=csv');
    expect(json.status).toBe(200);
    expect(parseCsv(csv.text).map((r) => [r.run_id, r.cost_usd])).toEqual(
      json.json.items.map((r: { run_id: string; cost_usd: string }) => [r.run_id, r.cost_usd]),
    );
    const stream = await call(query.url, bearer, `/runs/${run.run_id}/stream`);
    expect(stream.text).toMatch(/^event: metrics\n/);
    expect(stream.text).toMatch(/event: end\n/);
    const metrics = await call(query.url, bearer, `/runs/${run.run_id}/metrics`);
    expect(metrics.json.totals).toEqual(run.totals);
    expect(metrics.json.grafana_url).toMatch(/^https:\/\/g\.test\//);
  });
});
