import { randomBytes } from 'node:crypto';
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
 * Token counts exact whatever the export batching (docs/otlp.md "Aggregate spans"). The verification trace puts
 * usage on every LLM span: a root llm.completion (128/64) over llm.inference (128/64) and llm.response.parse
 * (100/50). The calls are the two leaves, 228/114; counting the root too gives 356/178. The same trace goes
 * through ingest's POST /v1/traces as one request, and as one request per span (the SDK's simple span
 * processor) in both orders, each request stored before the next is sent; every run ends with the same exact
 * totals in runs, stages, llm_calls and both usage rollups.
 */
describe('OTLP usage counted once whatever the export batching', () => {
  const env = testEnvironment();
  const groupId = `${env.runId}-otlpagg-${randomBytes(3).toString('hex')}`;
  const tenant = `otlpagg-${randomBytes(3).toString('hex')}`;
  const token = `otlp-${randomBytes(16).toString('hex')}`;
  let db: TestDatabase;
  let kafka: Kafka;
  let eventsTopic: string;
  let ingest: RunningService;

  beforeAll(async () => {
    db = await createTestDatabase();
    kafka = testKafka();
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

  async function exportSpans(spans: unknown[]): Promise<void> {
    const body = {
      resourceSpans: [
        {
          resource: {
            attributes: [
              { key: 'service.name', value: { stringValue: 'amtp-agent' } },
              { key: 'agentmeter.tenant_id', value: { stringValue: tenant } },
            ],
          },
          scopeSpans: [{ scope: { name: 'otel-verify' }, spans }],
        },
      ],
    };
    const response = await fetch(`${ingest.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
  }

  /** Sends the requests one after the other, each stored (the group caught up) before the next. */
  async function exportInTurn(requests: unknown[][]): Promise<void> {
    for (const spans of requests) {
      await exportSpans(spans);
      await waitForGroupCaughtUp(kafka, groupId, eventsTopic);
    }
  }

  async function query<T>(sql: string, params: unknown[]): Promise<T[]> {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  const runs = {
    oneRequest: `${tenant}-one`,
    childrenFirst: `${tenant}-children-first`,
    rootFirst: `${tenant}-root-first`,
    rootFirstUnpaced: `${tenant}-root-first-unpaced`,
  };

  it('counts the leaves once, 228/114, in one request and in separate requests in either order', async () => {
    const one = seedTrace(runs.oneRequest);
    await exportInTurn([[one.root, one.inference, one.parse]]);
    const childrenFirst = seedTrace(runs.childrenFirst);
    await exportInTurn([[childrenFirst.inference], [childrenFirst.parse], [childrenFirst.root]]);
    const rootFirst = seedTrace(runs.rootFirst);
    await exportInTurn([[rootFirst.root], [rootFirst.inference], [rootFirst.parse]]);
    // Sent back to back: the requests may share an ingest batch or not; the totals cannot tell.
    const unpaced = seedTrace(runs.rootFirstUnpaced);
    for (const spans of [[unpaced.root], [unpaced.inference], [unpaced.parse]]) await exportSpans(spans);
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic);

    const runIds = Object.values(runs);
    const byRun = await query<Record<string, unknown>>(
      `SELECT r.run_id, r.tokens_in::int, r.tokens_out::int, r.llm_calls, r.cost_micros::text AS cost,
              s.prompt_tokens::int AS stage_in, s.completion_tokens::int AS stage_out, s.llm_calls AS stage_calls,
              s.cost_micros::text AS stage_cost,
              (SELECT array_agg(c.prompt_tokens::int || '/' || c.completion_tokens::int ORDER BY c.prompt_tokens)
                 FROM llm_calls c WHERE c.tenant_id = r.tenant_id AND c.run_id = r.run_id) AS calls
         FROM runs r JOIN stages s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
        WHERE r.tenant_id = $1 ORDER BY r.run_id`,
      [tenant],
    );
    expect(byRun).toHaveLength(runIds.length);
    const cost = byRun[0]!.cost as string;
    expect(BigInt(cost)).toBeGreaterThan(0n);
    for (const row of byRun) {
      expect(row).toEqual({
        run_id: row.run_id,
        tokens_in: 228,
        tokens_out: 114,
        llm_calls: 2,
        cost,
        stage_in: 228,
        stage_out: 114,
        stage_calls: 2,
        stage_cost: cost,
        calls: ['100/50', '128/64'],
      });
    }
    expect(byRun.map((row) => row.run_id).sort()).toEqual([...runIds].sort());

    // The rollups are the sums of the raw rows: four runs of two calls each, nothing left of the roots.
    const usage = await query<Record<string, unknown>>(
      `SELECT sum(call_count)::int AS calls, sum(input_tokens)::int AS input, sum(output_tokens)::int AS output,
              sum(cost_micros)::text AS cost, count(*)::int AS rows,
              sum((SELECT sum(v::int) FROM jsonb_each_text(latency_sketch) AS e(k, v)))::int AS sketched
         FROM usage_daily WHERE tenant_id = $1`,
      [tenant],
    );
    expect(usage).toEqual([
      { calls: 8, input: 4 * 228, output: 4 * 114, cost: String(4n * BigInt(cost)), rows: 1, sketched: 8 },
    ]);
    const models = await query<Record<string, unknown>>(
      `SELECT model, call_count::int AS calls, input_tokens::int AS input, output_tokens::int AS output
         FROM usage_model_daily WHERE tenant_id = $1`,
      [tenant],
    );
    expect(models).toEqual([{ model: 'gpt-4o', calls: 8, input: 4 * 228, output: 4 * 114 }]);

    // Every span of the separate requests reached the event log, the roots there only; the receiver already
    // left out the root of the single request (its children were in the same request).
    const logged = await query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND type = 'llm_call'`,
      [tenant],
    );
    expect(logged).toEqual([{ n: 11 }]);
  });

  it('changes nothing when the whole trace is exported again, root first', async () => {
    const before = await query(
      `SELECT run_id, tokens_in::int, tokens_out::int, llm_calls FROM runs WHERE tenant_id = $1 ORDER BY run_id`,
      [tenant],
    );
    const again = seedTrace(runs.childrenFirst);
    await exportInTurn([[again.root], [again.inference, again.parse]]);
    expect(
      await query(
        `SELECT run_id, tokens_in::int, tokens_out::int, llm_calls FROM runs WHERE tenant_id = $1 ORDER BY run_id`,
        [tenant],
      ),
    ).toEqual(before);
  });
});

/** The same trace ids for a run every time: a repeated export is the same spans. */
const traces = new Map<string, { traceId: string; ids: [string, string, string]; start: bigint }>();

/** The verification trace (docs/observability.md "Verification after a deploy"): llm.completion over llm.inference and llm.response.parse. */
function seedTrace(run: string) {
  let trace = traces.get(run);
  if (!trace) {
    trace = {
      traceId: randomBytes(16).toString('hex'),
      ids: [randomBytes(8).toString('hex'), randomBytes(8).toString('hex'), randomBytes(8).toString('hex')],
      start: BigInt(Date.now() - 60_000) * 1_000_000n,
    };
    traces.set(run, trace);
  }
  const { traceId, ids, start } = trace;
  const ns = (ms: number) => String(start + BigInt(ms) * 1_000_000n);
  const span = (spanId: string, parent: string | undefined, name: string, [from, to]: number[], usage: number[]) => ({
    traceId,
    spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    name,
    kind: 3,
    startTimeUnixNano: ns(from!),
    endTimeUnixNano: ns(to!),
    attributes: [
      { key: 'agentmeter.run_id', value: { stringValue: run } },
      { key: 'agentmeter.phase', value: { stringValue: 'verify' } },
      { key: 'agentmeter.role', value: { stringValue: 'verifier' } },
      { key: 'llm.provider', value: { stringValue: 'openai' } },
      { key: 'llm.model', value: { stringValue: 'gpt-4o' } },
      { key: 'gen_ai.system', value: { stringValue: 'openai' } },
      { key: 'llm.tokens.prompt', value: { intValue: String(usage[0]) } },
      { key: 'llm.tokens.completion', value: { intValue: String(usage[1]) } },
      { key: 'llm.tokens.total', value: { intValue: String(usage[0]! + usage[1]!) } },
    ],
  });
  const [root, inference, parse] = ids;
  return {
    root: span(root, undefined, 'llm.completion', [0, 1_500], [128, 64]),
    inference: span(inference, root, 'llm.inference', [10, 1_200], [128, 64]),
    parse: span(parse, root, 'llm.response.parse', [1_210, 1_400], [100, 50]),
  };
}
