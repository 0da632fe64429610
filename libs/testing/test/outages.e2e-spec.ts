import { randomBytes } from 'node:crypto';
import { setTimeout as pause } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { type ReserveResponse, topicName, Topics } from '@agentmeter/contracts';
import { ensureDatabase, migrate } from '@agentmeter/database';
import {
  createTestTopics,
  eventually,
  freePort,
  publishEvents,
  type RunningService,
  startPrivatePostgres,
  startPrivateRedis,
  startService,
  testEnvironment,
  testKafka,
  waitForGroupCaughtUp,
  type PrivatePostgres,
  type PrivateRedis,
} from '@agentmeter/testing';
import { TestSmtpServer } from '../../../services/alert-worker/test/test-endpoints';

/**
 * Every service keeps running through the loss and return of PostgreSQL and of Redis (docs/operations.md):
 * on a private PostgreSQL and a private Redis that the test stops and starts (the shared ones are never
 * touched), with events flowing and admissions running. No process exits, readiness names the dependency
 * that is down and comes back by itself, the HTTP APIs answer 503 with Retry-After (never 500), sums are
 * exact afterwards, and alert groups whose BullMQ jobs Redis lost are delivered, each once.
 */
describe('outages of PostgreSQL and Redis', () => {
  const T = `out${randomBytes(3).toString('hex')}`;
  const token = randomBytes(24).toString('hex');
  let postgres: PrivatePostgres;
  let redis: PrivateRedis;
  let smtp: TestSmtpServer;
  let kafka: Kafka;
  let databaseUrl: string;
  let topicPrefix: string;
  let eventsTopic: string;
  const services: Record<string, RunningService> = {};
  let exited: Error | undefined;
  const groups = { ingest: `${T}-ingest`, costCap: `${T}-cost-cap`, alert: `${T}-alert` };

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPrivatePostgres(), startPrivateRedis()]);
    databaseUrl = postgres.url('agentmeter');
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl);
    kafka = testKafka();
    topicPrefix = await createTestTopics(kafka);
    eventsTopic = topicName(topicPrefix, Topics.AgentEvents);
    smtp = new TestSmtpServer(await freePort());
    await smtp.start();
    const key = randomBytes(32).toString('base64');
    const shared = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `${testEnvironment().redisPrefix}${T}:`,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      LOG_LEVEL: 'warn',
    };
    const started = await Promise.allSettled([
      // Consumers keep the default session timeout (30 s): a batch that waits for the dependency is not a
      // dead member (the consumers' own supervision is tested in libs/kafka).
      startService('ingest', { ...shared, INGEST_GROUP_ID: groups.ingest }),
      startService('cost-cap', {
        ...shared,
        COST_CAP_GROUP_ID: groups.costCap,
        COST_CAP_API_TOKEN: token,
        COST_CAP_RECOVERY_EVERY_MS: '1000',
      }),
      startService('alert', {
        ...shared,
        ALERT_GROUP_ID: groups.alert,
        ALERT_API_TOKEN: token,
        ALERT_ENCRYPTION_KEY: key,
        ALERT_GROUP_WINDOW_MS: '5000',
        ALERT_RECOVERY_EVERY_MS: '1000',
      }),
      startService('alert-worker', {
        ...shared,
        ALERT_ENCRYPTION_KEY: key,
        SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
        ALERT_DELIVERY_BACKOFF_MS: '100',
        ALERT_DELIVERY_BACKOFF_MAX_MS: '1000',
      }),
      startService('query', { ...shared, AUTH_JWT_SECRET: randomBytes(32).toString('hex') }),
    ]);
    // Those that started are stopped by afterAll, also when another did not start.
    for (const result of started) if (result.status === 'fulfilled') services[result.value.name] = result.value;
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) for (const service of Object.values(services)) console.log(service.output());
    await Promise.all(Object.values(services).map((service) => service.stop()));
    await smtp?.stop();
    await Promise.all([postgres?.destroy(), redis?.destroy()]);
  });

  /** A query on a connection of its own (a connection does not survive the PostgreSQL restart). */
  async function sql<R extends object = { n: number }>(text: string, values: unknown[] = []): Promise<R[]> {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  async function call<T>(service: string, method: string, path: string, body?: unknown) {
    const response = await fetch(`${services[service]!.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      type: response.headers.get('content-type') ?? '',
      text,
      body: (text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null) as T,
    };
  }

  /** Every service's readiness, as status and body text; throws naming a service that exited. */
  async function readiness(): Promise<Record<string, { status: number; text: string }>> {
    for (const service of Object.values(services)) {
      if (service.process.exitCode !== null || service.process.signalCode !== null) {
        exited ??= new Error(`${service.name} exited (${service.process.exitCode ?? service.process.signalCode})`);
      }
    }
    if (exited) throw exited;
    const entries = await Promise.all(
      Object.keys(services).map(async (name) => {
        const { status, text } = await call(name, 'GET', '/health/ready');
        return [name, { status, text }] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  function expectAllAlive(): void {
    for (const service of Object.values(services)) {
      expect({ name: service.name, exit: service.process.exitCode, signal: service.process.signalCode }).toEqual({
        name: service.name,
        exit: null,
        signal: null,
      });
    }
  }

  let seq = 0;
  function llmCall(tenantId: string, runId: string, costMicros: number) {
    return {
      key: runId,
      specversion: '1.0',
      id: `ev-${++seq}-${randomBytes(3).toString('hex')}`,
      source: 'coordinator/outage',
      type: 'llm_call',
      time: new Date().toISOString(),
      subject: tenantId,
      data: {
        tenant_id: tenantId,
        project_id: 'site',
        run_id: runId,
        phase: 'implement',
        role: 'implementer',
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 100,
        completion_tokens: 10,
        latency_ms: 5,
        cost_usd: (costMicros / 1e6).toFixed(6),
      },
    };
  }

  /**
   * Load while a dependency goes away and comes back: batches of llm_call events on the stream, and
   * admissions (reserve, then commit retried until it is answered) through cost-cap. Every answer's status
   * is recorded; the sums of what was published and committed are the expectations.
   */
  function startLoad(tenantId: string) {
    const state = {
      stop: false,
      published: { count: 0, micros: 0 },
      committed: { count: 0, micros: 0 },
      statuses: [] as Array<{ status: number; retryAfter: string | null; type: string; text: string }>,
      done: Promise.resolve(),
    };
    const record = (answer: { status: number; retryAfter: string | null; type: string; text: string }) =>
      state.statuses.push({
        status: answer.status,
        retryAfter: answer.retryAfter,
        type: answer.type,
        text: answer.text,
      });
    const stream = async () => {
      for (let batch = 0; !state.stop; batch++) {
        // A run belongs to one tenant (docs/events.md): each test's tenant has runs of its own.
        const events = Array.from({ length: 10 }, (_, i) =>
          llmCall(tenantId, `${tenantId}-s-run-${(batch + i) % 7}`, 1_000 + i),
        );
        await publishEvents(kafka, eventsTopic, events);
        state.published.count += events.length;
        state.published.micros += events.reduce((sum, e) => sum + Math.round(Number(e.data.cost_usd) * 1e6), 0);
        await pause(100); // pacing of the load generator, not a synchronisation
      }
    };
    const admissions = async () => {
      for (let i = 0; !state.stop; i++) {
        const k = `${tenantId}-adm-${i}`;
        const reserve = await call<ReserveResponse>('cost-cap', 'POST', '/v1/admission/reserve', {
          tenant_id: tenantId,
          project_id: 'site',
          run_id: `${tenantId}-a-run-${i % 5}`,
          role: 'implementer',
          model: 'gpt-4.1',
          provider: 'openai',
          estimate: { cost_usd: '0.002000' },
          idempotency_key: k,
        });
        record(reserve);
        if (reserve.status !== 200 || reserve.body.decision !== 'allow') {
          await pause(50);
          continue;
        }
        // A commit answered 503 is retried until answered: its spend then counts exactly once.
        for (;;) {
          const commit = await call(
            'cost-cap',
            'POST',
            `/v1/admission/reservations/${reserve.body.reservation_id}/commit`,
            {
              event: { source: 'coordinator/outage', id: k },
              actual: { cost_usd: '0.001500' },
            },
          );
          record(commit);
          if (commit.status < 300) {
            state.committed.count++;
            state.committed.micros += 1_500;
            break;
          }
          // A reservation is committed without waiting for the WAL flush (docs/cost-cap.md): the last ones
          // before a PostgreSQL crash may be lost, and are then neither held nor committed.
          if (commit.status === 404) break;
          if (commit.status !== 503) throw new Error(`commit answered ${commit.status}: ${commit.text}`);
          await pause(200);
        }
      }
    };
    state.done = Promise.all([stream(), admissions()]).then(() => undefined);
    return state;
  }

  async function expectExactSums(
    tenantId: string,
    load: ReturnType<typeof startLoad>,
    committedBefore = { count: 0, micros: 0 },
  ): Promise<void> {
    await waitForGroupCaughtUp(kafka, groups.ingest, eventsTopic, 120_000);
    await waitForGroupCaughtUp(kafka, groups.costCap, eventsTopic, 120_000);
    const stored = await sql(
      `SELECT count(*)::int AS n, coalesce(sum(cost_micros), 0)::bigint AS micros FROM llm_calls WHERE tenant_id = $1`,
      [tenantId],
    );
    expect(stored[0]).toEqual({ n: load.published.count, micros: String(load.published.micros) });
    const ledger = await sql(
      `SELECT recorded_by, count(*)::int AS n, sum(cost_micros)::bigint AS micros FROM spend_ledger
        WHERE tenant_id = $1 GROUP BY recorded_by ORDER BY recorded_by`,
      [tenantId],
    );
    expect(ledger).toEqual([
      {
        recorded_by: 'commit',
        n: load.committed.count + committedBefore.count,
        micros: String(load.committed.micros + committedBefore.micros),
      },
      { recorded_by: 'event', n: load.published.count, micros: String(load.published.micros) },
    ]);
  }

  it('a PostgreSQL crash (immediate stop) and restart: no process exits, readiness 503 then 200, sums exact', async () => {
    const tenantId = `${T}-pg`;
    const load = startLoad(tenantId);
    await eventually(async () => {
      if (load.committed.count < 5 || load.published.count < 50) throw new Error('load not flowing yet');
    }, 60_000);

    await postgres.stopImmediate();
    const down = await eventually(async () => {
      const ready = await readiness();
      for (const [name, { status, text }] of Object.entries(ready)) {
        if (status !== 503 || !text.includes('postgres')) throw new Error(`${name} still ${status}: ${text}`);
      }
      return ready;
    }, 60_000);
    expect(Object.keys(down).sort()).toEqual(['alert', 'alert-worker', 'cost-cap', 'ingest', 'query']);
    const duringOutage = load.statuses.length;
    await eventually(async () => {
      if (load.statuses.length < duringOutage + 5) throw new Error('admissions not answered during the outage');
    }, 30_000);

    await postgres.start();
    await eventually(async () => {
      const ready = await readiness();
      for (const [name, { status, text }] of Object.entries(ready)) {
        if (status !== 200) throw new Error(`${name} not ready again: ${status} ${text}`);
      }
    }, 120_000);
    const committedBefore = load.committed.count;
    await eventually(async () => {
      if (load.committed.count < committedBefore + 5) throw new Error('admissions not back yet');
    }, 60_000);
    load.stop = true;
    await load.done;

    expectAllAlive();
    // Besides 503s, only commits of reservations the crash lost (404, see startLoad).
    const failures = load.statuses.filter(
      (s) => s.status !== 200 && !(s.status === 404 && s.text.includes('reservation')),
    );
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect({ status: failure.status, retryAfter: failure.retryAfter, type: failure.type }).toEqual({
        status: 503,
        retryAfter: expect.stringMatching(/^\d+$/),
        type: expect.stringContaining('application/problem+json'),
      });
    }
    await expectExactSums(tenantId, load);
  });

  it('a Redis restart without its data: 503 + Retry-After meanwhile, counters rebuilt, every alert group delivered once', async () => {
    const tenantId = `${T}-redis`;
    const ops = { actor: 'ops@agentmeter', reason: 'outage e2e' };
    // Spend before the outage that the rebuilt counters must know: $0.05 on a run with a $1 cap.
    expect(
      (await call('cost-cap', 'PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, run: { max_cost_usd: '1.00' } })).status,
    ).toBe(200);
    const before = await call<ReserveResponse>('cost-cap', 'POST', '/v1/admission/reserve', {
      tenant_id: tenantId,
      project_id: 'site',
      run_id: 'kept-run',
      role: 'implementer',
      model: 'gpt-4.1',
      provider: 'openai',
      estimate: { cost_usd: '0.050000' },
    });
    expect(before.body.decision).toBe('allow');
    const committed = await call(
      'cost-cap',
      'POST',
      `/v1/admission/reservations/${before.body.reservation_id}/commit`,
      {
        event: { source: 'coordinator/outage', id: `${tenantId}-kept` },
        actual: { cost_usd: '0.050000' },
      },
    );
    expect(committed.status).toBeLessThan(300);

    // Twenty tenants with an Owner e-mail contact each, and a cap_hit for each: twenty open groups whose
    // delayed flush jobs are in Redis when it goes away.
    const tenants = Array.from({ length: 20 }, (_, i) => `${T}-g${i}`);
    for (const tenant of tenants) {
      const contact = await call('alert', 'POST', '/admin/contacts', {
        ...ops,
        tenant_id: tenant,
        audience: 'owner',
        channel: 'email',
        target: `owner@${tenant}.test`,
      });
      expect(contact.status).toBe(201);
    }
    await publishEvents(
      kafka,
      eventsTopic,
      tenants.map((tenant, i) => ({
        key: `${tenant}-run-${i}`, // the Kafka key of an event is its run id (docs/events.md)
        specversion: '1.0',
        id: `hit-${tenant}`,
        source: 'cost-cap/outage',
        type: 'cap_hit',
        time: new Date().toISOString(),
        subject: tenant,
        data: {
          tenant_id: tenant,
          project_id: 'p',
          run_id: `${tenant}-run-${i}`,
          scope: 'run',
          cap: 'cost',
          limit: '5.000000',
          observed: '5.000000',
        },
      })),
    );
    const open = await eventually(async () => {
      const rows = await sql<{ id: string; flush_at: Date }>(
        `SELECT id, flush_at FROM alert_groups WHERE tenant_id = ANY($1) AND status = 'open'`,
        [tenants],
      );
      if (rows.length < tenants.length) throw new Error(`${rows.length} open groups`);
      return rows;
    }, 60_000);

    const load = startLoad(tenantId);
    await eventually(async () => {
      if (load.committed.count < 3) throw new Error('admissions not flowing yet');
    }, 60_000);
    await redis.shutdownNosave();
    await eventually(async () => {
      const ready = await readiness();
      for (const name of ['cost-cap', 'alert', 'alert-worker', 'ingest']) {
        const { status, text } = ready[name]!;
        if (status !== 503 || !text.includes('redis')) throw new Error(`${name} still ${status}: ${text}`);
      }
    }, 60_000);
    // Down past every group's flush time: without recovery, these flushes would never happen.
    const lastFlush = Math.max(...open.map((group) => group.flush_at.getTime()));
    await eventually(async () => {
      if (Date.now() < lastFlush + 1_000) throw new Error('flush times not passed yet');
      if (!load.statuses.some((s) => s.status === 503)) throw new Error('no admission answered during the outage');
    }, 60_000);

    await redis.start();
    await eventually(async () => {
      const ready = await readiness();
      for (const [name, { status, text }] of Object.entries(ready)) {
        if (status !== 200) throw new Error(`${name} not ready again: ${status} ${text}`);
      }
    }, 120_000);
    const committedBefore = load.committed.count;
    await eventually(async () => {
      if (load.committed.count < committedBefore + 3) throw new Error('admissions not back yet');
    }, 60_000);
    load.stop = true;
    await load.done;
    expectAllAlive();

    for (const failure of load.statuses.filter((s) => s.status !== 200)) {
      expect({ status: failure.status, retryAfter: failure.retryAfter, type: failure.type }).toEqual({
        status: 503,
        retryAfter: expect.stringMatching(/^\d+$/),
        type: expect.stringContaining('application/problem+json'),
      });
    }
    // The counters were rebuilt from the ledger: the run's earlier $0.05 is still counted.
    const after = await call<ReserveResponse>('cost-cap', 'POST', '/v1/admission/reserve', {
      tenant_id: tenantId,
      project_id: 'site',
      run_id: 'kept-run',
      role: 'implementer',
      model: 'gpt-4.1',
      provider: 'openai',
      estimate: { cost_usd: '0.010000' },
    });
    expect(after.status).toBe(200);
    expect(after.body.scopes.find((s) => s.scope === 'run' && s.cap === 'cost')).toMatchObject({
      limit: '1.000000',
      spent: '0.050000',
    });

    // Every group delivered, each e-mail once.
    await eventually(async () => {
      const rows = await sql(
        `SELECT count(*)::int AS n FROM alert_deliveries WHERE tenant_id = ANY($1) AND channel = 'email' AND status = 'sent'`,
        [tenants],
      );
      if (rows[0]!.n < tenants.length) throw new Error(`${rows[0]!.n} of ${tenants.length} e-mails sent`);
    }, 120_000);
    const flushed = await sql(
      `SELECT count(*)::int AS n FROM alert_groups WHERE tenant_id = ANY($1) AND status = 'flushed'`,
      [tenants],
    );
    expect(flushed[0]!.n).toBe(tenants.length);
    const mails = smtp.mails.filter((mail) => tenants.some((tenant) => mail.to.includes(`owner@${tenant}.test`)));
    expect(mails.map((mail) => mail.to[0]).sort()).toEqual(tenants.map((tenant) => `owner@${tenant}.test`).sort());
    const deliveryIds = mails.map((mail) => mail.headers['x-agentmeter-delivery']);
    expect(new Set(deliveryIds).size).toBe(tenants.length);
    await expectExactSums(tenantId, load, { count: 1, micros: 50_000 });
  });
});
