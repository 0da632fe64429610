import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { DlqHeaders, topicName, Topics } from '@agentmeter/contracts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  generateWorkload,
  publishEvents,
  readAll,
  startService,
  testEnvironment,
  testKafka,
  waitForGroupCaughtUp,
  type RunningService,
  type RunTruth,
  type TestDatabase,
  type Workload,
} from '@agentmeter/testing';

/**
 * The walking skeleton end to end: events published to Kafka flow through the ingest process into
 * PostgreSQL and out of the query process's GET /runs/{run_id}/metrics, matching the workload's ground
 * truth exactly; duplicates change nothing; a malformed event is dead-lettered without stopping its
 * partition; a crash of ingest mid-stream loses nothing and counts nothing twice.
 */
describe('events from Kafka to the run metrics API', () => {
  const secret = randomBytes(32).toString('hex');
  const env = testEnvironment();
  let topicPrefix: string;
  let eventsTopic: string;
  let dlqTopic: string;
  const groupId = `${env.runId}-ingest-${randomBytes(3).toString('hex')}`;
  let db: TestDatabase;
  let kafka: Kafka;
  let ingest: RunningService;
  let query: RunningService;

  const ingestEnv = () => ({
    DATABASE_URL: db.url,
    KAFKA_BROKERS: env.kafkaBrokers.join(','),
    KAFKA_TOPIC_PREFIX: topicPrefix,
    INGEST_GROUP_ID: groupId,
    INGEST_SESSION_TIMEOUT_MS: '6000',
  });

  beforeAll(async () => {
    db = await createTestDatabase();
    kafka = testKafka();
    topicPrefix = await createTestTopics(kafka);
    eventsTopic = topicName(topicPrefix, Topics.AgentEvents);
    dlqTopic = topicName(topicPrefix, Topics.AgentEventsDlq);
    [ingest, query] = await Promise.all([
      startService('ingest', ingestEnv()),
      startService('query', { DATABASE_URL: db.url, AUTH_JWT_SECRET: secret }),
    ]);
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) console.log(ingest?.output(), query?.output());
    await Promise.all([ingest?.stop(), query?.stop()]);
    await db?.drop();
  });

  const token = (tenant: string, roles: string[] = ['op']) =>
    new SignJWT({ tenant_id: tenant, roles })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('e2e-user')
      .setIssuer('agentmeter')
      .setAudience('agentmeter-api')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(secret));

  async function metricsOf(run: Pick<RunTruth, 'tenant_id' | 'run_id'>, roles?: string[]): Promise<Response> {
    return fetch(`${query.url}/runs/${run.run_id}/metrics`, {
      headers: { authorization: `Bearer ${await token(run.tenant_id, roles)}` },
    });
  }

  async function expectMatchesTruth(truth: Workload['truth']): Promise<void> {
    for (const run of truth.runs) {
      const response = await metricsOf(run);
      expect(response.status).toBe(200);
      const body = (await response.json()) as Record<string, unknown>;
      expect({ run_id: run.run_id, ...pick(body, ['status', 'totals', 'stages', 'mcp_cache']) }).toEqual({
        run_id: run.run_id,
        status: run.status,
        totals: run.totals,
        stages: run.stages.map((stage) => expect.objectContaining(stage)),
        mcp_cache: run.mcp_cache
          ? {
              tree: expect.objectContaining(run.mcp_cache.tree),
              blob: expect.objectContaining(run.mcp_cache.blob),
              overall_hit_pct: expect.any(Number),
            }
          : null,
      });
    }
  }

  async function snapshot(): Promise<unknown> {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const tables = ['runs', 'stages', 'events', 'llm_calls', 'tool_calls'];
      const counts = [];
      for (const table of tables) counts.push(await client.query(`SELECT count(*)::int AS n FROM ${table}`));
      const runs = await client.query(
        `SELECT run_id, status, tokens_in, tokens_out, cost_micros, llm_calls FROM runs ORDER BY tenant_id, run_id`,
      );
      const stages = await client.query(
        `SELECT run_id, phase, attempt, status, prompt_tokens, completion_tokens, started_at, finished_at
           FROM stages ORDER BY tenant_id, run_id, phase, attempt`,
      );
      return { counts: counts.map((c) => c.rows[0].n), runs: runs.rows, stages: stages.rows };
    } finally {
      await client.end();
    }
  }

  const workload = generateWorkload({
    seed: 7,
    tenants: 3,
    projectsPerTenant: 2,
    runsPerProject: 4,
    start: new Date('2026-11-20T08:00:00Z'),
    prefix: `e2e${randomBytes(2).toString('hex')}`,
  });

  it('stores a seeded workload and serves every run exactly as its ground truth', async () => {
    // A malformed event in the middle of a run's partition must not hold back the events after it.
    const victim = workload.truth.runs[0]!;
    const half = Math.floor(workload.events.length / 2);
    const malformed = {
      key: victim.run_id,
      specversion: '1.0',
      id: 'bad-1',
      source: 'e2e',
      type: 'llm_call',
      time: 'yesterday',
      subject: victim.tenant_id,
      data: { tenant_id: victim.tenant_id },
    };
    await publishEvents(kafka, eventsTopic, [
      ...workload.events.slice(0, half),
      malformed,
      ...workload.events.slice(half),
    ]);
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic);

    await expectMatchesTruth(workload.truth);

    const dead = await readAll(kafka, dlqTopic);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.key).toBe(victim.run_id);
    expect(dead[0]!.headers[DlqHeaders.Reason]).toMatch(/time: /);
    expect(dead[0]!.headers[DlqHeaders.SourceTopic]).toBe(eventsTopic);
  });

  it('changes nothing when the same workload is published again', async () => {
    const before = await snapshot();
    await publishEvents(kafka, eventsTopic, workload.events);
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic);
    expect(await snapshot()).toEqual(before);
    await expectMatchesTruth(workload.truth);
  });

  it('answers 404 for another tenant, 401 without a credential, and hides trace ids from BU', async () => {
    const run = workload.truth.runs[0]!;
    const other = workload.truth.runs.find((r) => r.tenant_id !== run.tenant_id)!;
    expect((await metricsOf({ tenant_id: other.tenant_id, run_id: run.run_id })).status).toBe(404);
    expect((await fetch(`${query.url}/runs/${run.run_id}/metrics`)).status).toBe(401);
    const asBu = (await (await metricsOf(run, ['bu'])).json()) as { stages: Array<Record<string, unknown>> };
    const asOp = (await (await metricsOf(run, ['op'])).json()) as { stages: Array<Record<string, unknown>> };
    expect(asBu.stages.every((stage) => !('trace_id' in stage))).toBe(true);
    expect(asOp.stages.some((stage) => typeof stage.trace_id === 'string')).toBe(true);
  });

  it('loses nothing and counts nothing twice when ingest is killed mid-stream', async () => {
    const big = generateWorkload({
      seed: 99,
      tenants: 4,
      projectsPerTenant: 3,
      runsPerProject: 10,
      start: new Date('2026-11-21T08:00:00Z'),
      prefix: `crash${randomBytes(2).toString('hex')}`,
    });
    const client = new Client({ connectionString: db.url });
    await client.connect();
    const before = Number((await client.query(`SELECT count(*) AS n FROM events`)).rows[0].n);
    await publishEvents(kafka, eventsTopic, big.events);
    // Kill as soon as ingest has stored part of the new workload but (most likely) not all of it.
    await eventually(
      async () => {
        const n = Number((await client.query(`SELECT count(*) AS n FROM events`)).rows[0].n);
        if (n <= before) throw new Error('ingest has not stored anything yet');
      },
      60_000,
      5,
    );
    await ingest.kill();
    const atKill = Number((await client.query(`SELECT count(*) AS n FROM events`)).rows[0].n) - before;
    await client.end();

    ingest = await startService('ingest', ingestEnv());
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic);
    await expectMatchesTruth(big.truth);
    await expectMatchesTruth(workload.truth);
    expect(atKill).toBeGreaterThan(0);
  });
});

function pick(source: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, source[key]]));
}
