import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { AlertQueues, topicName, Topics } from '@agentmeter/contracts';
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
import { TestHttpEndpoint, TestSmtpServer } from './test-endpoints';

/**
 * Alerts that fire during a mute are delivered once when it ends, one summary per group ("N alerts while
 * muted"), on every channel: whether the mute is cancelled or expires, with two alert replicas, and when the
 * alert service restarts between the mute and its end. Real processes, Kafka, PostgreSQL, Redis, SMTP, HTTP.
 */
describe('muted alerts delivered when the mute ends', () => {
  const token = randomBytes(24).toString('hex');
  const key = randomBytes(32).toString('base64');
  let kafka: Kafka;
  let database: TestDatabase;
  let sql: Client;
  let smtp: TestSmtpServer;
  let http: TestHttpEndpoint;
  let topicPrefix: string;
  let redis: Redis;
  let rulesQueue: Queue;
  let alertEnv: Record<string, string>;
  const alerts: RunningService[] = [];
  const workers: RunningService[] = [];
  const T = `mr${randomBytes(2).toString('hex')}`;
  const audited = { actor: 'ops@agentmeter', reason: 'maintenance' };

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
    redis = new Redis(testEnvironment().redisUrl, { maxRetriesPerRequest: null });
    rulesQueue = new Queue(AlertQueues.Rules, { connection: redis, prefix: `${redisPrefix}bull` });
    const shared = {
      DATABASE_URL: database.url,
      REDIS_KEY_PREFIX: redisPrefix,
      ALERT_ENCRYPTION_KEY: key,
      ALERT_ALLOW_LOOPBACK_HTTP: 'true',
    };
    alertEnv = {
      ...shared,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      ALERT_GROUP_ID: `${topicPrefix}alert`,
      ALERT_SESSION_TIMEOUT_MS: '6000',
      ALERT_API_TOKEN: token,
      ALERT_GROUP_WINDOW_MS: '500',
      ALERT_SWEEP_EVERY_MS: '1000',
    };
    const started = await Promise.all([
      startService('alert', alertEnv),
      startService('alert', alertEnv),
      startService('alert-worker', { ...shared, SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }),
    ]);
    alerts.push(started[0], started[1]);
    workers.push(started[2]);
  });

  afterAll(async () => {
    await Promise.all([...alerts, ...workers].map((service) => service.stop()));
    await rulesQueue?.close();
    redis?.disconnect();
    await smtp?.stop();
    await http?.stop();
    await sql?.end();
    await database?.drop();
  });

  async function api(method: string, path: string, body?: unknown, replica = 0) {
    const response = await fetch(`${alerts[replica]!.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async function contacts(tenantId: string) {
    const email = await api('POST', '/admin/contacts', {
      ...audited,
      tenant_id: tenantId,
      audience: 'owner',
      channel: 'email',
      target: `owner@${tenantId}.test`,
    });
    const hook = await api('POST', '/admin/contacts', {
      ...audited,
      tenant_id: tenantId,
      audience: 'owner',
      channel: 'webhook',
      target: http.url(`/hooks/${tenantId}`),
    });
    expect([email.status, hook.status]).toEqual([201, 201]);
  }

  function capHit(tenantId: string, runId: string) {
    return {
      key: runId,
      specversion: '1.0',
      id: `${tenantId}-${runId}`,
      source: 'cost-cap/e2e',
      type: 'cap_hit',
      time: new Date().toISOString(),
      subject: tenantId,
      data: {
        tenant_id: tenantId,
        project_id: 'p',
        run_id: runId,
        scope: 'run',
        cap: 'cost',
        limit: '5.000000',
        observed: '5.000000',
      },
    };
  }

  /** Fires three run cap alerts for the tenant and waits until all three are recorded as muted. */
  async function fireWhileMuted(tenantId: string, muteId: string) {
    await publishEvents(
      kafka,
      topicName(topicPrefix, Topics.AgentEvents),
      ['r1', 'r2', 'r3'].map((run) => capHit(tenantId, run)),
    );
    const muted = await eventually(async () => {
      const response = await api('GET', `/admin/notifications?tenant_id=${tenantId}`);
      if (response.body.length < 3) throw new Error(`${response.body.length} notifications`);
      return response.body as Array<{ outcome: string; muted_by: string }>;
    }, 60_000);
    expect(muted.map((n) => [n.outcome, n.muted_by])).toEqual(Array(3).fill(['muted', `mute:${muteId}`]));
    // Nothing delivered during the mute.
    expect(await deliveries(tenantId)).toEqual([]);
    expect(mailsTo(tenantId)).toHaveLength(0);
    expect(http.to(`/hooks/${tenantId}`)).toHaveLength(0);
  }

  const mailsTo = (tenantId: string) => smtp.mails.filter((mail) => mail.to.includes(`owner@${tenantId}.test`));
  async function deliveries(tenantId: string) {
    const { rows } = await sql.query<{ channel: string; status: string }>(
      `SELECT channel, status FROM alert_deliveries WHERE tenant_id = $1 ORDER BY channel`,
      [tenantId],
    );
    return rows;
  }

  /** Waits for the summary on both channels, and for every delivery to be sent; returns what was received. */
  async function summaryDelivered(tenantId: string) {
    await eventually(async () => {
      const rows = await deliveries(tenantId);
      if (rows.length !== 3 || rows.some((row) => row.status !== 'sent')) {
        throw new Error(`deliveries: ${JSON.stringify(rows)}`);
      }
    }, 60_000);
    return { mails: mailsTo(tenantId), hooks: http.to(`/hooks/${tenantId}`) };
  }

  /** The mute's end job ran (again) after `since`: a second replay had its chance. */
  async function endJobRanAfter(muteId: string, since: number) {
    await eventually(async () => {
      const job = await rulesQueue.getJob(`mute-end-${muteId}`);
      if (!job || (await job.getState()) !== 'completed' || (job.finishedOn ?? 0) < since) {
        throw new Error('mute end job not run again yet');
      }
    }, 30_000);
  }

  it('delivers one summary per channel when a mute is cancelled, and nothing during it', async () => {
    const tenantId = `${T}-cancel`;
    await contacts(tenantId);
    const mute = await api('POST', '/admin/mutes', {
      ...audited,
      tenant_id: tenantId,
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(mute.status).toBe(201);
    await fireWhileMuted(tenantId, mute.body.id);

    // Unmuted on the other replica.
    expect((await api('DELETE', `/admin/mutes/${mute.body.id}`, { ...audited, tenant_id: tenantId }, 1)).status).toBe(
      200,
    );
    const { mails, hooks } = await summaryDelivered(tenantId);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.headers.subject).toBe(
      `[AgentMeter critical] 3 alerts while muted: Cap reached (tenant ${tenantId})`,
    );
    for (const run of ['r1', 'r2', 'r3']) expect(mails[0]!.text).toContain(`run:${run}:cost`);
    expect(hooks).toHaveLength(1);
    const message = JSON.parse(hooks[0]!.body) as { muted_by: string; alerts: unknown[] };
    expect(message).toMatchObject({ muted_by: `mute:${mute.body.id}` });
    expect(message.alerts).toHaveLength(3);
    expect((await deliveries(tenantId)).map((d) => d.channel)).toEqual(['banner', 'email', 'webhook']);
  });

  it('delivers one summary per channel when a short mute expires, also across a restart of the alert service', async () => {
    const tenantId = `${T}-expiry`;
    await contacts(tenantId);
    const mute = await api('POST', '/admin/mutes', {
      ...audited,
      tenant_id: tenantId,
      ends_at: new Date(Date.now() + 30_000).toISOString(),
    });
    expect(mute.status).toBe(201);
    await fireWhileMuted(tenantId, mute.body.id);

    // Both replicas restart before the end: the replay waits in Redis (a delayed job keyed by the mute).
    await Promise.all(alerts.map((service) => service.stop()));
    alerts.splice(0, 2, ...(await Promise.all([startService('alert', alertEnv), startService('alert', alertEnv)])));

    const { mails, hooks } = await summaryDelivered(tenantId);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.headers.subject).toContain('3 alerts while muted');
    expect(hooks).toHaveLength(1);

    // Cancelling the expired mute asks for its replay again: the claim in PostgreSQL lets nothing through twice.
    const since = Date.now();
    expect((await api('DELETE', `/admin/mutes/${mute.body.id}`, { ...audited, tenant_id: tenantId })).status).toBe(200);
    await endJobRanAfter(mute.body.id, since);
    expect(mailsTo(tenantId)).toHaveLength(1);
    expect(http.to(`/hooks/${tenantId}`)).toHaveLength(1);
    expect((await deliveries(tenantId)).map((d) => d.channel)).toEqual(['banner', 'email', 'webhook']);
    const { rows } = await sql.query(`SELECT replayed_at IS NOT NULL AS replayed FROM alert_mutes WHERE id = $1`, [
      mute.body.id,
    ]);
    expect(rows).toEqual([{ replayed: true }]);
  });
});
