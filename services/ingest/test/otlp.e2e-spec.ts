import { randomBytes } from 'node:crypto';
import { deflateSync, gzipSync } from 'node:zlib';
import { context, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { topicName, Topics } from '@agentmeter/contracts';
import {
  createTestDatabase,
  createTestTopics,
  startService,
  testEnvironment,
  testKafka,
  waitForGroupCaughtUp,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';

/**
 * An agent instrumented with OpenTelemetry alone: its OTLP/HTTP exports (binary protobuf as the SDK encodes
 * it, and OTLP/JSON) go through the ingest process's POST /v1/traces, Kafka and the normal ingest path into
 * llm_calls and tool_calls; an aggregate agent span is not counted on top of its calls, a span without a run
 * is reported as rejected, and exporting the same spans again changes nothing.
 */
describe('OTLP traces to llm_calls and tool_calls', () => {
  const env = testEnvironment();
  const groupId = `${env.runId}-otlp-${randomBytes(3).toString('hex')}`;
  const tenant = `otlp-${randomBytes(3).toString('hex')}`;
  const runs = { planner: `${tenant}-run-1`, validator: `${tenant}-run-2` };
  let db: TestDatabase;
  let kafka: Kafka;
  let eventsTopic: string;
  let ingest: RunningService;
  let protobufBody: Buffer;
  let jsonBody: string;

  beforeAll(async () => {
    protobufBody = Buffer.from(ProtobufTraceSerializer.serializeRequest(await sdkExport(tenant, runs.planner))!);
    jsonBody = JSON.stringify(otlpJson(tenant, runs.validator));
    db = await createTestDatabase();
    kafka = testKafka();
    // One partition: waitForGroupCaughtUp waits for every partition, and two runs' keys may leave one empty.
    const topicPrefix = await createTestTopics(kafka, 1);
    eventsTopic = topicName(topicPrefix, Topics.AgentEvents);
    ingest = await startService('ingest', {
      DATABASE_URL: db.url,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      INGEST_GROUP_ID: groupId,
      INGEST_SESSION_TIMEOUT_MS: '6000',
      OTLP_TOKENS: `${tenant}=${token}`,
    });
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) console.log(ingest?.output());
    await ingest?.stop();
    await db?.drop();
  });

  const token = `otlp-${randomBytes(16).toString('hex')}`;
  const post = (body: Buffer | string, contentType: string, bearer: string | null = token) =>
    fetch(`${ingest.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': contentType, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body,
    });

  async function exportBoth(): Promise<void> {
    const protobuf = await post(protobufBody, 'application/x-protobuf');
    expect(protobuf.status).toBe(200);
    expect(protobuf.headers.get('content-type')).toMatch(/^application\/x-protobuf/);
    expect(ProtobufTraceSerializer.deserializeResponse(new Uint8Array(await protobuf.arrayBuffer()))).toEqual({
      partialSuccess: {
        rejectedSpans: 1,
        errorMessage: '1 span(s) rejected: no run (agentmeter.run_id or run.id) (1)',
      },
    });
    const json = await post(jsonBody, 'application/json');
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({});
  }

  async function rows(): Promise<Record<string, unknown[]>> {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const query = async (sql: string) => (await client.query(sql, [tenant])).rows;
      return {
        llm_calls: await query(
          `SELECT source, run_id, phase, role, attempt, model, provider, prompt_tokens::int, completion_tokens::int,
                  cached_tokens::int, status, span_id IS NOT NULL AS has_span_id
             FROM llm_calls WHERE tenant_id = $1 ORDER BY prompt_tokens`,
        ),
        tool_calls: await query(
          `SELECT source, run_id, tool, mcp_server, cache_key_space, cache_hit, status
             FROM tool_calls WHERE tenant_id = $1 ORDER BY tool`,
        ),
        runs: await query(
          `SELECT run_id, tokens_in::int, tokens_out::int, llm_calls FROM runs WHERE tenant_id = $1 ORDER BY run_id`,
        ),
        events: await query(`SELECT type, count(*)::int AS n FROM events WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`),
      };
    } finally {
      await client.end();
    }
  }

  async function publishedMessages(): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(eventsTopic);
      return offsets.reduce((sum, p) => sum + Number(p.high), 0);
    } finally {
      await admin.disconnect();
    }
  }

  it('stores the LLM and tool calls of a protobuf and a JSON export, answering after Kafka acknowledged', async () => {
    await exportBoth();
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic);

    const stored = await rows();
    const planner = { run_id: runs.planner, phase: 'plan', role: 'planner', attempt: 1, status: 'ok' };
    expect(stored.llm_calls).toEqual([
      {
        ...planner,
        source: 'otlp/planner-agent',
        model: 'gpt-4.1-2025-04-14',
        provider: 'openai',
        prompt_tokens: 100,
        completion_tokens: 10,
        cached_tokens: 40,
        has_span_id: true,
      },
      {
        source: 'otlp/validator-agent',
        run_id: runs.validator,
        phase: 'validate',
        role: 'validator',
        attempt: 2,
        model: 'gpt-4o',
        provider: 'openai',
        prompt_tokens: 128,
        completion_tokens: 64,
        cached_tokens: 0,
        status: 'error',
        has_span_id: true,
      },
      {
        ...planner,
        source: 'otlp/planner-agent',
        model: 'claude-sonnet-4-5',
        provider: 'anthropic',
        prompt_tokens: 200,
        completion_tokens: 20,
        cached_tokens: 0,
        has_span_id: true,
      },
    ]);
    expect(stored.tool_calls).toEqual([
      {
        source: 'otlp/amtp-github-mcp',
        run_id: runs.planner,
        tool: 'repo.tree',
        mcp_server: 'amtp-github-mcp',
        cache_key_space: 'amtp:mcp:tree',
        cache_hit: true,
        status: 'ok',
      },
      {
        source: 'otlp/validator-agent',
        run_id: runs.validator,
        tool: 'web_search',
        mcp_server: null,
        cache_key_space: null,
        cache_hit: null,
        status: 'ok',
      },
    ]);
    // The agent span's own usage (300 + 30) is the sum of its two calls: counted once, not twice.
    expect(stored.runs).toEqual([
      { run_id: runs.planner, tokens_in: 300, tokens_out: 30, llm_calls: 2 },
      { run_id: runs.validator, tokens_in: 128, tokens_out: 64, llm_calls: 1 },
    ]);
    expect(stored.events).toEqual([
      { type: 'llm_call', n: 3 },
      { type: 'tool_call', n: 2 },
    ]);
  });

  it('changes nothing when the same spans are exported again', async () => {
    const before = await rows();
    const published = await publishedMessages();
    await exportBoth();
    // The retry reached Kafka again (5 events); ingest recognized every one by its (source, id).
    expect(await publishedMessages()).toBe(published + 5);
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic);
    expect(await rows()).toEqual(before);
  });

  it('refuses exports without a valid token, and spans of a tenant the token does not cover', async () => {
    expect((await post(jsonBody, 'application/json', null)).status).toBe(401);
    expect((await post(jsonBody, 'application/json', 'not-a-known-token-at-all-123456')).status).toBe(401);
    const foreign = JSON.stringify(otlpJson(`${tenant}-other`, `${tenant}-other-run`));
    const response = await post(foreign, 'application/json');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      // OTLP/JSON encodes int64 as a string.
      partialSuccess: {
        rejectedSpans: expect.stringMatching(/^[1-9]\d*$/),
        errorMessage: expect.stringContaining('tenant not covered by the token'),
      },
    });
  });

  it('refuses what is not an OTLP trace export, and accepts exports above Nest’s 100 kB JSON limit', async () => {
    expect((await post('spans', 'text/plain')).status).toBe(415);
    expect((await post(Buffer.from([0x0a, 0xff, 0x01]), 'application/x-protobuf')).status).toBe(400);
    expect((await post('{"resourceSpans": 5}', 'application/json')).status).toBe(400);

    const spans = Array.from({ length: 2_000 }, (_, i) => ({
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      name: `GET /repos/${i}`,
      startTimeUnixNano: '1764064800000000000',
      attributes: [{ key: 'http.request.method', value: { stringValue: 'GET' } }],
    }));
    const large = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
    expect(large.length).toBeGreaterThan(300_000);
    const response = await post(large, 'application/json');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
  });

  it('reads gzip and deflate bodies, and refuses other encodings, corrupt ones and ones over 10 MiB inflated', async () => {
    const send = (body: Buffer, encoding: string) =>
      fetch(`${ingest.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding, authorization: `Bearer ${token}` },
        body,
      });
    // Spans of a tenant the token does not cover: decoded and rejected, so nothing is stored.
    const foreign = Buffer.from(JSON.stringify(otlpJson(`${tenant}-other`, `${tenant}-other-run`)));
    for (const [encoding, body] of [
      ['gzip', gzipSync(foreign)],
      ['deflate', deflateSync(foreign)],
    ] as const) {
      const response = await send(body, encoding);
      expect({ encoding, status: response.status }).toEqual({ encoding, status: 200 });
      expect(await response.json()).toEqual({
        partialSuccess: {
          rejectedSpans: expect.stringMatching(/^[1-9]\d*$/),
          errorMessage: expect.stringContaining('tenant not covered by the token'),
        },
      });
    }
    expect((await send(foreign, 'br')).status).toBe(415);
    const corrupt = await send(Buffer.from('not gzip at all'), 'gzip');
    expect(corrupt.status).toBe(400);
    expect(corrupt.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const bomb = gzipSync(Buffer.from(`{"resourceSpans":[]${' '.repeat(11 * 1024 * 1024)}}`));
    expect(bomb.length).toBeLessThan(100_000);
    expect((await send(bomb, 'gzip')).status).toBe(413);
  });
});

