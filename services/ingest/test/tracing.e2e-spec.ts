import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { topicName, Topics } from '@agentmeter/contracts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  generateWorkload,
  publishRaw,
  startService,
  testKafka,
  waitForGroupCaughtUp,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';

/**
 * Trace context crosses Kafka: an event published with a W3C traceparent header is processed by ingest
 * in a span of the same trace, and the database work hangs below it. Spans are exported over OTLP/HTTP
 * to a real HTTP endpoint that records them.
 */
describe('trace context through Kafka headers', () => {
  let collector: Server;
  const received: string[] = [];
  let db: TestDatabase;
  let ingest: RunningService;

  beforeAll(async () => {
    collector = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (request.url === '/v1/traces') received.push(body);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    collector.listen(0, '127.0.0.1');
    await once(collector, 'listening');
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await ingest?.stop();
    collector.close();
    await db.drop();
  });

  it('continues the producer trace in ingest, down to the database statements', async () => {
    const kafka = testKafka();
    const topicPrefix = await createTestTopics(kafka, 1);
    const groupId = `${topicPrefix}ingest`;
    ingest = await startService('ingest', {
      DATABASE_URL: db.url,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      INGEST_GROUP_ID: groupId,
      OTEL_SDK_DISABLED: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });

    const [traceId, ...others] = [1, 2, 3].map(() => randomBytes(16).toString('hex'));
    const events = generateWorkload({
      seed: 1,
      tenants: 1,
      projectsPerTenant: 1,
      runsPerProject: 1,
      start: new Date('2026-11-25T00:00:00Z'),
      prefix: `tr${randomBytes(2).toString('hex')}`,
    }).events.slice(0, 3);
    const topic = topicName(topicPrefix, Topics.AgentEvents);
    // One batch of three events from three producer traces: the batch span continues the first and links
    // the other two.
    await publishRaw(
      kafka,
      topic,
      events.map(({ key, ...body }, i) => ({
        key,
        value: JSON.stringify(body),
        headers: { traceparent: `00-${[traceId, ...others][i]}-${randomBytes(8).toString('hex')}-01` },
      })),
    );
    await waitForGroupCaughtUp(kafka, groupId, topic);

    const spans = await eventually(async () => {
      const all = received.flatMap((payload) => spansOf(payload)).filter((span) => span.traceId === traceId);
      if (!all.some((span) => span.name.includes(topic)) || !all.some((span) => span.attributes.includes('db.'))) {
        throw new Error(`spans of the trace so far: ${all.map((s) => s.name).join(', ')}`);
      }
      return all;
    }, 30_000);
    const consumer = spans.find((span) => span.name.includes(topic));
    expect(consumer?.kind).toBe(5); // SPAN_KIND_CONSUMER
    expect(consumer?.links.sort()).toEqual(others.sort());
  });
});

interface ExportedSpan {
  traceId: string;
  name: string;
  kind: number;
  attributes: string;
  links: string[];
}

function spansOf(payload: string): ExportedSpan[] {
  const json = JSON.parse(payload) as {
    resourceSpans?: Array<{
      scopeSpans?: Array<{
        spans?: Array<{
          traceId: string;
          name: string;
          kind: number;
          attributes?: Array<{ key: string }>;
          links?: Array<{ traceId: string }>;
        }>;
      }>;
    }>;
  };
  return (json.resourceSpans ?? []).flatMap((r) =>
    (r.scopeSpans ?? []).flatMap((s) =>
      (s.spans ?? []).map((span) => ({
        traceId: span.traceId,
        name: span.name,
        kind: span.kind,
        attributes: (span.attributes ?? []).map((a) => a.key).join(' '),
        links: (span.links ?? []).map((link) => link.traceId),
      })),
    ),
  );
}
