import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka } from 'kafkajs';
import { topicName, Topics } from '@agentmeter/contracts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  freePort,
  publishRaw,
  startService,
  testEnvironment,
  testKafka,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';
import { TestSmtpServer } from './test-endpoints';

/**
 * One trace from an agent's event to the alert e-mail it caused, across every hop: the event (published with a
 * W3C traceparent) → cost-cap's spend consumer → its outbox (a cap_hit row, published later with the stored
 * context) → alert's event consumer (the evaluation) → the group's flush job (BullMQ) → alert-worker's e-mail
 * job (BullMQ) → SMTP. Real processes from dist/, real Kafka, PostgreSQL, Redis and SMTP; the three services
 * export their spans over OTLP/HTTP to an in-process receiver that records them.
 */
describe('trace context from an event to its alert e-mail', () => {
  const apiToken = randomBytes(24).toString('hex');
  const costCapToken = randomBytes(24).toString('hex');
  let kafka: Kafka;
  let database: TestDatabase;
  let collector: Server;
  const received: ExportedSpan[] = [];
  let smtp: TestSmtpServer;
  let topicPrefix: string;
  const services: RunningService[] = [];
  const tenant = `tr${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    collector = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.url === '/v1/traces') received.push(...spansOf(Buffer.concat(chunks).toString('utf8')));
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    collector.listen(0, '127.0.0.1');
    await once(collector, 'listening');
    kafka = testKafka();
    database = await createTestDatabase();
    topicPrefix = await createTestTopics(kafka);
    smtp = new TestSmtpServer(await freePort());
    await smtp.start();
    const redisPrefix = `${testEnvironment().redisPrefix}${randomBytes(3).toString('hex')}:`;
    const tracing = {
      OTEL_SDK_DISABLED: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const shared = { ...tracing, DATABASE_URL: database.url, REDIS_KEY_PREFIX: redisPrefix };
    services.push(
      ...(await Promise.all([
        startService('cost-cap', {
          ...shared,
          KAFKA_TOPIC_PREFIX: topicPrefix,
          COST_CAP_GROUP_ID: `${topicPrefix}cost-cap`,
          COST_CAP_API_TOKEN: costCapToken,
        }),
        startService('alert', {
          ...shared,
          KAFKA_TOPIC_PREFIX: topicPrefix,
          ALERT_GROUP_ID: `${topicPrefix}alert`,
          ALERT_API_TOKEN: apiToken,
          ALERT_GROUP_WINDOW_MS: '500',
        }),
        startService('alert-worker', { ...shared, SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }),
      ])),
    );
  });

  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await smtp?.stop();
    collector?.close();
    await database?.drop();
  });

  async function call(service: RunningService, token: string, method: string, path: string, body: unknown) {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    return response.status;
  }

  it('puts the cost evaluation, the alert evaluation, the flush job and the e-mail delivery in the trace of the event', async () => {
    const [costCap, alert] = services as [RunningService, RunningService, RunningService];
    const audited = { actor: 'ops@agentmeter', reason: 'trace e2e' };
    expect(
      await call(costCap, costCapToken, 'PUT', `/v1/tenants/${tenant}/caps`, {
        ...audited,
        run: { max_cost_usd: '0.20' },
      }),
    ).toBe(200);
    const owner = `owner@${tenant}.test`;
    expect(
      await call(alert, apiToken, 'POST', '/admin/contacts', {
        ...audited,
        tenant_id: tenant,
        audience: 'owner',
        channel: 'email',
        target: owner,
      }),
    ).toBe(201);

    // One LLM call over the run's $0.20 cap, from an agent span of its own trace.
    const traceId = randomBytes(16).toString('hex');
    const event = {
      specversion: '1.0',
      id: `llm-${randomBytes(4).toString('hex')}`,
      source: 'coordinator/trace-e2e',
      type: 'llm_call',
      time: new Date().toISOString(),
      subject: tenant,
      data: {
        tenant_id: tenant,
        project_id: 'site',
        run_id: 'run-1',
        phase: 'implement',
        role: 'implementer',
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 100,
        completion_tokens: 10,
        latency_ms: 5,
        cost_usd: '0.300000',
      },
    };
    await publishRaw(kafka, topicName(topicPrefix, Topics.AgentEvents), [
      {
        key: 'run-1',
        value: JSON.stringify(event),
        headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
      },
    ]);

    const mail = await eventually(async () => {
      const found = smtp.mails.find((m) => m.to.includes(owner) && m.headers.subject?.includes('Cap reached'));
      if (!found) throw new Error('no cap mail yet');
      return found;
    }, 60_000);
    expect(mail.headers.subject).toContain(`tenant ${tenant}`);

    const eventsTopic = topicName(topicPrefix, Topics.AgentEvents);
    const spans = await eventually(async () => {
      const ofTrace = received.filter((span) => span.traceId === traceId);
      const has = (service: string, name: string) => ofTrace.some((s) => s.service === service && s.name === name);
      const wanted: Array<[string, string]> = [
        ['agentmeter-cost-cap', `${eventsTopic} process`], // the spend evaluation
        ['agentmeter-alert', `${eventsTopic} process`], // the alert evaluation of cost-cap's cap_hit
        ['agentmeter-alert', 'alert-rules process'], // the group's flush job
        ['agentmeter-alert-worker', 'alert-email process'], // the e-mail delivery job
      ];
      const missing = wanted.filter(([service, name]) => !has(service, name));
      if (missing.length > 0) throw new Error(`missing spans: ${missing.map((m) => m.join(' ')).join(', ')}`);
      return ofTrace;
    }, 30_000);

    // Each hop is a child of the one before it (parent = the span that enqueued or published).
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const ancestry = (span: ExportedSpan): string[] => {
      const chain: string[] = [];
      for (let at: ExportedSpan | undefined = span; at; at = byId.get(at.parentSpanId))
        chain.push(`${at.service} ${at.name}`);
      return chain;
    };
    const delivery = spans.find((s) => s.service === 'agentmeter-alert-worker' && s.name === 'alert-email process')!;
    const hops = ancestry(delivery).filter((hop) => hop.endsWith(' process'));
    expect(hops).toEqual([
      'agentmeter-alert-worker alert-email process',
      'agentmeter-alert alert-rules process',
      `agentmeter-alert ${eventsTopic} process`,
      `agentmeter-cost-cap ${eventsTopic} process`,
    ]);
    // The e-mail job's span is where the message was handed to SMTP: the delivery marked sent belongs to it.
    expect(delivery.kind).toBe(5); // SPAN_KIND_CONSUMER
    expect(delivery.attributes['messaging.system']).toBe('bullmq');
  });
});

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}

/** The spans of one OTLP/HTTP JSON export request, with their service's name. */
function spansOf(payload: string): ExportedSpan[] {
  const json = JSON.parse(payload) as {
    resourceSpans?: Array<{
      resource?: { attributes?: Array<{ key: string; value: OtlpValue }> };
      scopeSpans?: Array<{
        spans?: Array<{
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind: number;
          attributes?: Array<{ key: string; value: OtlpValue }>;
        }>;
      }>;
    }>;
  };
  return (json.resourceSpans ?? []).flatMap((r) => {
    const service = r.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
    return (r.scopeSpans ?? []).flatMap((s) =>
      (s.spans ?? []).map((span) => ({
        service,
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId ?? '',
        name: span.name,
        kind: span.kind,
        attributes: Object.fromEntries(
          (span.attributes ?? []).map((a) => [a.key, a.value.stringValue ?? a.value.intValue]),
        ),
      })),
    );
  });
}
