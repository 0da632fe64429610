import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Kafka } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { topicName, Topics } from '@agentmeter/contracts';
import { createDataSource } from '@agentmeter/database';
import {
  createTestDatabase,
  createTestTopics,
  publishEvents,
  publishRaw,
  readAll,
  startService,
  testEnvironment,
  testKafka,
  waitForGroupCaughtUp,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';

/**
 * The prompt audit end to end (docs/events.md "Prompt audit"): llm_calls published to Kafka with secrets and
 * personal data in their prompt and completion, read by the compiled ingest, turned on for one tenant by its
 * Owner through the compiled query API. The tenant that enabled it reads its texts redacted; the other
 * tenant's texts are nowhere: not in prompt_audit, not in the event log, not in the dead-letter topic, not in
 * the services' logs.
 */
describe('prompt audit through Kafka, ingest and query', () => {
  const env = testEnvironment();
  const run = randomBytes(3).toString('hex');
  const on = `pa-on-${run}`;
  const off = `pa-off-${run}`;
  const JWT_SECRET = `prompt-audit-e2e-${randomBytes(16).toString('hex')}`;
  const CATCH_UP_MS = 120_000;
  const awsKey = 'AK' + 'IA' + 'J5TWQ8ZR2MXC7NBV';
  const email = 'pat.producer@example.net';
  const card = ['4012', '8888', '8888', '1881'].join(' ');
  const texts = (tenant: string) => ({
    prompt: `[${tenant}] canary-prompt: use ${awsKey}, write to ${email}, charge ${card}`,
    completion: `[${tenant}] canary-completion: mailed ${email}`,
  });

  let kafka: Kafka;
  let database: TestDatabase;
  let db: DataSource;
  let topicPrefix: string;
  let group: string;
  const services: RunningService[] = [];
  let query: RunningService;
  let n = 0;

  const jwt = (tenant: string, roles: string[]) =>
    new SignJWT({ tenant_id: tenant, roles })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(`${roles.join('-')}-of-${tenant}`)
      .setIssuer('agentmeter')
      .setAudience('agentmeter-api')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(JWT_SECRET));

  const event = (tenant: string, type: string, data: object) => ({
    key: `${tenant}-run`,
    specversion: '1.0',
    id: `${run}-${++n}`,
    source: `prompt-audit-e2e/${run}`,
    type,
    time: new Date().toISOString(),
    subject: tenant,
    data: { tenant_id: tenant, project_id: 'p', run_id: `${tenant}-run`, ...data },
  });
  const llmCall = (tenant: string) =>
    event(tenant, 'llm_call', {
      phase: 'plan',
      role: 'planner',
      attempt: 1,
      model: 'gpt-4.1',
      provider: 'openai',
      prompt_tokens: 100,
      completion_tokens: 20,
      latency_ms: 30,
      ...texts(tenant),
    });

  const eventsTopic = () => topicName(topicPrefix, Topics.AgentEvents);
  const caughtUp = () => waitForGroupCaughtUp(kafka, group, eventsTopic(), CATCH_UP_MS);

  beforeAll(async () => {
    kafka = testKafka();
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    topicPrefix = await createTestTopics(kafka, 1);
    group = `${topicPrefix}ingest`;
    const common = {
      DATABASE_URL: database.url,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      REDIS_KEY_PREFIX: `${env.redisPrefix}pa-${run}:`,
      LOG_LEVEL: 'info',
    };
    services.push(await startService('ingest', { ...common, INGEST_GROUP_ID: group }));
    query = await startService('query', { ...common, AUTH_JWT_SECRET: JWT_SECRET });
    services.push(query);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await db?.destroy();
    await database?.drop();
  });

  it('stores the enabled tenant texts redacted, and the other tenant texts nowhere', async () => {
    // Both tenants exist once their first events are stored; then tenant "on" enables its audit.
    await publishEvents(kafka, eventsTopic(), [
      event(on, 'run_started', { playbook: 'p' }),
      event(off, 'run_started', { playbook: 'p' }),
    ]);
    await caughtUp();
    const enabled = await fetch(`${query.url}/tenants/${on}/prompt-audit`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${await jwt(on, ['owner'])}`, 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: true, reason: 'audit the planner prompts' }),
    });
    expect(enabled.status).toBe(200);

    const onCall = llmCall(on);
    const offCall = llmCall(off);
    await publishEvents(kafka, eventsTopic(), [onCall, offCall]);
    // An invalid llm_call (no model) with texts: dead-lettered without them.
    const { key, ...invalid } = llmCall(on);
    delete (invalid.data as { model?: string }).model;
    await publishRaw(kafka, eventsTopic(), [{ key, value: JSON.stringify(invalid) }]);
    await caughtUp();

    const answer = await fetch(`${query.url}/tenants/${on}/prompt-audit`, {
      headers: { authorization: `Bearer ${await jwt(on, ['owner'])}` },
    });
    expect(answer.status).toBe(200);
    const page = (await answer.json()) as { enabled: boolean; items: Array<Record<string, string>> };
    expect(page.enabled).toBe(true);
    expect(page.items.map((item) => item.event_id)).toEqual([onCall.id]);
    const [stored] = page.items;
    expect(stored!.prompt).toContain('canary-prompt');
    expect(stored!.completion).toContain('canary-completion');
    for (const secret of [awsKey, email, card]) {
      expect(stored!.prompt).not.toContain(secret);
      expect(stored!.completion).not.toContain(secret);
    }

    const audited = (await db.query(`SELECT tenant_id FROM prompt_audit ORDER BY tenant_id`)) as Array<{
      tenant_id: string;
    }>;
    expect(audited).toEqual([{ tenant_id: on }]);
    const payloads = (await db.query(
      `SELECT event_id, payload::text AS payload FROM events WHERE type = 'llm_call' ORDER BY event_id`,
    )) as Array<{ event_id: string; payload: string }>;
    expect(payloads.map((row) => row.event_id).sort()).toEqual([onCall.id, offCall.id].sort());
    for (const row of payloads) expect(row.payload).not.toMatch(/canary-|prompt"|completion"/);

    const deadLetters = await readAll(kafka, topicName(topicPrefix, Topics.AgentEventsDlq));
    expect(deadLetters.length).toBeGreaterThanOrEqual(1);
    for (const message of deadLetters) expect(message.value).not.toContain('canary-');
    for (const service of services) {
      for (const secret of [awsKey, email, card, 'canary-']) expect(service.output()).not.toContain(secret);
    }
  });
});
