import { Queue } from 'bullmq';
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { DataSource } from 'typeorm';
import {
  ALERT_DELIVERY_BACKOFF,
  ALERT_DELIVERY_QUEUES,
  AlertJobNames,
  AlertMessage,
  AlertWebhookHeaders,
  type AlertDeliverJob,
  type AlertMessageItem,
  type DeliveryChannel,
} from '@agentmeter/contracts';
import { createDataSource } from '@agentmeter/database';
import { Clock, renderGroupedMessage, SecretBox, verifyWebhook } from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, eventually, freePort, testEnvironment, type TestDatabase } from '@agentmeter/testing';
import { EmailSender } from '../src/channels/email.sender';
import { SafeHttp } from '../src/channels/safe-http';
import { PagerDutySender } from '../src/channels/pagerduty.sender';
import { SlackSender } from '../src/channels/slack.sender';
import { WebhookSender } from '../src/channels/webhook.sender';
import { loadConfig, type WorkerConfig } from '../src/config';
import { DeliveryProcessor } from '../src/delivery/delivery.processor';
import { DeliveryRepository } from '../src/delivery/delivery.repository';
import { DeliveryService } from '../src/delivery/delivery.service';
import { WorkerMetrics } from '../src/worker.metrics';
import { TestHttpEndpoint, TestSmtpServer } from './test-endpoints';

/**
 * alert-worker against a real SMTP server, a real HTTP endpoint (Slack and webhooks), Redis and PostgreSQL:
 * each delivery arrives once with the right content, retries back off (honouring Retry-After), permanent
 * failures stop, and two worker processes with duplicated jobs still deliver once.
 */