/** What an agent and the GitHub MCP server, both traced with the OpenTelemetry SDK, export in one request. */
async function sdkExport(tenant: string, run: string): Promise<ReadableSpan[]> {
  const stage = { 'agentmeter.run_id': run, 'agentmeter.phase': 'plan', 'agentmeter.role': 'planner' };
  const started = Date.now() - 60_000;
  const at = (ms: number) => new Date(started + ms);
  const tracer = (serviceName: string) => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName, 'agentmeter.tenant_id': tenant }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    return { tracer: provider.getTracer('agent'), exporter, provider };
  };
  const agent = tracer('planner-agent');
  const mcp = tracer('amtp-github-mcp');
  const span = (
    t: typeof agent,
    name: string,
    attributes: Attributes,
    [start, end]: [number, number],
    parent?: ReturnType<typeof agent.tracer.startSpan>,
  ) => {
    const ctx = parent ? trace.setSpan(context.active(), parent) : context.active();
    const created = t.tracer.startSpan(name, { attributes, startTime: at(start) }, ctx);
    return { created, end: () => created.end(at(end)) };
  };

  const root = span(
    agent,
    'invoke_agent planner',
    {
      ...stage,
      'agentmeter.project_id': 'site',
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.usage.input_tokens': 300,
      'gen_ai.usage.output_tokens': 30,
    },
    [0, 9_000],
  );
  const chat = span(
    agent,
    'chat gpt-4.1',
    {
      ...stage,
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4.1',
      'gen_ai.response.model': 'gpt-4.1-2025-04-14',
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 10,
      'gen_ai.usage.cache_read.input_tokens': 40,
    },
    [100, 2_100],
    root.created,
  );
  const tool = span(
    mcp,
    'repo.tree',
    {
      ...stage,
      'mcp.tool': 'repo.tree',
      'mcp.cache_hit': true,
      'mcp.cache_key': 'amtp:mcp:tree:acme/site@9f2c',
    },
    [2_200, 2_210],
    root.created,
  );
  const valkey = span(mcp, 'valkey.get', { 'db.system.name': 'redis' }, [2_201, 2_203], tool.created);
  const seedContract = span(
    agent,
    'llm.completion',
    {
      ...stage,
      'llm.provider': 'anthropic',
      'llm.model': 'claude-sonnet-4-5',
      'llm.request.type': 'chat',
      'llm.tokens.prompt': 200,
      'llm.tokens.completion': 20,
      'llm.tokens.total': 220,
      'gen_ai.system': 'anthropic',
      'gen_ai.request.model': 'claude-sonnet-4-5',
    },
    [2_300, 8_000],
    root.created,
  );
  const orphan = span(agent, 'chat gpt-4.1-mini', { 'gen_ai.usage.input_tokens': 5 }, [8_100, 8_200]);
  for (const s of [chat, valkey, tool, seedContract, root, orphan]) s.end();
  await Promise.all([agent.provider.forceFlush(), mcp.provider.forceFlush()]);
  return [...agent.exporter.getFinishedSpans(), ...mcp.exporter.getFinishedSpans()];
}

