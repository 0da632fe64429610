import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ControlCommand, topicName, Topics } from '@agentmeter/contracts';
import {
  createTestTopics,
  eventually,
  freePort,
  publishEvents,
  readAll,
  startService,
  testEnvironment,
  testKafka,
  type RunningService,
} from '@agentmeter/testing';
import { call, SECRET, seed, token, type Seeded } from './query.fixture';

const SERVICES_SH = join(__dirname, '..', '..', '..', 'deploy', 'local', 'services.sh');

/**
 * The `make up` topology: the five services from dist/, each given the environment deploy/local/services.sh
 * gives it (`services.sh wiring`, on this test's ports); every quick action of the query API carried out by the
 * service that owns it and audited as succeeded; every service's /metrics with the shared metrics (docs/observability.md "Instrumentation contract").
 */
describe('make up wiring: quick actions through the query API', () => {
  const prefix = `qw${randomBytes(2).toString('hex')}`;
  const kafka = testKafka();
  const secrets = {
    AUTH_JWT_SECRET: SECRET,
    COST_CAP_API_TOKEN: randomBytes(24).toString('hex'),
    ALERT_API_TOKEN: randomBytes(24).toString('hex'),
    ALERT_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  };
  let s: Seeded;
  let topicPrefix: string;
  const running: RunningService[] = [];
  let query: RunningService;
  const by: Record<string, RunningService> = {};

  beforeAll(async () => {
    s = await seed(prefix);
    topicPrefix = await createTestTopics(kafka);
    const ports = { query: await freePort(), 'cost-cap': await freePort(), alert: await freePort() };
    const wiring = Object.fromEntries(
      execFileSync('bash', [SERVICES_SH, 'wiring'], {
        env: {
          PATH: process.env.PATH ?? '',
          QUERY_PORT: String(ports.query),
          COST_CAP_PORT: String(ports['cost-cap']),
          ALERT_PORT: String(ports.alert),
        },
      })
        .toString()
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    ) as Record<string, string>;
    const env = {
      ...wiring,
      ...secrets,
      DATABASE_URL: s.database.url,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      COST_CAP_GROUP_ID: `${topicPrefix}cost-cap`,
      ALERT_GROUP_ID: `${topicPrefix}alert`,
      INGEST_GROUP_ID: `${topicPrefix}ingest`,
      REDIS_KEY_PREFIX: `${testEnvironment().redisPrefix}${randomBytes(3).toString('hex')}:`,
      ALERT_EVALUATE_EVERY_MS: '1000',
    };
    by['cost-cap'] = await startService('cost-cap', env, { port: ports['cost-cap'] });
    by.alert = await startService('alert', env, { port: ports.alert });
    by.ingest = await startService('ingest', env);
    by['alert-worker'] = await startService('alert-worker', env);
    by.query = query = await startService('query', env, { port: ports.query });
    running.push(...Object.values(by));
  });

  afterAll(async () => {
    for (const service of running.reverse()) await service.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  it('wires query to cost-cap and alert by address, as docker-compose and k8s do', () => {
    const out = execFileSync('bash', [SERVICES_SH, 'wiring'], { env: { PATH: process.env.PATH ?? '' } }).toString();
    expect(out).toContain('COST_CAP_URL=http://127.0.0.1:3002\n');
    expect(out).toContain('ALERT_URL=http://127.0.0.1:3003\n');
  });

  it('carries out every quick action and audits it as succeeded', async () => {
    const run = s.workload.truth.runs.find((r) => r.status === 'failed')!;
    const tenant = run.tenant_id;
    const owner = await token(tenant, ['owner'], 'wiring-owner');
    const admin = await token('platform', ['admin'], 'wiring-admin');
    const post = (bearer: string, path: string, body: object) =>
      call(query.url, bearer, path, { method: 'POST', body });

    const answers = {
      pause: await post(admin, `/tenants/${tenant}/pause`, { reason: 'pause it' }),
      unpause: await post(admin, `/tenants/${tenant}/unpause`, { reason: 'resume it' }),
      set: await post(owner, `/tenants/${tenant}/caps`, {
        cap: 'tenant_daily_cost',
        limit: '50',
        duration: 'permanent',
        reason: 'set it',
      }),
      raise: await post(owner, `/tenants/${tenant}/caps`, {
        cap: 'tenant_daily_cost',
        limit: '75',
        duration: '72h',
        reason: 'raise it',
      }),
      mute: await post(owner, '/alerts/mutes', { rule: 'owner.cap_warning', duration_hours: 2, reason: 'mute it' }),
      reopen: await post(owner, `/runs/${run.run_id}/reopen-phase`, { phase: 'plan', reason: 'reopen it' }),
      rerun: await post(owner, `/runs/${run.run_id}/rerun-last-step`, { reason: 'rerun it' }),
    };
    const statuses = Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, [a.status, a.json?.detail]]));
    expect(statuses).toEqual({
      pause: [202, undefined],
      unpause: [202, undefined],
      set: [202, undefined],
      raise: [202, undefined],
      mute: [202, undefined],
      reopen: [202, undefined],
      rerun: [202, undefined],
    });
    const muteId = (answers.mute.json.result as { id: string }).id;
    expect(muteId).toEqual(expect.any(String));
    const unmute = await call(query.url, owner, `/alerts/mutes/${muteId}`, {
      method: 'DELETE',
      body: { reason: 'unmute it' },
    });
    expect([unmute.status, unmute.json?.detail]).toEqual([202, undefined]);

    // The owning services hold the result: cost-cap's raise is in force, alert's mute was cancelled.
    const raises = await s.db.query(
      `SELECT count(*)::int AS n FROM cap_overrides WHERE tenant_id = $1 AND reason = 'raise it'`,
      [tenant],
    );
    expect(raises[0].n).toBe(1);
    const commands = (await readAll(kafka, topicName(topicPrefix, Topics.Control)))
      .map((m) => ControlCommand.parse(JSON.parse(m.value!)))
      .filter((c) => 'run_id' in c && c.run_id === run.run_id)
      .map((c) => [c.type, c.reason]);
    expect(commands).toEqual(
      expect.arrayContaining([
        ['reopen_phase', 'reopen it'],
        ['rerun_last_step', 'rerun it'],
      ]),
    );

    const audit = await call(query.url, await token(tenant, ['auditor']), '/audit?limit=100');
    const entries = audit.json.items.map((e: Record<string, unknown>) => [e.action, e.outcome, e.reason]);
    expect(entries).toEqual(
      expect.arrayContaining([
        ['tenant.pause', 'succeeded', 'pause it'],
        ['tenant.unpause', 'succeeded', 'resume it'],
        ['caps.set', 'succeeded', 'set it'],
        ['caps.raise_72h', 'succeeded', 'raise it'],
        ['alerts.mute', 'succeeded', 'mute it'],
        ['alerts.unmute', 'succeeded', 'unmute it'],
        ['run.reopen_phase', 'succeeded', 'reopen it'],
        ['run.rerun_last_step', 'succeeded', 'rerun it'],
      ]),
    );
    expect(entries.filter((e: unknown[]) => e[1] !== 'succeeded')).toEqual([]);
  });

  it('serves the shared metrics on every service: HTTP by route, agents, MCP breakers, live streams', async () => {
    const run = s.workload.truth.runs.find((r) => r.status === 'running')!;
    const base = { tenant_id: run.tenant_id, project_id: run.project_id, run_id: run.run_id, phase: 'plan' };
    const now = Date.now();
    const events = Array.from({ length: 6 }, (_, i) => ({
      key: run.run_id, // the Kafka key of an event is its run id (docs/events.md)
      specversion: '1.0',
      id: `${prefix}-tool-${i}`,
      source: `wiring-test/${prefix}`,
      type: 'tool_call',
      time: new Date(now - (6 - i) * 1000).toISOString(),
      subject: run.tenant_id,
      data: {
        ...base,
        role: 'implementer',
        tool: 'search',
        mcp_server: `${prefix}-mcp`,
        latency_ms: 5,
        status: 'error',
      },
    }));
    events.push({
      ...events[0]!,
      id: `${prefix}-llm-1`,
      type: 'llm_call',
      data: {
        ...base,
        role: 'planner',
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 120,
        completion_tokens: 30,
        latency_ms: 900,
      } as never,
    });
    await publishEvents(kafka, topicName(topicPrefix, Topics.AgentEvents), events);

    const bearer = await token(run.tenant_id, ['op']);
    const stream = new AbortController();
    const live = await fetch(`${query.url}/runs/${encodeURIComponent(run.run_id)}/stream`, {
      headers: { authorization: `Bearer ${bearer}` },
      signal: stream.signal,
    });
    expect(live.status).toBe(200);
    await call(query.url, bearer, `/runs/${encodeURIComponent(run.run_id)}/metrics`);
    await call(query.url, null, '/no-such-route');

    const scrape = async (name: string) => (await fetch(`${by[name]!.url}/metrics`)).text();
    /** Sum of the samples of `name` whose labels include `labels` (whatever their order); NaN when none. */
    const value = (text: string, name: string, labels: Record<string, string> = {}) => {
      const samples = text.split('\n').flatMap((line) => {
        const match = /^([a-z_:]+)\{(.*)\} (\S+)$/.exec(line);
        if (!match || match[1] !== name) return [];
        const has = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
        return Object.entries(labels).every(([k, v]) =>
          v.endsWith('*') ? has[k]?.startsWith(v.slice(0, -1)) : has[k] === v,
        )
          ? [Number(match[3])]
          : [];
      });
      return samples.length === 0 ? NaN : samples.reduce((a, b) => a + b, 0);
    };
    const requests = (text: string, labels: Record<string, string>) =>
      value(text, 'agentmeter_http_request_duration_seconds_count', labels);

    expect(value(await scrape('query'), 'agentmeter_query_active_streams')).toBe(1);
    stream.abort();
    await eventually(async () => {
      expect(value(await scrape('query'), 'agentmeter_query_active_streams')).toBe(0);
    });
    const queryMetrics = await scrape('query');
    expect(requests(queryMetrics, { method: 'GET', route: '/runs/:run_id/metrics', status: '200' })).toBe(1);
    expect(requests(queryMetrics, { method: 'GET', route: 'unmatched', status: '4*' })).toBeGreaterThanOrEqual(1);
    expect(requests(queryMetrics, { method: 'POST', route: '/tenants/:tenant_id/pause', status: '202' })).toBe(1);
    expect(requests(await scrape('cost-cap'), { route: '/v1/tenants/:tenant_id/pause', status: '2*' })).toBe(1);
    expect(requests(await scrape('alert'), { method: 'POST', route: '/admin/mutes', status: '2*' })).toBe(1);
    for (const name of ['ingest', 'alert-worker']) {
      await fetch(`${by[name]!.url}/health`);
      expect(requests(await scrape(name), { method: 'GET', route: '/health', status: '200' })).toBeGreaterThanOrEqual(
        1,
      );
    }

    await eventually(async () => {
      const ingest = await scrape('ingest');
      expect(value(ingest, 'agentmeter_agent_requests_total', { agent: 'implementer', kind: 'tool' })).toBe(6);
      expect(value(ingest, 'agentmeter_agent_requests_total', { agent: 'planner', kind: 'llm' })).toBe(1);
      const tokens = { agent: 'planner', model: 'gpt-4.1' };
      expect(value(ingest, 'agentmeter_agent_tokens_total', { ...tokens, direction: 'prompt' })).toBe(120);
      expect(value(ingest, 'agentmeter_agent_tokens_total', { ...tokens, direction: 'completion' })).toBe(30);
    });
    await eventually(async () => {
      const alert = await scrape('alert');
      expect(value(alert, 'agentmeter_mcp_circuit_breaker_state', { server: `${prefix}-mcp` })).toBe(1);
    }, 30_000);
  });
});
