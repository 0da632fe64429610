import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { AlertWebhookHeaders, topicName, Topics } from '@agentmeter/contracts';
import { verifyWebhook } from '@agentmeter/domain';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  freePort,
  publishEvents,
  startService,
  testEnvironment,
  testKafka,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';
import { TestHttpEndpoint, TestSmtpServer, type ReceivedMail } from './test-endpoints';

/**
 * The whole alerting path with real processes: two alert replicas and two alert-worker replicas, Kafka,
 * PostgreSQL, Redis, an SMTP server and an HTTP endpoint standing in for Slack and webhooks. Cap events
 * become one grouped message per contact, delivered once on every channel whatever fails on the way;
 * a muted tenant hears nothing; a dead webhook raises the Admin alert; Alertmanager is audited and routed.
 */
describe('alerting end to end', () => {
  const token = randomBytes(24).toString('hex');
  const key = randomBytes(32).toString('base64');
  let kafka: Kafka;
  let database: TestDatabase;
  let sql: Client;
  let smtp: TestSmtpServer;
  let http: TestHttpEndpoint;
  let topicPrefix: string;
  const alerts: RunningService[] = [];
  const workers: RunningService[] = [];
  const T = `e2e${randomBytes(2).toString('hex')}`;
  const tenant = { a: `${T}-a`, b: `${T}-b`, c: `${T}-c` };

  beforeAll(async () => {
    kafka = testKafka();
    database = await createTestDatabase();
    sql = new Client({ connectionString: database.url });
    await sql.connect();
    topicPrefix = await createTestTopics(kafka);
    smtp = new TestSmtpServer(await freePort());
    await smtp.start();
    http = new TestHttpEndpoint();
    await http.start();
    const redisPrefix = `${testEnvironment().redisPrefix}${randomBytes(3).toString('hex')}:`;
    const shared = {
      DATABASE_URL: database.url,
      REDIS_KEY_PREFIX: redisPrefix,
      ALERT_ENCRYPTION_KEY: key,
      ALERT_ALLOW_LOOPBACK_HTTP: 'true',
      ALERT_SLACK_ALLOWED_HOSTS: 'hooks.slack.com,127.0.0.1',
    };
    const alertEnv = {
      ...shared,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      ALERT_GROUP_ID: `${topicPrefix}alert`,
      ALERT_SESSION_TIMEOUT_MS: '6000',
      ALERT_API_TOKEN: token,
      ALERT_GROUP_WINDOW_MS: '3000',
      ALERT_EVALUATE_EVERY_MS: '1000',
      ALERT_SWEEP_EVERY_MS: '2000',
    };
    const workerEnv = {
      ...shared,
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      ALERT_DELIVERY_BACKOFF_MS: '100',
      ALERT_DELIVERY_BACKOFF_MAX_MS: '1000',
      ALERT_DELIVERY_TIMEOUT_MS: '3000',
      ALERT_DELIVERY_LEASE_MS: '30000',
    };
    const started = await Promise.all([
      startService('alert', alertEnv),
      startService('alert', alertEnv),
      startService('alert-worker', workerEnv),
      startService('alert-worker', workerEnv),
    ]);
    alerts.push(started[0], started[1]);
    workers.push(started[2], started[3]);
  });

  afterAll(async () => {
    await Promise.all([...alerts, ...workers].map((service) => service.stop()));
    await smtp?.stop();
    await http?.stop();
    await sql?.end();
    await database?.drop();
  });

  async function api(method: string, path: string, body?: unknown, replica = 0, auth = true) {
    const response = await fetch(`${alerts[replica]!.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      body: text ? JSON.parse(text) : null,
    };
  }

  const audited = { actor: 'ops@agentmeter', reason: 'e2e' };
  const mailsTo = (address: string) => smtp.mails.filter((mail) => mail.to.includes(address));
  const admin = 'admin@ops.test';

  async function addContact(body: Record<string, unknown>) {
    const response = await api('POST', '/admin/contacts', { ...audited, ...body });
    expect(response.status).toBe(201);
    return response.body as { id: string; target: string; signing_secret?: string };
  }

  function capHit(tenantId: string, id: string, runId: string, scope: 'run' | 'tenant' = 'run') {
    return {
      key: runId, // events are keyed by their run id (docs/events.md)
      specversion: '1.0',
      id,
      source: 'cost-cap/e2e',
      type: 'cap_hit',
      time: new Date().toISOString(),
      subject: tenantId,
      data: {
        tenant_id: tenantId,
        project_id: 'p',
        run_id: runId,
        scope,
        cap: 'cost',
        limit: '5.000000',
        observed: '5.000000',
      },
    };
  }

  it('refuses admin calls without the token and webhooks to private addresses (SSRF), with clear errors', async () => {
    const anonymous = await api('GET', '/admin/contacts', undefined, 0, false);
    expect(anonymous.status).toBe(401);
    expect(anonymous.type).toContain('application/problem+json');

    const refused = await api('POST', '/admin/contacts', {
      ...audited,
      tenant_id: tenant.a,
      audience: 'owner',
      channel: 'webhook',
      target: 'https://10.0.0.1/hooks/internal',
    });
    expect(refused).toMatchObject({
      status: 400,
      type: expect.stringContaining('application/problem+json'),
      body: { code: 'TARGET_REFUSED', detail: 'webhook URL refused: 10.0.0.1 resolves to 10.0.0.1, a private address' },
    });
    const metadata = await api('POST', '/admin/contacts', {
      ...audited,
      tenant_id: tenant.a,
      audience: 'owner',
      channel: 'webhook',
      target: 'https://169.254.169.254/latest/meta-data',
    });
    expect(metadata.body.detail).toContain('a link-local address');
    const slack = await api('POST', '/admin/contacts', {
      ...audited,
      tenant_id: tenant.a,
      audience: 'owner',
      channel: 'slack',
      target: 'https://evil.example/services/x',
    });
    expect(slack.body.detail).toContain('not an allowed Slack host');
    const invalid = await api('POST', '/admin/contacts', {
      ...audited,
      audience: 'owner',
      channel: 'email',
      target: 'x',
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.detail).toMatch(/tenant_id/);
    const malformed = await fetch(`${alerts[0]!.url}/admin/contacts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{"tenant_id":',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toContain('application/problem+json');
    expect(((await malformed.json()) as { detail: string }).detail).toMatch(/malformed request body/);
  });

  it('delivers each tenant its alerts once on every channel, grouped, through failures, and mutes a muted tenant', async () => {
    await addContact({ tenant_id: tenant.a, audience: 'owner', channel: 'email', target: `owner@${tenant.a}.test` });
    const slack = await addContact({
      tenant_id: tenant.a,
      audience: 'owner',
      channel: 'slack',
      target: http.url(`/services/${tenant.a}/slack`),
    });
    expect(slack.target).toBe('https://127.0.0.1/…'); // the URL never comes back
    const hook = await addContact({
      tenant_id: tenant.a,
      audience: 'owner',
      channel: 'webhook',
      target: http.url(`/hooks/${tenant.a}`),
    });
    expect(hook.signing_secret).toMatch(/^whsec_/);
    await addContact({ tenant_id: null, audience: 'admin', channel: 'email', target: admin });
    await addContact({ tenant_id: tenant.b, audience: 'owner', channel: 'email', target: `owner@${tenant.b}.test` });
    await addContact({
      tenant_id: tenant.c,
      audience: 'owner',
      channel: 'webhook',
      target: http.url(`/hooks/${tenant.c}`),
    });
    const mute = await api('POST', '/admin/mutes', {
      ...audited,
      tenant_id: tenant.b,
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(mute.status).toBe(201);

    http.script(`/services/${tenant.a}/slack`, [
      { status: 500, body: 'internal' },
      { status: 429, headers: { 'retry-after': '1' }, body: 'rate_limited' },
    ]);
    http.script(`/hooks/${tenant.c}`, [{ status: 404, body: 'no such hook' }]);

    await publishEvents(kafka, topicName(topicPrefix, Topics.AgentEvents), [
      capHit(tenant.a, 'a1', 'run-1'),
      capHit(tenant.a, 'a1', 'run-1'), // a duplicate
      capHit(tenant.a, 'a1b', 'run-1'), // the same crossing reported again
      capHit(tenant.a, 'a2', 'run-2'),
      capHit(tenant.a, 'a3', 'run-2', 'tenant'),
      capHit(tenant.b, 'b1', 'run-1'),
      capHit(tenant.c, 'c1', 'run-1'),
    ]);

    // E-mail: one message to the Owner with the three alerts of the group.
    const ownerMails = await eventually(async () => {
      const mails = mailsTo(`owner@${tenant.a}.test`);
      if (mails.length === 0) throw new Error('no mail yet');
      return mails;
    }, 60_000);
    expect(ownerMails).toHaveLength(1);
    expect(ownerMails[0]!.headers.subject).toBe(`[AgentMeter critical] Cap reached: 3 firing (tenant ${tenant.a})`);
    for (const scope of ['run:run-1:cost', 'run:run-2:cost', 'tenant:cost'])
      expect(ownerMails[0]!.text).toContain(scope);

    // Slack: 500, then 429 with Retry-After, then delivered; once.
    await eventually(async () => {
      if (!http.to(`/services/${tenant.a}/slack`).some((r) => r.answered === 200)) throw new Error('slack not yet');
    }, 60_000);
    const slackRequests = http.to(`/services/${tenant.a}/slack`);
    expect(slackRequests.map((r) => r.answered)).toEqual([500, 429, 200]);
    expect(slackRequests[2]!.at - slackRequests[1]!.at).toBeGreaterThanOrEqual(1000);

    // Webhook: once, signed with the secret the API gave.
    const hookRequests = await eventually(async () => {
      const requests = http.to(`/hooks/${tenant.a}`);
      if (requests.length === 0) throw new Error('webhook not yet');
      return requests;
    }, 60_000);
    expect(hookRequests).toHaveLength(1);
    const signed = hookRequests[0]!;
    expect(
      verifyWebhook(
        hook.signing_secret!,
        String(signed.headers[AlertWebhookHeaders.Timestamp]),
        String(signed.headers[AlertWebhookHeaders.Signature]),
        signed.body,
        Math.floor(Date.now() / 1000),
      ),
    ).toBe(true);
    expect(JSON.parse(signed.body).alerts).toHaveLength(3);

    // The Admins hear about the tenant cap breach, once.
    const breach = await eventually(async () => {
      const mails = mailsTo(admin).filter((m) => m.headers.subject?.includes('Tenant cap breached'));
      if (mails.length === 0) throw new Error('no admin mail yet');
      return mails;
    }, 60_000);
    expect(breach).toHaveLength(1);
    expect(breach[0]!.text).toContain(tenant.a);

    // In-app banners: three for the Owners, one for the Admins.
    const banners = await sql.query(
      `SELECT audience, count(*)::int AS n FROM alert_banners WHERE tenant_id = $1 GROUP BY audience ORDER BY audience`,
      [tenant.a],
    );
    expect(banners.rows).toEqual([
      { audience: 'admin', n: 1 },
      { audience: 'owner', n: 3 },
    ]);

    // The muted tenant: recorded, not delivered.
    const muted = await eventually(async () => {
      const response = await api('GET', `/admin/notifications?tenant_id=${tenant.b}`);
      if (response.body.length === 0) throw new Error('no notification yet');
      return response.body as Array<{ outcome: string; muted_by: string }>;
    });
    expect(muted).toEqual([expect.objectContaining({ outcome: 'muted', muted_by: expect.stringMatching(/^mute:/) })]);
    expect(
      (await sql.query(`SELECT count(*)::int AS n FROM alert_deliveries WHERE tenant_id = $1`, [tenant.b])).rows,
    ).toEqual([{ n: 0 }]);
    expect(mailsTo(`owner@${tenant.b}.test`)).toHaveLength(0);
    // Unmuting the way the query API proxies it (the tenant in the body), audited.
    const unmuted = await api('DELETE', `/admin/mutes/${mute.body.id}`, { ...audited, tenant_id: tenant.b });
    expect(unmuted).toMatchObject({ status: 200, body: { id: mute.body.id, cancelled_by: audited.actor } });
    const trail = await api('GET', `/admin/audit?tenant_id=${tenant.b}`);
    expect(trail.body.map((row: { action: string }) => row.action)).toEqual([
      'mute.cancel',
      'mute.create',
      'contact.create',
    ]);

    // The 404 webhook stopped at once and raised the Admin "delivery failures" alert.
    const failures = await eventually(async () => {
      const mails = mailsTo(admin).filter((m) => m.headers.subject?.includes('Alert deliveries failing'));
      if (mails.length === 0) throw new Error('no failure alert yet');
      return mails;
    }, 60_000);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.text).toContain(`tenant ${tenant.c}`);
    expect(http.to(`/hooks/${tenant.c}`)).toHaveLength(1);

    // Every delivery of tenant A is sent, with one audit row per attempt.
    const attempts = await sql.query(
      `SELECT d.channel, a.attempt, a.outcome, a.status_code FROM alert_delivery_attempts a
         JOIN alert_deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = $1 AND d.audience = 'owner'
        ORDER BY d.channel, a.attempt`,
      [tenant.a],
    );
    expect(attempts.rows).toEqual([
      { channel: 'banner', attempt: 1, outcome: 'sent', status_code: null },
      { channel: 'email', attempt: 1, outcome: 'sent', status_code: 250 },
      { channel: 'slack', attempt: 1, outcome: 'retry', status_code: 500 },
      { channel: 'slack', attempt: 2, outcome: 'retry', status_code: 429 },
      { channel: 'slack', attempt: 3, outcome: 'sent', status_code: 200 },
      { channel: 'webhook', attempt: 1, outcome: 'sent', status_code: 200 },
    ]);
  });

  it('audits Alertmanager alerts and routes them once, though both replicas receive them twice', async () => {
    const payload = (status: 'firing' | 'resolved') => ({
      version: '4',
      groupKey: '{}:{alertname="KafkaConsumerLagHigh"}',
      truncatedAlerts: 0,
      status,
      receiver: 'agentmeter',
      groupLabels: { alertname: 'KafkaConsumerLagHigh' },
      commonLabels: { alertname: 'KafkaConsumerLagHigh', severity: 'critical' },
      commonAnnotations: {},
      externalURL: 'http://alertmanager:9093',
      alerts: [
        {
          status,
          labels: { alertname: 'KafkaConsumerLagHigh', severity: 'critical', group: 'agentmeter-ingest' },
          annotations: { summary: 'Ingest consumer lag is growing', description: 'Lag above 10k for 10 minutes.' },
          startsAt: '2026-11-25T10:00:00Z',
          endsAt: status === 'resolved' ? '2026-11-25T10:30:00Z' : '0001-01-01T00:00:00Z',
          generatorURL: 'http://prometheus:9090/graph',
          fingerprint: 'c0ffee',
        },
      ],
    });
    const posts = await Promise.all(
      [0, 1, 0, 1].map((replica) => api('POST', '/observability/alerts', payload('firing'), replica)),
    );
    expect(posts.map((p) => p.status)).toEqual([200, 200, 200, 200]);
    const audit = await sql.query(`SELECT action, target FROM alert_audit WHERE action LIKE 'alertmanager.%'`);
    expect(audit.rows).toEqual(
      Array.from({ length: 4 }, () => ({ action: 'alertmanager.firing', target: 'KafkaConsumerLagHigh:c0ffee' })),
    );

    const firing = await eventually(async () => {
      const mails = mailsTo(admin).filter((m: ReceivedMail) =>
        m.headers.subject?.includes('Ingest consumer lag is growing'),
      );
      if (mails.length === 0) throw new Error('no mail yet');
      return mails;
    }, 60_000);
    expect(firing).toHaveLength(1);
    expect(firing[0]!.headers.subject).toBe('[AgentMeter critical] Ingest consumer lag is growing (platform)');

    await Promise.all([0, 1].map((replica) => api('POST', '/observability/alerts', payload('resolved'), replica)));
    await eventually(async () => {
      const mails = mailsTo(admin).filter((m) => m.headers.subject?.includes('Resolved: Ingest consumer lag'));
      if (mails.length !== 1) throw new Error(`${mails.length} resolved mails`);
    }, 60_000);
    expect(mailsTo(admin).filter((m) => m.headers.subject?.includes('Ingest consumer lag'))).toHaveLength(2);
  });

  it("keeps Alertmanager's groups apart: unrelated alerts arriving together get a message each, under their own title", async () => {
    const group = (alertname: string, summary: string) => ({
      version: '4',
      groupKey: `{}:{alertname="${alertname}"}`,
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'agentmeter',
      groupLabels: { alertname },
      commonLabels: { alertname, severity: 'warning' },
      commonAnnotations: {},
      externalURL: 'http://alertmanager:9093',
      alerts: [
        {
          status: 'firing',
          labels: { alertname, severity: 'warning' },
          annotations: { summary },
          startsAt: '2026-11-25T11:00:00Z',
          endsAt: '0001-01-01T00:00:00Z',
          fingerprint: `f-${alertname}`,
        },
      ],
    });
    const posts = await Promise.all([
      api('POST', '/observability/alerts', group('DiskAlmostFull', 'Disk of broker-1 is 91 % full'), 0),
      api('POST', '/observability/alerts', group('CertificateExpiring', 'TLS certificate expires in 6 days'), 1),
    ]);
    expect(posts.map((p) => p.status)).toEqual([200, 200]);
    const subjects = await eventually(async () => {
      const found = mailsTo(admin)
        .map((m: ReceivedMail) => m.headers.subject ?? '')
        .filter((subject) => /Disk of broker-1|TLS certificate/.test(subject));
      if (found.length < 2) throw new Error(`${found.length} mails`);
      return found;
    }, 60_000);
    expect(subjects.sort()).toEqual([
      '[AgentMeter warning] Disk of broker-1 is 91 % full (platform)',
      '[AgentMeter warning] TLS certificate expires in 6 days (platform)',
    ]);
  });

  it('exposes alert and delivery metrics', async () => {
    const alertMetrics = await (await fetch(`${alerts[0]!.url}/metrics`)).text();
    expect(alertMetrics).toMatch(/agentmeter_alerts_fired_total\{rule="/);
    const workerMetrics = await Promise.all(workers.map(async (w) => (await fetch(`${w.url}/metrics`)).text()));
    const sentEmails = workerMetrics
      .flatMap((text) => [
        ...text.matchAll(/^agentmeter_alert_deliveries_total\{channel="email",outcome="sent"[^}]*\} (\d+)/gm),
      ])
      .reduce((sum, match) => sum + Number(match[1]), 0);
    expect(sentEmails).toBeGreaterThan(0);
    // Every channel and outcome is exported from the start, at 0 until it happens.
    for (const text of workerMetrics) {
      expect(text).toMatch(/^agentmeter_alert_deliveries_total\{channel="banner",outcome="dead"[^}]*\} \d+/m);
    }
    expect(workerMetrics[0]).toMatch(/agentmeter_alert_queue_jobs\{queue="alert-email",state="waiting"/);
    expect(workerMetrics[0]).toMatch(/agentmeter_alert_queue_oldest_age_seconds\{queue="alert-slack"/);
  });
});