/** OTLP/JSON as an SDK-less client writes it (docs/otlp.md has the same shape as a curl example). */
function otlpJson(tenant: string, run: string): unknown {
  const start = BigInt(Date.now() - 30_000) * 1_000_000n;
  const ns = (ms: number) => String(start + BigInt(ms) * 1_000_000n);
  const string = (key: string, value: string) => ({ key, value: { stringValue: value } });
  const int = (key: string, value: number) => ({ key, value: { intValue: String(value) } });
  const traceId = randomBytes(16).toString('hex');
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            string('service.name', 'validator-agent'),
            string('agentmeter.tenant_id', tenant),
            string('agentmeter.project_id', 'site'),
          ],
        },
        scopeSpans: [
          {
            scope: { name: 'validator' },
            spans: [
              {
                traceId,
                spanId: randomBytes(8).toString('hex'),
                name: 'chat gpt-4o',
                kind: 3,
                startTimeUnixNano: ns(0),
                endTimeUnixNano: ns(1_200),
                attributes: [
                  string('agentmeter.run_id', run),
                  string('agentmeter.phase', 'validate'),
                  string('agentmeter.role', 'validator'),
                  int('agentmeter.attempt', 2),
                  string('gen_ai.system', 'openai'),
                  string('gen_ai.request.model', 'gpt-4o'),
                  int('gen_ai.usage.prompt_tokens', 128),
                  int('gen_ai.usage.completion_tokens', 64),
                ],
                status: { code: SpanStatusCode.ERROR, message: 'context length exceeded' },
              },
              {
                traceId,
                spanId: randomBytes(8).toString('hex'),
                name: 'execute_tool web_search',
                kind: 1,
                startTimeUnixNano: ns(1_300),
                endTimeUnixNano: ns(1_900),
                attributes: [
                  string('agentmeter.run_id', run),
                  string('agentmeter.phase', 'validate'),
                  string('agentmeter.role', 'validator'),
                  int('agentmeter.attempt', 2),
                  string('gen_ai.operation.name', 'execute_tool'),
                  string('gen_ai.tool.name', 'web_search'),
                ],
              },
            ],
          },
        ],
      },
    ],
  };
}