describe('alert-worker deliveries', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);
  let database: TestDatabase;
  let db: DataSource;
  let smtp: TestSmtpServer;
  let http: TestHttpEndpoint;
  let config: WorkerConfig;
  let connection: Redis;
  let queues: Record<DeliveryChannel, Queue<AlertDeliverJob>>;
  const metrics = new WorkerMetrics();
  const processors: DeliveryProcessor[] = [];
  const senders: EmailSender[] = [];
  const sources: DataSource[] = [];

  async function startWorker(): Promise<DeliveryProcessor> {
    const source = await createDataSource({ url: database.url, poolSize: 4 }).initialize();
    sources.push(source);
    const logger = createLogger('alert-worker-test', 'silent');
    const clock = new Clock();
    const safe = new SafeHttp(config);
    const service = new DeliveryService(
      config,
      logger,
      new DeliveryRepository(source),
      senders[senders.push(new EmailSender(config)) - 1]!,
      new SlackSender(config, safe, clock),
      new WebhookSender(safe, clock),
      new PagerDutySender(safe, clock),
      metrics,
      clock,
    );
    const processor = new DeliveryProcessor(config, logger, service, metrics);
    await processor.onApplicationBootstrap();
    processors.push(processor);
    return processor;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 4 }).initialize();
    smtp = new TestSmtpServer(await freePort());
    await smtp.start();
    http = new TestHttpEndpoint();
    await http.start();
    const test = testEnvironment();
    const prefix = `${test.redisPrefix}${randomBytes(3).toString('hex')}:`;
    config = loadConfig({
      DATABASE_URL: database.url,
      REDIS_URL: test.redisUrl,
      REDIS_KEY_PREFIX: prefix,
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      ALERT_ENCRYPTION_KEY: key.toString('base64'),
      ALERT_ALLOW_LOOPBACK_HTTP: 'true',
      ALERT_SLACK_ALLOWED_HOSTS: 'hooks.slack.com,127.0.0.1',
      ALERT_DELIVERY_BACKOFF_MS: '50',
      ALERT_DELIVERY_BACKOFF_MAX_MS: '400',
      ALERT_DELIVERY_TIMEOUT_MS: '2000',
      ALERT_DELIVERY_LEASE_MS: '10000',
    });
    connection = new Redis(test.redisUrl, { maxRetriesPerRequest: null });
    queues = Object.fromEntries(
      Object.entries(ALERT_DELIVERY_QUEUES).map(([channel, name]) => [
        channel,
        new Queue<AlertDeliverJob>(name, { connection, prefix: `${prefix}bull` }),
      ]),
    ) as typeof queues;
    await startWorker();
    await startWorker(); // two worker processes' worth of consumers on the same queues
  });

  afterAll(async () => {
    await Promise.all(processors.map((p) => p.onApplicationShutdown()));
    for (const sender of senders) sender.onApplicationShutdown();
    await Promise.all(Object.values(queues).map((q) => q.close()));
    connection.disconnect();
    await smtp.stop();
    await http.stop();
    await Promise.all(sources.map((s) => s.destroy()));
    await db.destroy();
    await database.drop();
  });

  const item = (scope: string, over: Partial<AlertMessageItem> = {}): AlertMessageItem => ({
    alert_key: `owner.cap_hit|acme|${scope}|`,
    rule: 'owner.cap_hit',
    kind: 'firing',
    severity: 'critical',
    scope,
    period: '',
    title: 'Cap reached',
    body: `The cost cap of ${scope} is reached: 5.000000 of 5.000000.`,
    at: new Date().toISOString(),
    ...over,
  });

  interface Seeded {
    deliveryId: string;
    contactId: string | null;
    message: AlertMessage;
    secret: string | null;
  }

  /** A contact (URLs encrypted as the alert service stores them), a flushed group and its pending delivery. */
  async function seed(
    channel: DeliveryChannel,
    target: string | null,
    items: AlertMessageItem[] = [item('run:r1:cost')],
    tenantId = 'acme',
  ): Promise<Seeded> {
    const contactId = channel === 'banner' ? null : randomUUID();
    const secret =
      channel === 'webhook'
        ? `whsec_${randomBytes(16).toString('hex')}`
        : channel === 'pagerduty'
          ? randomBytes(16).toString('hex')
          : null;
    if (contactId) {
      await db.query(
        `INSERT INTO alert_contacts (id, tenant_id, audience, channel, email, url_encrypted, url_host, secret_encrypted, created_by)
         VALUES ($1, $2, 'owner', $3, $4, $5, $6, $7, 'test')`,
        [
          contactId,
          tenantId,
          channel,
          channel === 'email' ? target : null,
          channel === 'email' ? null : box.seal(target!, `contact:${contactId}:url`),
          channel === 'email' ? null : new URL(target!).hostname,
          secret ? box.seal(secret, `contact:${contactId}:secret`) : null,
        ],
      );
    }
    const groupId = randomUUID();
    await db.query(
      `INSERT INTO alert_groups (id, tenant_id, rule, audience, status, flush_at) VALUES ($1, $2, 'owner.cap_hit', 'owner', 'flushed', now())`,
      [groupId, tenantId],
    );
    const deliveryId = randomUUID();
    const message = renderGroupedMessage({ deliveryId, tenantId, rule: 'owner.cap_hit', audience: 'owner', items });
    await db.query(
      `INSERT INTO alert_deliveries (id, group_id, tenant_id, audience, rule, channel, contact_id, status, message)
       VALUES ($1, $2, $3, 'owner', 'owner.cap_hit', $4, $5, 'pending', $6)`,
      [deliveryId, groupId, tenantId, channel, contactId, JSON.stringify(message)],
    );
    return { deliveryId, contactId, message, secret };
  }

  async function enqueue(channel: DeliveryChannel, deliveryId: string, jobId = deliveryId, attempts = 5) {
    await queues[channel].add(
      AlertJobNames.Deliver,
      { name: AlertJobNames.Deliver, deliveryId },
      { jobId, attempts, backoff: { type: ALERT_DELIVERY_BACKOFF }, removeOnComplete: false, removeOnFail: false },
    );
  }

  async function delivery(deliveryId: string) {
    const [row] = await db.query(`SELECT status, attempts, last_error FROM alert_deliveries WHERE id = $1`, [
      deliveryId,
    ]);
    return row as { status: string; attempts: number; last_error: string | null };
  }

  async function attempts(deliveryId: string) {
    return db.query(
      `SELECT attempt, outcome, status_code, retry_after_ms FROM alert_delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`,
      [deliveryId],
    ) as Promise<
      Array<{ attempt: number; outcome: string; status_code: number | null; retry_after_ms: number | null }>
    >;
  }

  async function settled(deliveryId: string, status: 'sent' | 'dead') {
    await eventually(async () => {
      const row = await delivery(deliveryId);
      if (row.status !== status) throw new Error(`delivery ${deliveryId} is ${row.status}, waiting for ${status}`);
    });
  }

  it('e-mails the contact once, with the grouped content', async () => {
    const seeded = await seed('email', 'owner@acme.test', [item('run:r1:cost'), item('run:r2:cost')]);
    await enqueue('email', seeded.deliveryId);
    await settled(seeded.deliveryId, 'sent');
    const mails = smtp.mails.filter((m) => m.headers['x-agentmeter-delivery'] === seeded.deliveryId);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ from: 'alerts@agentmeter.local', to: ['owner@acme.test'] });
    expect(mails[0]!.headers.subject).toBe('[AgentMeter critical] Cap reached: 2 firing (tenant acme)');
    expect(mails[0]!.headers['message-id']).toBe(`<${seeded.deliveryId}@agentmeter>`);
    expect(mails[0]!.text).toContain('The cost cap of run:r1:cost is reached');
    expect(mails[0]!.text).toContain('The cost cap of run:r2:cost is reached');
    expect(await attempts(seeded.deliveryId)).toEqual([
      { attempt: 1, outcome: 'sent', status_code: 250, retry_after_ms: null },
    ]);
  });

  it('delivers once although two workers run ten duplicate jobs of the same delivery', async () => {
    const seeded = await seed('email', 'dup@acme.test');
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => enqueue('email', seeded.deliveryId, `${seeded.deliveryId}-${i}`)),
    );
    await settled(seeded.deliveryId, 'sent');
    await eventually(async () => {
      const counts = await queues.email.getJobCounts('waiting', 'active', 'delayed');
      const left = (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0);
      if (left > 0) throw new Error(`jobs left: ${JSON.stringify(counts)}`);
    });
    expect(smtp.mails.filter((m) => m.headers['x-agentmeter-delivery'] === seeded.deliveryId)).toHaveLength(1);
    expect(await attempts(seeded.deliveryId)).toHaveLength(1);
  });

  it('signs webhooks: HMAC-SHA256 over timestamp.body verifies with the contact secret', async () => {
    const seeded = await seed('webhook', http.url('/hooks/signed'));
    await enqueue('webhook', seeded.deliveryId);
    await settled(seeded.deliveryId, 'sent');
    const [request] = http.to('/hooks/signed');
    expect(http.to('/hooks/signed')).toHaveLength(1);
    const headers = request!.headers;
    expect(headers[AlertWebhookHeaders.Delivery]).toBe(seeded.deliveryId);
    expect(headers[AlertWebhookHeaders.Attempt]).toBe('1');
    expect(
      verifyWebhook(
        seeded.secret!,
        String(headers[AlertWebhookHeaders.Timestamp]),
        String(headers[AlertWebhookHeaders.Signature]),
        request!.body,
        Math.floor(Date.now() / 1000),
      ),
    ).toBe(true);
    expect(
      verifyWebhook(
        'another-secret',
        String(headers[AlertWebhookHeaders.Timestamp]),
        String(headers[AlertWebhookHeaders.Signature]),
        request!.body,
        Math.floor(Date.now() / 1000),
      ),
    ).toBe(false);
    expect(AlertMessage.parse(JSON.parse(request!.body))).toEqual(seeded.message);
  });

  it('pages PagerDuty (Events v2): a trigger per firing alert, a resolve per resolved one, keyed by the alert', async () => {
    const resolved = item('run:r2:cost', { kind: 'resolved', alert_key: 'owner.cap_hit|acme|run:r2:cost|' });
    const seeded = await seed('pagerduty', http.url('/v2/enqueue'), [item('run:r1:cost'), resolved]);
    await enqueue('pagerduty', seeded.deliveryId);
    await settled(seeded.deliveryId, 'sent');
    const events = http.to('/v2/enqueue').map((r) => JSON.parse(r.body));
    expect(events).toEqual([
      {
        routing_key: seeded.secret,
        event_action: 'trigger',
        dedup_key: 'owner.cap_hit|acme|run:r1:cost|',
        payload: expect.objectContaining({
          summary: 'Cap reached',
          source: 'agentmeter/acme',
          severity: 'critical',
          component: 'run:r1:cost',
          class: 'owner.cap_hit',
          custom_details: expect.objectContaining({
            body: 'The cost cap of run:r1:cost is reached: 5.000000 of 5.000000.',
          }),
        }),
      },
      { routing_key: seeded.secret, event_action: 'resolve', dedup_key: 'owner.cap_hit|acme|run:r2:cost|' },
    ]);
    expect(await attempts(seeded.deliveryId)).toEqual([expect.objectContaining({ attempt: 1, outcome: 'sent' })]);
  });

  it('Slack answering 500, then 429 with Retry-After, then 200: delivered once, after the wait', async () => {
    http.script('/services/T1/B1/slack', [
      { status: 500, body: 'oops' },
      { status: 429, headers: { 'retry-after': '2' }, body: 'rate_limited' },
    ]);
    const seeded = await seed('slack', http.url('/services/T1/B1/slack'));
    await enqueue('slack', seeded.deliveryId);
    await settled(seeded.deliveryId, 'sent');
    const requests = http.to('/services/T1/B1/slack');
    expect(requests.map((r) => r.answered)).toEqual([500, 429, 200]);
    // Honoured: the third request came at least Retry-After after the 429 was answered.
    expect(requests[2]!.at - requests[1]!.at).toBeGreaterThanOrEqual(2000);
    expect(JSON.parse(requests[2]!.body)).toMatchObject({ text: '[AgentMeter critical] Cap reached (tenant acme)' });
    expect(await attempts(seeded.deliveryId)).toEqual([
      { attempt: 1, outcome: 'retry', status_code: 500, retry_after_ms: null },
      { attempt: 2, outcome: 'retry', status_code: 429, retry_after_ms: 2000 },
      { attempt: 3, outcome: 'sent', status_code: 200, retry_after_ms: null },
    ]);
  });

  it('stops at a permanent failure (404): one attempt, dead-lettered', async () => {
    http.script('/hooks/gone', [{ status: 404, body: 'no such hook' }]);
    const seeded = await seed('webhook', http.url('/hooks/gone'));
    await enqueue('webhook', seeded.deliveryId);
    await settled(seeded.deliveryId, 'dead');
    await eventually(async () => {
      const state = await (await queues.webhook.getJob(seeded.deliveryId))?.getState();
      if (state !== 'failed') throw new Error(`job is ${state}`);
    });
    expect(http.to('/hooks/gone')).toHaveLength(1);
    expect(await attempts(seeded.deliveryId)).toEqual([
      { attempt: 1, outcome: 'dead', status_code: 404, retry_after_ms: null },
    ]);
    expect((await delivery(seeded.deliveryId)).last_error).toContain('HTTP 404');
  });

  it('dead-letters after the last attempt of a failure that never ends', async () => {
    http.script(
      '/hooks/down',
      Array.from({ length: 10 }, () => ({ status: 503 })),
    );
    const seeded = await seed('webhook', http.url('/hooks/down'));
    await enqueue('webhook', seeded.deliveryId, seeded.deliveryId, 3);
    await settled(seeded.deliveryId, 'dead');
    expect((await attempts(seeded.deliveryId)).map((a) => a.outcome)).toEqual(['retry', 'retry', 'dead']);
    expect(http.to('/hooks/down')).toHaveLength(3);
  });

  it('refuses a webhook that points at a private address when it is delivered (SSRF), permanently', async () => {
    const seeded = await seed('webhook', 'http://10.0.0.1/hook');
    await enqueue('webhook', seeded.deliveryId);
    await settled(seeded.deliveryId, 'dead');
    expect((await delivery(seeded.deliveryId)).last_error).toBe(
      'webhook URL refused: 10.0.0.1 resolves to 10.0.0.1, a private address',
    );
    expect(await attempts(seeded.deliveryId)).toHaveLength(1);
  });

  it('writes in-app banners', async () => {
    const seeded = await seed(
      'banner',
      null,
      [item('run:b1:cost'), item('run:b2:cost', { severity: 'warning' })],
      'bannered',
    );
    await enqueue('banner', seeded.deliveryId);
    await settled(seeded.deliveryId, 'sent');
    const banners = await db.query(
      `SELECT tenant_id, audience, rule, severity, title, resolved_at FROM alert_banners WHERE tenant_id = 'bannered' ORDER BY alert_key`,
    );
    expect(banners).toEqual([
      {
        tenant_id: 'bannered',
        audience: 'owner',
        rule: 'owner.cap_hit',
        severity: 'critical',
        title: 'Cap reached',
        resolved_at: null,
      },
      {
        tenant_id: 'bannered',
        audience: 'owner',
        rule: 'owner.cap_hit',
        severity: 'warning',
        title: 'Cap reached',
        resolved_at: null,
      },
    ]);
  });

  it('SMTP down for a while, then back: delivered exactly once', async () => {
    await smtp.stop();
    const seeded = await seed('email', 'later@acme.test');
    await enqueue('email', seeded.deliveryId, seeded.deliveryId, 200);
    await eventually(async () => {
      const retries = (await attempts(seeded.deliveryId)).filter((a) => a.outcome === 'retry');
      if (retries.length < 2) throw new Error(`${retries.length} retries so far`);
    });
    await smtp.start(); // the same port
    await settled(seeded.deliveryId, 'sent');
    expect(smtp.mails.filter((m) => m.headers['x-agentmeter-delivery'] === seeded.deliveryId)).toHaveLength(1);
    const outcomes = (await attempts(seeded.deliveryId)).map((a) => a.outcome);
    expect(outcomes.at(-1)).toBe('sent');
    expect(outcomes.filter((o) => o === 'sent')).toHaveLength(1);
  });
});
