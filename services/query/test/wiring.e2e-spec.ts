import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ControlCommand, topicName, Topics } from '@agentmeter/contracts';
import { createTestTopics, freePort, readAll, startService, testKafka, type RunningService } from '@agentmeter/testing';
import { call, SECRET, seed, token, type Seeded } from './query.fixture';

const SERVICES_SH = join(__dirname, '..', '..', '..', 'deploy', 'local', 'services.sh');

/**
 * The `make up` topology: query, cost-cap and alert from dist/, each given the environment
 * deploy/local/services.sh gives it (`services.sh wiring`, on this test's ports), and every quick action of the
 * query API carried out by the service that owns it and audited as succeeded.
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
    };
    running.push(await startService('cost-cap', env, { port: ports['cost-cap'] }));
    running.push(await startService('alert', env, { port: ports.alert }));
    query = await startService('query', env, { port: ports.query });
    running.push(query);
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
});
