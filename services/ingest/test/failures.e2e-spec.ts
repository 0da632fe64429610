import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { DlqHeaders, MAX_EVENT_BYTES, topicName, Topics } from '@agentmeter/contracts';
import { parseUsd } from '@agentmeter/domain';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  generateWorkload,
  publishEvents,
  publishRaw,
  readAll,
  startService,
  testKafka,
  waitForGroupCaughtUp,
  type RunningService,
  type TestDatabase,
  type Workload,
} from '@agentmeter/testing';

/**
 * Ingest under failure, with real processes: crashes (SIGKILL) mid-stream, a second consumer in the
 * group dying, the database going away, and poison messages. After each, what is stored must equal the
 * workload's ground truth exactly: nothing lost, nothing counted twice.
 */
describe('ingest under failure', () => {
  let kafka: Kafka;
  const running: RunningService[] = [];
  const databases: TestDatabase[] = [];

  beforeAll(() => {
    kafka = testKafka();
  });

  afterAll(async () => {
    await Promise.all(running.map((service) => service.stop()));
    await Promise.all(databases.map((db) => db.drop()));
  });

  interface Setup {
    db: TestDatabase;
    sql: Client;
    topicPrefix: string;
    eventsTopic: string;
    groupId: string;
    start(): Promise<RunningService>;
  }

  async function setup(): Promise<Setup> {
    const db = await createTestDatabase();
    databases.push(db);
    const sql = new Client({ connectionString: db.url });
    await sql.connect();
    const topicPrefix = await createTestTopics(kafka);
    const groupId = `${topicPrefix}ingest`;
    return {
      db,
      sql,
      topicPrefix,
      eventsTopic: topicName(topicPrefix, Topics.AgentEvents),
      groupId,
      async start() {
        const service = await startService('ingest', {
          DATABASE_URL: db.url,
          KAFKA_TOPIC_PREFIX: topicPrefix,
          INGEST_GROUP_ID: groupId,
          INGEST_SESSION_TIMEOUT_MS: '6000',
        });
        running.push(service);
        return service;
      },
    };
  }

  async function count(sql: Client, table: string): Promise<number> {
    return Number((await sql.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  }

  /** Every run's totals and every stage's tokens and attempts, compared with the ground truth. */
  async function expectStoredTruth(sql: Client, workload: Workload): Promise<void> {
    const runs = await sql.query(
      `SELECT run_id, status, tokens_in::int, tokens_out::int, cost_micros::text, llm_calls FROM runs`,
    );
    const stored = new Map(runs.rows.map((row) => [row.run_id as string, row]));
    const stages = await sql.query(
      `SELECT run_id, phase, count(*)::int AS attempts, sum(prompt_tokens)::int AS prompt, sum(completion_tokens)::int AS completion
         FROM stages GROUP BY run_id, phase`,
    );
    const storedStages = new Map(stages.rows.map((row) => [`${row.run_id}/${row.phase}`, row]));
    expect(stored.size).toBe(workload.truth.runs.length);
    for (const run of workload.truth.runs) {
      expect({ run: run.run_id, ...stored.get(run.run_id) }).toEqual({
        run: run.run_id,
        run_id: run.run_id,
        status: run.status,
        tokens_in: run.totals.prompt_tokens,
        tokens_out: run.totals.completion_tokens,
        cost_micros: parseUsd(run.totals.cost_usd).toString(),
        llm_calls: run.totals.llm_calls,
      });
      for (const stage of run.stages) {
        const row = storedStages.get(`${run.run_id}/${stage.stage}`);
        expect({ stage: `${run.run_id}/${stage.stage}`, attempts: row?.attempts }).toEqual({
          stage: `${run.run_id}/${stage.stage}`,
          attempts: stage.attempts,
        });
        if (stage.prompt_tokens !== null) {
          expect([row?.prompt, row?.completion]).toEqual([stage.prompt_tokens, stage.completion_tokens]);
        }
      }
    }
    const events = workload.events.length;
    expect(await count(sql, 'events')).toBe(events);
  }

  function workloadOf(size: 'small' | 'large'): Workload {
    const prefix = `f${randomBytes(3).toString('hex')}`;
    return size === 'small'
      ? generateWorkload({
          seed: 5,
          tenants: 2,
          projectsPerTenant: 2,
          runsPerProject: 3,
          start: new Date('2026-11-22T00:00:00Z'),
          prefix,
        })
      : generateWorkload({
          seed: 17,
          tenants: 10,
          projectsPerTenant: 10,
          runsPerProject: 14,
          start: new Date('2026-11-23T00:00:00Z'),
          prefix,
        });
  }

  it('dead-letters each kind of poison message with its reason and keeps consuming', async () => {
    const s = await setup();
    const workload = workloadOf('small');
    const run = workload.truth.runs[0]!;
    const valid = JSON.parse(JSON.stringify(workload.events[0]!)) as Record<string, unknown> & {
      data: Record<string, unknown>;
    };
    delete valid.key;
    const poison = [
      { reason: /not JSON/, value: '{"specversion": "1.0", oops' },
      {
        reason: /data\.prompt_tokens/,
        value: JSON.stringify({
          ...valid,
          id: 'schema',
          type: 'llm_call',
          data: {
            ...valid.data,
            phase: 'p',
            role: 'r',
            model: 'm',
            provider: 'x',
            prompt_tokens: 'many',
            completion_tokens: 1,
            latency_ms: 1,
          },
        }),
      },
      { reason: /type/, value: JSON.stringify({ ...valid, id: 'unknown-type', type: 'run_teleported' }) },
      {
        reason: /too large/,
        value: JSON.stringify({ ...valid, id: 'huge', data: { ...valid.data, playbook: 'x'.repeat(MAX_EVENT_BYTES) } }),
      },
      { reason: /specversion/, value: JSON.stringify({ ...valid, id: 'old-spec', specversion: '0.3' }) },
    ];
    // Valid JSON that PostgreSQL cannot store as text or jsonb (NUL, lone surrogates) is not poison: those
    // events are stored with U+FFFD in place, and count like the rest.
    const started = workload.events.filter((e) => e.type === 'run_started').slice(0, 2);
    const renamed = { [started[0]!.id]: `${started[0]!.id}\u0000\uD800` };
    started[0]!.id = renamed[started[0]!.id]!;
    (started[1]!.data as { playbook?: string }).playbook = 'play\u0000book \uDC00 \uD83D\uDE00';
    const half = Math.floor(workload.events.length / 2);
    await publishEvents(kafka, s.eventsTopic, workload.events.slice(0, half));
    await publishRaw(
      kafka,
      s.eventsTopic,
      poison.map((p) => ({ key: run.run_id, value: p.value })),
    );
    await publishEvents(kafka, s.eventsTopic, workload.events.slice(half));

    await s.start();
    await waitForGroupCaughtUp(kafka, s.groupId, s.eventsTopic);

    await expectStoredTruth(s.sql, workload);
    const dead = await readAll(kafka, topicName(s.topicPrefix, Topics.AgentEventsDlq));
    expect(dead).toHaveLength(poison.length);
    for (const p of poison) {
      expect(dead.filter((m) => p.reason.test(m.headers[DlqHeaders.Reason] ?? ''))).toHaveLength(1);
    }
    const kept = await s.sql.query(
      `SELECT event_id, payload->>'playbook' AS playbook FROM events WHERE event_id LIKE '%\uFFFD%' OR payload->>'playbook' LIKE 'play%' ORDER BY 1`,
    );
    expect(kept.rows.map((row) => row.event_id as string)).toContain(
      `${started[0]!.id.split('\u0000')[0]}\uFFFD\uFFFD`,
    );
    expect(kept.rows.map((row) => row.playbook as string | null)).toContain('play\uFFFDbook \uFFFD \uD83D\uDE00');
    await s.sql.end();
  });

  it('stores 50k events exactly once although ingest is killed -9 three times', async () => {
    const s = await setup();
    const workload = workloadOf('large');
    expect(workload.events.length).toBeGreaterThan(50_000);
    await publishEvents(kafka, s.eventsTopic, workload.events);

    let ingest = await s.start();
    for (let crash = 1; crash <= 3; crash++) {
      const target = Math.floor((workload.events.length * crash) / 4);
      await eventually(
        async () => {
          if ((await count(s.sql, 'events')) < target)
            throw new Error(`waiting for ${target} events before crash ${crash}`);
        },
        120_000,
        20,
      );
      await ingest.kill();
      ingest = await s.start();
    }
    await waitForGroupCaughtUp(kafka, s.groupId, s.eventsTopic, 180_000);
    await expectStoredTruth(s.sql, workload);
    await s.sql.end();
  });

  it('loses and doubles nothing when one of two consumers in the group dies midway', async () => {
    const s = await setup();
    const workload = workloadOf('large');
    await publishEvents(kafka, s.eventsTopic, workload.events);
    const [first] = await Promise.all([s.start(), s.start()]);
    await eventually(
      async () => {
        if ((await count(s.sql, 'events')) < workload.events.length / 3) throw new Error('waiting for a third');
      },
      120_000,
      20,
    );
    await first!.kill();
    await waitForGroupCaughtUp(kafka, s.groupId, s.eventsTopic, 180_000);
    await expectStoredTruth(s.sql, workload);
    await s.sql.end();
  });

  it('waits while PostgreSQL drops every connection and refuses new ones, then resumes', async () => {
    const s = await setup();
    const workload = workloadOf('large');
    const database = new URL(s.db.url).pathname.slice(1);
    const admin = new Client({ connectionString: s.db.url.replace(`/${database}`, '/postgres') });
    await admin.connect();
    try {
      await publishEvents(kafka, s.eventsTopic, workload.events);
      const ingest = await s.start();
      await eventually(
        async () => {
          if ((await count(s.sql, 'events')) < workload.events.length / 4) throw new Error('waiting for a quarter');
        },
        120_000,
        20,
      );
      await s.sql.end();

      // The outage: no new connections to this database, and every open one is cut.
      await admin.query(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS false`);
      // (with a timeout, pg_terminate_backend waits until each backend has exited)
      await admin.query(`SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = $1`, [database]);
      // Ingest notices (its readiness fails) while the outage lasts...
      await eventually(
        async () => {
          const ready = await fetch(`${ingest.url}/health/ready`);
          if (ready.status !== 503) throw new Error(`ingest still ready (${ready.status})`);
        },
        30_000,
        50,
      );
      const connections = Number(
        (await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1`, [database])).rows[0].n,
      );
      expect(connections).toBe(0);
    } finally {
      // ...and resumes by itself when the database is back (also when an expectation above failed, so
      // that nothing is left open).
      await admin.query(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS true`);
      await admin.end();
    }

    await waitForGroupCaughtUp(kafka, s.groupId, s.eventsTopic, 180_000);
    const sql = new Client({ connectionString: s.db.url });
    await sql.connect();
    await expectStoredTruth(sql, workload);
    await sql.end();
  });
});
