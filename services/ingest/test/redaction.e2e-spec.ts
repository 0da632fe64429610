import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { SignJWT } from 'jose';
import { Partitioners, type Kafka, type Message } from 'kafkajs';
import {
  AgentEvent,
  ALL_TOPICS,
  EXAMPLE_EVENTS,
  topicName,
  Topics,
  type AgentEventInput,
  type EventType,
} from '@agentmeter/contracts';
import {
  createTestDatabase,
  createTestTopics,
  readAll,
  startService,
  testEnvironment,
  testKafka,
  testRedactor,
  waitForGroupCaughtUp,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';
import { REDACTION_CORPUS } from '../../../libs/domain/src/privacy/redaction-corpus';

/**
 * Nothing sensitive stored anywhere (docs/security.md "Redaction and pseudonymisation"). The whole corpus of
 * fake secrets and personal data goes through every input path of the running services (compiled, their own
 * processes, real Kafka, PostgreSQL and Redis): Kafka events of every type (envelope included) and invalid
 * messages, OTLP/HTTP exports in protobuf (the OpenTelemetry SDK's) and JSON (attributes, span status and
 * span events), and every HTTP write of query, cost-cap and alert. Afterwards a pg_dump of the database,
 * every service's log, the dead-letter topic and every other topic of the test's prefix hold none of it;
 * and user ids that are e-mail addresses still attribute cost to one user each.
 */
describe('redaction at every boundary', () => {
  const env = testEnvironment();
  const run = randomBytes(3).toString('hex');
  const T = `red-${run}`;
  const ATTRIBUTION_TENANT = `attr-${run}`;
  const JWT_SECRET = `redaction-test-secret-${randomBytes(16).toString('hex')}`;
  const COST_CAP_TOKEN = randomBytes(24).toString('hex');
  const ALERT_TOKEN = randomBytes(24).toString('hex');
  const OTLP_TOKEN = `otlp-${randomBytes(16).toString('hex')}`;
  const INPUT_HEADER = 'x-redaction-test-input';
  // About 2,000 HTTP writes and 1,500 events through four services: generous bounds for a loaded machine.
  const CATCH_UP_MS = 300_000;
  const TEST_MS = 900_000;
  const samples = REDACTION_CORPUS.map((entry) => entry.sample);
  const users = { alice: 'alice.fake@example.com', aliceAgain: 'Alice.Fake@Example.com', bob: 'bob.fake@example.net' };

  let kafka: Kafka;
  let db: TestDatabase;
  let topicPrefix: string;
  const groups = { ingest: '', costCap: '', alert: '' };
  const services: Record<'ingest' | 'costCap' | 'alert' | 'query', RunningService> = {} as never;
  /** Route -> statuses answered, to show the writes were accepted (a refused write stores nothing anyway). */
  const answered = new Map<string, number[]>();

  beforeAll(async () => {
    kafka = testKafka();
    db = await createTestDatabase();
    topicPrefix = await createTestTopics(kafka, 1);
    const redisPrefix = `${env.redisPrefix}red-${run}:`;
    groups.ingest = `${topicPrefix}ingest`;
    groups.costCap = `${topicPrefix}cost-cap`;
    groups.alert = `${topicPrefix}alert`;
    const common = {
      DATABASE_URL: db.url,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      REDIS_KEY_PREFIX: redisPrefix,
      LOG_LEVEL: 'info',
    };
    const [ingest, costCap, alert] = await Promise.all([
      startService('ingest', {
        ...common,
        INGEST_GROUP_ID: groups.ingest,
        OTLP_TOKENS: `*=${OTLP_TOKEN}`,
      }),
      startService('cost-cap', {
        ...common,
        COST_CAP_GROUP_ID: groups.costCap,
        COST_CAP_API_TOKEN: COST_CAP_TOKEN,
      }),
      startService('alert', {
        ...common,
        ALERT_GROUP_ID: groups.alert,
        ALERT_API_TOKEN: ALERT_TOKEN,
        ALERT_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      }),
    ]);
    const query = await startService('query', {
      ...common,
      AUTH_JWT_SECRET: JWT_SECRET,
      COST_CAP_URL: costCap.url,
      COST_CAP_API_TOKEN: COST_CAP_TOKEN,
      ALERT_URL: alert.url,
      ALERT_API_TOKEN: ALERT_TOKEN,
      QUERY_RATE_LIMIT: '100000',
    });
    Object.assign(services, { ingest, costCap, alert, query });
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) for (const [name, s] of Object.entries(services)) console.log(name, s.output());
    await Promise.all(Object.values(services).map((service) => service.stop()));
    await db?.drop();
  });

  async function produce(messages: Message[]): Promise<void> {
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const marked = messages.map((m) => ({ ...m, headers: { ...m.headers, [INPUT_HEADER]: '1' } }));
      for (let i = 0; i < marked.length; i += 200) {
        await producer.send({ topic: topicName(topicPrefix, Topics.AgentEvents), messages: marked.slice(i, i + 200) });
      }
    } finally {
      await producer.disconnect();
    }
  }

  async function http(
    route: string,
    base: string,
    method: string,
    path: string,
    bearer: string,
    body?: unknown,
  ): Promise<Answer> {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    answered.set(route, [...(answered.get(route) ?? []), response.status]);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: response.status, json };
  }

  it(
    'stores, logs and publishes no secret of the corpus, whichever way it came in',
    async () => {
      await produce([...corpusEvents(samples), ...invalidMessages(samples), ...attributionEvents(), ...targetRuns()]);
      // The tenant and runs the HTTP writes act on exist before they are written.
      await waitForGroupCaughtUp(kafka, groups.ingest, topicName(topicPrefix, Topics.AgentEvents), CATCH_UP_MS);

      // OTLP/HTTP, binary protobuf as the SDK encodes it and OTLP/JSON.
      const otlp = (body: Buffer | string, type: string) =>
        fetch(`${services.ingest.url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': type, authorization: `Bearer ${OTLP_TOKEN}` },
          body,
        });
      const protobuf = Buffer.from(ProtobufTraceSerializer.serializeRequest(await sdkSpans(samples))!);
      expect((await otlp(protobuf, 'application/x-protobuf')).status).toBe(200);
      expect((await otlp(JSON.stringify(otlpJson(samples)), 'application/json')).status).toBe(200);

      await httpWrites();

      // Everything consumed and everything derived from it (cost-cap's alerts and commands) consumed too.
      const eventsTopic = topicName(topicPrefix, Topics.AgentEvents);
      const alertsTopic = topicName(topicPrefix, Topics.Alerts);
      await waitForGroupCaughtUp(kafka, groups.ingest, eventsTopic, CATCH_UP_MS);
      await waitForGroupCaughtUp(kafka, groups.costCap, eventsTopic, CATCH_UP_MS);
      await waitForGroupCaughtUp(kafka, groups.alert, eventsTopic, CATCH_UP_MS);
      await waitForGroupCaughtUp(kafka, `${groups.alert}-signals`, alertsTopic, CATCH_UP_MS);

      const stored = await psql(`SELECT count(*) FROM events`);
      expect(Number(stored)).toBeGreaterThanOrEqual(samples.length * EVENT_TYPES_WITH_TEXT);
      const refused = [...answered].filter(([, statuses]) => !statuses.some((status) => status < 300));
      expect(refused.map(([route, statuses]) => `${route}: ${[...new Set(statuses)].join()}`)).toEqual([]);

      // The places the security review found the corpus in hold it redacted or pseudonymised.
      expect(Number(await psql(`SELECT count(*) FROM alert_samples WHERE detail LIKE '%[REDACTED:%'`))).toBeGreaterThan(
        0,
      );
      expect(
        Number(await psql(`SELECT count(*) FROM failures WHERE reason LIKE '%[REDACTED:payment_card]%'`)),
      ).toBeGreaterThan(0);
      expect(Number(await psql(`SELECT count(*) FROM events WHERE source LIKE 'source:hmac:%'`))).toBeGreaterThan(0);
      const actor = testRedactor().identifier(users.alice, 'user');
      expect(Number(await psql(`SELECT count(*) FROM audit_log WHERE actor = '${actor}'`))).toBeGreaterThan(0);

      const haystacks: Array<[string, string]> = [
        ['pg_dump', await pgDump()],
        ['query answers', await answers()],
      ];
      for (const [name, service] of Object.entries(services)) haystacks.push([`${name} log`, service.output()]);
      for (const topic of ALL_TOPICS) {
        const messages = await readAll(kafka, topicName(topicPrefix, topic), CATCH_UP_MS);
        // The test's own input is the only thing on agent.events.v1 allowed to hold the corpus.
        const published =
          topic === Topics.AgentEvents ? messages.filter((m) => m.headers[INPUT_HEADER] === undefined) : messages;
        if (topic === Topics.AgentEvents) expect(published.length).toBeGreaterThan(0); // the OTLP receiver's
        if (topic === Topics.AgentEventsDlq) expect(published.length).toBe(samples.length * 2);
        haystacks.push([topic, published.map((m) => JSON.stringify(m)).join('\n')]);
      }
      expect(haystacks.find(([name]) => name === 'pg_dump')![1]).toContain('[REDACTED:');

      const leaks: string[] = [];
      const secrets = [...REDACTION_CORPUS.map((e) => [`${e.kind}/${e.context}`, e.secret]), ...Object.entries(users)];
      for (const [name, secret] of secrets) {
        for (const needle of needlesOf(secret!)) {
          for (const [where, text] of haystacks) {
            const at = text.indexOf(needle);
            if (at >= 0)
              leaks.push(`${name} in ${where}: ${text.slice(Math.max(0, at - 80), at + needle.length + 40)}`);
          }
        }
      }
      expect(leaks).toEqual([]);
    },
    TEST_MS,
  );

  it('keeps per-user attribution: two e-mail user ids stay two users, a repeat is the same user', async () => {
    const redactor = testRedactor();
    const alice = redactor.identifier(users.alice, 'user');
    const bob = redactor.identifier(users.bob, 'user');
    expect(alice).toMatch(/^user:hmac:[0-9a-f]{16}$/);
    expect(bob).not.toBe(alice);
    const bearer = await jwt(ATTRIBUTION_TENANT, ['admin'], 'finance-lead');
    const answer = await http(
      'analytics',
      services.query.url,
      'GET',
      `/api/v1/analytics/costs?period=7d&group_by=user&tenant_id=${ATTRIBUTION_TENANT}`,
      bearer,
    );
    expect(answer.status).toBe(200);
    const costs = Object.fromEntries(
      (answer.json.rows as Array<{ key: string; llm_cost_usd: string; calls: number }>).map((r) => [
        r.key,
        [r.llm_cost_usd, r.calls],
      ]),
    );
    expect(costs).toEqual({ [alice]: ['0.300000', 3], [bob]: ['0.050000', 1] });
  });

  /** Every write route of query (as an Admin whose JWT subject is an e-mail), cost-cap and alert. */
  async function httpWrites(): Promise<void> {
    const cc = services.costCap.url;
    const al = services.alert.url;
    const q = services.query.url;
    for (const [i, sample] of samples.entries()) {
      const audited = { actor: sample, reason: sample };
      const admin = await jwt(T, ['admin'], users.alice);
      // A daily cap first: the raises below need one.
      await http('cost-cap caps', cc, 'PUT', `/v1/tenants/${T}/caps`, COST_CAP_TOKEN, {
        ...audited,
        daily_cap_usd: '1000',
      });
      // query: actions (forwarded to cost-cap and alert), API keys, tenant settings.
      await http('query pause', q, 'POST', `/tenants/${T}/pause`, admin, { reason: sample });
      await http('query unpause', q, 'POST', `/tenants/${T}/unpause`, admin, { reason: sample });
      await http('query caps', q, 'POST', `/tenants/${T}/caps`, admin, {
        cap: 'tenant_daily_cost',
        limit: '1500',
        reason: sample,
      });
      await http('query reopen', q, 'POST', `/runs/run-${i}/reopen-phase`, admin, {
        phase: 'implement',
        reason: sample,
      });
      await http('query rerun', q, 'POST', `/runs/run-${i}/rerun-last-step`, admin, { reason: sample });
      const mute = await http('query mute', q, 'POST', '/alerts/mutes', admin, {
        tenant_id: T,
        duration_hours: 1,
        reason: sample,
      });
      const muteId = (mute.json?.result?.id ?? mute.json?.result?.mute_id) as string | undefined;
      if (muteId) {
        await http('query unmute', q, 'DELETE', `/alerts/mutes/${muteId}`, admin, { tenant_id: T, reason: sample });
      }
      const key = await http('query api key', q, 'POST', '/api-keys', admin, {
        name: sample,
        role: 'op',
        tenant_id: T,
      });
      if (key.json?.key_id) await http('query revoke key', q, 'DELETE', `/api-keys/${key.json.key_id}`, admin);
      await http('query settings', q, 'PATCH', `/tenants/${T}/settings`, admin, {
        owner_sees_tokens: true,
        reason: sample,
      });

      // cost-cap, called directly as the Coordinator and operators' tools do.
      const raise = await http('cost-cap raise', cc, 'POST', `/v1/tenants/${T}/overrides`, COST_CAP_TOKEN, {
        ...audited,
        cap: 'tenant_daily_cost',
        limit: '2000',
      });
      const overrideId = (raise.json?.override_id ?? raise.json?.id) as string | undefined;
      if (overrideId) {
        await http('cost-cap revoke', cc, 'POST', `/v1/overrides/${overrideId}/revoke`, COST_CAP_TOKEN, audited);
      }
      await http('cost-cap pause', cc, 'POST', `/v1/tenants/${T}/pause`, COST_CAP_TOKEN, audited);
      await http('cost-cap unpause', cc, 'POST', `/v1/tenants/${T}/unpause`, COST_CAP_TOKEN, audited);
      await http('cost-cap ladder', cc, 'PUT', `/v1/tenants/${T}/model-ladder`, COST_CAP_TOKEN, {
        ...audited,
        steps: [{ model: `gpt-${i}`, cheaper_model: 'gpt-4.1-mini' }],
      });
      await http('cost-cap unfreeze', cc, 'POST', `/v1/playbooks/site/unfreeze`, COST_CAP_TOKEN, audited);
      const reserve = (runId: string) =>
        http('cost-cap reserve', cc, 'POST', '/v1/admission/reserve', COST_CAP_TOKEN, {
          tenant_id: T,
          project_id: 'site',
          run_id: runId,
          role: 'implementer',
          model: 'gpt-4.1',
          provider: 'openai',
          playbook: 'site',
          estimate: { cost_usd: '0.010000' },
          idempotency_key: `${sample} (${runId === sample ? 'commit' : 'release'} ${i})`,
        });
      const committed = await reserve(sample);
      if (committed.json?.reservation_id) {
        await http(
          'cost-cap commit',
          cc,
          'POST',
          `/v1/admission/reservations/${committed.json.reservation_id}/commit`,
          COST_CAP_TOKEN,
          { event: { source: sample, id: `commit-${i}` }, actual: { cost_usd: '0.010000' } },
        );
      }
      const released = await reserve(`release-${i}`);
      if (released.json?.reservation_id) {
        await http(
          'cost-cap release',
          cc,
          'POST',
          `/v1/admission/reservations/${released.json.reservation_id}/release`,
          COST_CAP_TOKEN,
          {},
        );
      }
      await http('cost-cap samples', cc, 'POST', '/v1/playbooks/site/validator-samples', COST_CAP_TOKEN, {
        samples: [{ sample_id: `sample-${i}`, passed: true, tenant_id: T, run_id: sample }],
      });

      // alert: Alertmanager's webhook and the admin API.
      await http('alertmanager', al, 'POST', '/observability/alerts', ALERT_TOKEN, {
        version: '4',
        groupKey: `{}:{alertname="Corpus${i}"}`,
        status: 'firing',
        receiver: sample,
        groupLabels: { alertname: `Corpus${i}` },
        commonLabels: { alertname: `Corpus${i}`, note: sample },
        commonAnnotations: { summary: sample },
        externalURL: 'http://alertmanager.test',
        alerts: [
          {
            status: 'firing',
            labels: { alertname: `Corpus${i}`, service: 'ingest', note: sample },
            annotations: { summary: sample, description: sample },
            startsAt: new Date().toISOString(),
            fingerprint: `f${i}`,
          },
        ],
      });
      const contact = await http('alert contact', al, 'POST', '/admin/contacts', ALERT_TOKEN, {
        ...audited,
        tenant_id: T,
        audience: 'owner',
        channel: 'email',
        target: `owner-${i}@ops.test`,
      });
      if (contact.json?.id) {
        await http(
          'alert contact delete',
          al,
          'DELETE',
          `/admin/contacts/${contact.json.id}?tenant_id=${T}`,
          ALERT_TOKEN,
          {
            ...audited,
            tenant_id: T,
          },
        );
      }
      const alertMute = await http('alert mute', al, 'POST', '/admin/mutes', ALERT_TOKEN, {
        ...audited,
        tenant_id: T,
        rule: sample.slice(0, 200),
        ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      });
      if (alertMute.json?.id) {
        await http('alert unmute', al, 'DELETE', `/admin/mutes/${alertMute.json.id}`, ALERT_TOKEN, {
          ...audited,
          tenant_id: T,
        });
      }
      const timing = await http('alert mute timing', al, 'POST', '/admin/mute-timings', ALERT_TOKEN, {
        ...audited,
        tenant_id: T,
        name: sample.slice(0, 200),
        weekdays: ['sat', 'sun'],
      });
      if (timing.json?.id) {
        await http('alert mute timing delete', al, 'DELETE', `/admin/mute-timings/${timing.json.id}`, ALERT_TOKEN, {
          ...audited,
          tenant_id: T,
        });
      }
      await http('alert threshold', al, 'PUT', `/admin/thresholds/${T}/owner.cap_warning`, ALERT_TOKEN, {
        ...audited,
        params: { percent: 75 },
      });
      await http(
        'alert threshold reset',
        al,
        'DELETE',
        `/admin/thresholds/${T}/owner.cap_warning`,
        ALERT_TOKEN,
        audited,
      );
    }
  }

  /** What the query API gives back: runs (JSON and CSV), run timelines, the audit log, API keys. */
  async function answers(): Promise<string> {
    const admin = await jwt(T, ['admin'], 'reader');
    const q = services.query.url;
    const texts: string[] = [];
    const get = async (path: string) => {
      const response = await fetch(`${q}${path}`, { headers: { authorization: `Bearer ${admin}` } });
      const text = await response.text();
      expect({ path, status: response.status, text: response.status === 200 ? '' : text }).toEqual({
        path,
        status: 200,
        text: '',
      });
      texts.push(text);
      return text;
    };
    const runs = JSON.parse(await get('/runs?limit=500')) as { items: Array<{ run_id: string }> };
    expect(runs.items.length).toBeGreaterThan(0);
    await get('/runs?limit=500&format=csv');
    for (const item of runs.items.slice(0, 40)) {
      const path = `/runs/${encodeURIComponent(item.run_id)}/events`;
      await get(path);
      await get(`${path}?format=csv`);
    }
    await get('/audit?limit=500');
    await get(`/api-keys?tenant_id=${T}`);
    return texts.join('\n');
  }

  function jwt(tenant: string, roles: string[], subject: string): Promise<string> {
    return new SignJWT({ tenant_id: tenant, roles })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(subject)
      .setIssuer('agentmeter')
      .setAudience('agentmeter-api')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(JWT_SECRET));
  }

  async function psql(sql: string): Promise<string> {
    const { stdout } = await promisify(execFile)('psql', [db.url, '-Atc', sql]);
    return stdout.trim();
  }

  async function pgDump(): Promise<string> {
    const { stdout } = await promisify(execFile)('pg_dump', [db.url], { maxBuffer: 512 * 1024 * 1024 });
    return stdout;
  }

  /** The tenant the HTTP writes act on, with one run per sample. */
  function targetRuns(): Message[] {
    return samples.map((_, i) => {
      const event: AgentEventInput<'run_started'> = {
        specversion: '1.0',
        id: `target-${i}`,
        source: 'coordinator/test',
        type: 'run_started',
        time: new Date().toISOString(),
        subject: T,
        data: { tenant_id: T, project_id: 'site', run_id: `run-${i}`, playbook: 'site' },
      };
      return { key: event.data.run_id, value: JSON.stringify(event) };
    });
  }

  function attributionEvents(): Message[] {
    const calls: Array<[string, string]> = [
      [users.alice, '0.100000'],
      [users.alice, '0.100000'],
      [users.aliceAgain, '0.100000'],
      [users.bob, '0.050000'],
    ];
    return calls.map(([user, cost], i) => {
      const event: AgentEventInput<'llm_call'> = {
        specversion: '1.0',
        id: `attribution-${i}`,
        source: 'coordinator/test',
        type: 'llm_call',
        time: new Date().toISOString(),
        subject: ATTRIBUTION_TENANT,
        data: {
          tenant_id: ATTRIBUTION_TENANT,
          project_id: 'site',
          run_id: `attribution-run-${i}`,
          phase: 'implement',
          role: 'implementer',
          model: 'gpt-4.1',
          provider: 'openai',
          prompt_tokens: 10,
          completion_tokens: 1,
          latency_ms: 5,
          cost_usd: cost,
          user_id: user,
        },
      };
      return { key: event.data.run_id, value: JSON.stringify(event) };
    });
  }
});

interface Answer {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the answers of many routes
}

/** Optional free-text fields the examples leave out, so that every field of every type gets the corpus. */
const EXTRA: Partial<Record<EventType, Record<string, unknown>>> = {
  run_started: {
    playbook: 'p',
    model: 'm',
    user_id: 'u',
    environment: { name: 'n', region: 'r', version: 'v' },
  },
  validation_failed: { artifact_path: 'a', artifact_version: 'v' },
  phase_advanced: { next_phase: 'n' },
  run_finished: { summary: 's' },
  run_failed: { phase: 'p', role: 'r' },
  user_override: { phase: 'p' },
  impersonation_started: { reason: 'r' },
  llm_call: { status: 'error', error: 'e', user_id: 'u' },
  tool_call: { status: 'error', error: 'e', mcp_server: 's', cache_key_space: 'k' },
  external_charge: { phase: 'p', description: 'd' },
  task_dequeued: { phase: 'p' },
  cap_hit: {
    override: { override_id: 'o', limit: '1', expires_at: '2026-12-31T00:00:00Z', actor: 'a', reason: 'r' },
  },
};

/** Event types with at least one free-text field: every one of them. */
const EVENT_TYPES_WITH_TEXT = EXAMPLE_EVENTS.length;

/** Every example event once per sample, with the sample in every string the contract accepts it in. */
function corpusEvents(samples: readonly string[]): Message[] {
  const messages: Message[] = [];
  samples.forEach((sample, i) => {
    for (const example of EXAMPLE_EVENTS) {
      const base = structuredClone(example) as AgentEventInput & { data: Record<string, unknown> };
      Object.assign(base.data, structuredClone(EXTRA[example.type] ?? {}));
      base.id = `corpus-${i}-${example.type}`;
      base.time = new Date().toISOString();
      const event = withSample(base, sample);
      messages.push({ key: String(event.data.run_id ?? event.data.tenant_id), value: JSON.stringify(event) });
    }
  });
  return messages;
}

/** Puts the sample into each string leaf (and the source) where the event stays valid. */
function withSample<E extends { source: string; subject: string; data: Record<string, unknown> }>(
  event: E,
  sample: string,
): E {
  const valid = (candidate: E) => AgentEvent.safeParse({ ...candidate, subject: candidate.data.tenant_id }).success;
  let current: E = { ...event, source: sample };
  if (!valid(current)) current = event;
  const paths: string[][] = [];
  const collect = (value: unknown, path: string[]) => {
    if (typeof value === 'string') paths.push(path);
    else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) collect(item, [...path, key]);
    }
  };
  collect(current.data, []);
  for (const path of paths) {
    const candidate = structuredClone(current);
    let node = candidate.data as Record<string, unknown>;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
    node[path.at(-1)!] = sample;
    if (valid(candidate)) current = candidate;
  }
  return { ...current, subject: current.data.tenant_id as string };
}

/** Messages ingest dead-letters: not JSON, and an event failing validation. */
function invalidMessages(samples: readonly string[]): Message[] {
  return samples.flatMap((sample, i) => [
    { key: `bad-${i}`, value: `not an event: ${sample}` },
    {
      key: `bad-${i}`,
      value: JSON.stringify({
        specversion: '1.0',
        id: `bad-${i}`,
        source: sample,
        type: 'llm_call',
        time: 'yesterday',
        subject: sample,
        data: { tenant_id: sample, error: sample },
      }),
    },
  ]);
}

/** One LLM span and one tool span per sample, made by the OpenTelemetry SDK: attributes, status, events. */
async function sdkSpans(samples: readonly string[]): Promise<ReadableSpan[]> {
  const spans: ReadableSpan[] = [];
  for (const sample of samples) {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': sample, 'agentmeter.tenant_id': sample }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    const tracer = provider.getTracer(sample);
    const stage = {
      'agentmeter.run_id': sample,
      'agentmeter.project_id': sample,
      'agentmeter.phase': sample,
      'agentmeter.role': sample,
      'user.id': sample,
    };
    const started = Date.now() - 5_000;
    const llm = tracer.startSpan(
      sample,
      {
        attributes: {
          ...stage,
          'gen_ai.request.model': sample,
          'gen_ai.provider.name': sample,
          'gen_ai.usage.input_tokens': 3,
          'gen_ai.usage.output_tokens': 1,
        },
        startTime: new Date(started),
      },
      context.active(),
    );
    llm.addEvent(sample, { 'exception.message': sample });
    llm.setStatus({ code: SpanStatusCode.ERROR, message: sample });
    llm.end(new Date(started + 100));
    const tool = tracer.startSpan(
      sample,
      {
        attributes: { ...stage, 'mcp.tool': sample, 'mcp.server': sample, 'mcp.cache_key': sample },
        startTime: new Date(started + 200),
      },
      trace.setSpan(context.active(), llm),
    );
    tool.setStatus({ code: SpanStatusCode.ERROR, message: sample });
    tool.end(new Date(started + 300));
    await provider.forceFlush();
    spans.push(...exporter.getFinishedSpans());
  }
  return spans;
}

/** The same in OTLP/JSON, with the sample as error.type when the status has no message. */
function otlpJson(samples: readonly string[]): unknown {
  const string = (key: string, value: string) => ({ key, value: { stringValue: value } });
  const ns = (ms: number) => String(BigInt(Date.now() - 5_000 + ms) * 1_000_000n);
  return {
    resourceSpans: samples.map((sample) => ({
      resource: { attributes: [string('service.name', sample), string('tenant.id', sample)] },
      scopeSpans: [
        {
          scope: { name: sample },
          spans: [
            {
              traceId: randomBytes(16).toString('hex'),
              spanId: randomBytes(8).toString('hex'),
              name: sample,
              startTimeUnixNano: ns(0),
              endTimeUnixNano: ns(100),
              attributes: [
                string('run.id', sample),
                string('project.id', sample),
                string('enduser.id', sample),
                string('llm.model', sample),
                string('llm.provider', sample),
                { key: 'llm.tokens.prompt', value: { intValue: '3' } },
                { key: 'llm.tokens.completion', value: { intValue: '1' } },
                string('error.type', sample),
              ],
              events: [{ timeUnixNano: ns(50), name: sample, attributes: [string('exception.message', sample)] }],
              status: { code: 2 },
            },
          ],
        },
      ],
    })),
  };
}

/** The secret as it may appear: raw, JSON-escaped, and each line of a multi-line secret on its own. */
function needlesOf(secret: string): string[] {
  const escaped = JSON.stringify(secret).slice(1, -1);
  const lines = secret.split(/\\n|\n/).filter((line) => line.length >= 16);
  return [...new Set([secret, escaped, ...lines])];
}
