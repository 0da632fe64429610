import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { SignJWT } from 'jose';
import {
  createTestDatabase,
  createTestTopics,
  startService,
  testEnvironment,
  testKafka,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';

/**
 * Every route of every HTTP service's OpenAPI document, sent a shared set of bad bodies and bad query
 * parameters with that service's credential, answers 4xx, never 5xx, and a 400 is problem+json
 * (docs/security.md "Bad requests"). The services run as processes from dist/, as in production.
 */

interface Target {
  name: string;
  service: RunningService;
  credential: string;
}

interface Route {
  method: string;
  path: string;
}

const ID = '00000000-0000-4000-8000-000000000000';

let nested = '"x"';
for (let i = 0; i < 200; i++) nested = `{"a":${nested}}`;

/** Bodies, as raw text with their content type; each is refused whatever the route expects. */
const BAD_BODIES: Array<[string, string, string]> = [
  [
    'NUL in text',
    'application/json',
    '{"reason":"a\\u0000b","actor":"x\\u0000","name":"n\\u0000","tenant_id":"t\\u0000"}',
  ],
  ['NUL in a key', 'application/json', '{"reas\\u0000on":"x"}'],
  ['control characters', 'application/json', '{"reason":"\\u0007\\u001b[31m","actor":"\\u0008"}'],
  ['a lone surrogate', 'application/json', '{"reason":"\\ud800","actor":"a\\udfff"}'],
  ['an unknown field', 'application/json', '{"unknown_field_x":1}'],
  ['__proto__', 'application/json', '{"__proto__":{"polluted":true},"reason":"x","actor":"a"}'],
  ['constructor.prototype', 'application/json', '{"constructor":{"prototype":{"polluted":true}}}'],
  ['prototype', 'application/json', '{"prototype":{"polluted":true}}'],
  ['wrong types', 'application/json', '{"reason":1,"actor":[],"tenant_id":{},"limit":true,"cap":null}'],
  ['huge numbers', 'application/json', '{"limit":1e400,"duration_hours":99999999999999999999999,"estimate":-1e308}'],
  ['non-JSON', 'application/json', 'not json at all'],
  ['truncated JSON', 'application/json', '{"reason":"x"'],
  ['text/plain', 'text/plain', 'hello'],
  ['an empty array', 'application/json', '[]'],
  ['an array of objects', 'application/json', '[{"reason":"x","actor":"a"}]'],
  ['null', 'application/json', 'null'],
  ['a bare string', 'application/json', '"reason"'],
  ['a bare number', 'application/json', '12'],
  ['deep nesting', 'application/json', nested],
];

/** Empty bodies: a 2xx is right where a route needs nothing (an OTLP export of no spans), never a 5xx. */
const EMPTY_BODIES: Array<[string, string, string]> = [
  ['an empty body', 'application/json', ''],
  ['an empty object', 'application/json', '{}'],
];

/**
 * OTLP/JSON receivers must ignore fields with unknown names (OTLP specification, "JSON Protobuf Encoding"), so
 * a body made only of unknown fields is an export of no spans there: never a 5xx, but a 2xx is right.
 */
const IGNORES_UNKNOWN_FIELDS = new Set(['POST /v1/traces']);
const UNKNOWN_ONLY = new Set(['an unknown field', 'wrong types', 'huge numbers']);

/** Query strings appended to every route (write and read); `refused`: a 4xx is the only right answer. */
const BAD_QUERIES: Array<[string, string, boolean]> = [
  ['an unknown parameter', 'unknown_param_x=1', true],
  ['NUL', 'tenant_id=a%00b', true],
  ['a control character', 'tenant_id=%07', true],
  ['a repeated parameter', 'tenant_id=a&tenant_id=b', true],
  ['__proto__', '__proto__=x', true],
  ['a huge number', 'limit=1e400', true],
  // Decoded as U+FFFD: a strange but valid tenant id, so only "never 5xx" applies.
  ['an invalid UTF-8 sequence', 'tenant_id=%ED%A0%80', false],
];

describe('bad requests on every route of every service', () => {
  const suffix = randomBytes(3).toString('hex');
  const jwtSecret = randomBytes(24).toString('hex');
  const costCapToken = randomBytes(16).toString('hex');
  const alertToken = randomBytes(16).toString('hex');
  const otlpToken = randomBytes(16).toString('hex');
  let database: TestDatabase;
  let kafka: Kafka;
  const targets: Target[] = [];
  let alertWorker: RunningService | undefined;
  const routes = new Map<string, Route[]>();

  beforeAll(async () => {
    database = await createTestDatabase();
    kafka = testKafka();
    const topicPrefix = await createTestTopics(kafka, 1);
    const redisPrefix = `${testEnvironment().redisPrefix}bad-${suffix}:`;
    const common = {
      DATABASE_URL: database.url,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      REDIS_KEY_PREFIX: redisPrefix,
      LOG_LEVEL: 'error',
    };
    const [query, costCap, alert, ingest, worker] = await Promise.all([
      // Thousands of requests from one credential: the rate limit (tested on its own in query-hygiene) is
      // raised so every answer here is the validation's.
      startService('query', { ...common, AUTH_JWT_SECRET: jwtSecret, QUERY_RATE_LIMIT: '1000000' }),
      startService('cost-cap', {
        ...common,
        COST_CAP_API_TOKEN: costCapToken,
        COST_CAP_GROUP_ID: `${topicPrefix}cost-cap`,
        COST_CAP_SESSION_TIMEOUT_MS: '6000',
      }),
      startService('alert', {
        ...common,
        ALERT_API_TOKEN: alertToken,
        ALERT_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        ALERT_GROUP_ID: `${topicPrefix}alert`,
        ALERT_SESSION_TIMEOUT_MS: '6000',
      }),
      startService('ingest', {
        ...common,
        OTLP_TOKENS: `bad-${suffix}=${otlpToken}`,
        INGEST_GROUP_ID: `${topicPrefix}ingest`,
        INGEST_SESSION_TIMEOUT_MS: '6000',
      }),
      // Only health and metrics over HTTP: started for its headers.
      startService('alert-worker', { ...common, ALERT_ENCRYPTION_KEY: randomBytes(32).toString('base64') }),
    ]);
    alertWorker = worker;
    const admin = await new SignJWT({ tenant_id: `bad-${suffix}`, roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('walker')
      .setIssuer('agentmeter')
      .setAudience('agentmeter-api')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(jwtSecret));
    targets.push(
      { name: 'query', service: query, credential: admin },
      { name: 'cost-cap', service: costCap, credential: costCapToken },
      { name: 'alert', service: alert, credential: alertToken },
      { name: 'ingest', service: ingest, credential: otlpToken },
    );
    for (const target of targets) routes.set(target.name, await routesOf(target.service.url));
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) for (const t of targets) console.log(t.service.output());
    await Promise.all([...targets.map((t) => t.service.stop()), alertWorker?.stop()]);
    await database?.drop();
  });

  it('finds the write routes of every service in its OpenAPI document', () => {
    const writes = (name: string) => routes.get(name)!.filter((r) => r.method !== 'GET').length;
    expect(writes('query')).toBeGreaterThanOrEqual(10);
    expect(writes('cost-cap')).toBeGreaterThanOrEqual(8);
    expect(writes('alert')).toBeGreaterThanOrEqual(8);
    expect(routes.get('ingest')!.map((r) => `${r.method} ${r.path}`)).toContain('POST /v1/traces');
  });

  it.each(['query', 'cost-cap', 'alert', 'ingest'])('%s answers every bad body with a 4xx', async (name) => {
    const target = targets.find((t) => t.name === name)!;
    const failures: string[] = [];
    for (const route of routes.get(name)!.filter((r) => r.method !== 'GET')) {
      for (const [what, type, body] of BAD_BODIES) {
        const answer = await send(target, route, '', { type, body });
        const lenient = IGNORES_UNKNOWN_FIELDS.has(`${route.method} ${route.path}`) && UNKNOWN_ONLY.has(what);
        if (lenient ? answer.status >= 500 : !acceptable(answer))
          failures.push(`${route.method} ${route.path} with ${what}: ${describe_(answer)}`);
      }
      for (const [what, type, body] of EMPTY_BODIES) {
        const answer = await send(target, route, '', { type, body });
        if (answer.status >= 500) failures.push(`${route.method} ${route.path} with ${what}: ${describe_(answer)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it.each(['query', 'cost-cap', 'alert', 'ingest'])(
    '%s answers every bad query parameter with a 4xx, on read and write routes',
    async (name) => {
      const target = targets.find((t) => t.name === name)!;
      const failures: string[] = [];
      for (const route of routes.get(name)!) {
        for (const [what, query, refused] of BAD_QUERIES) {
          const answer = await send(target, route, query, { type: 'application/json', body: '{}' });
          if (refused ? !acceptable(answer) : answer.status >= 500) {
            failures.push(`${route.method} ${route.path}?${query} (${what}): ${describe_(answer)}`);
          }
        }
      }
      expect(failures).toEqual([]);
    },
  );

  it.each(['query', 'cost-cap', 'alert', 'ingest'])(
    '%s sends the security headers on answers and errors, and no X-Powered-By',
    async (name) => {
      const target = targets.find((t) => t.name === name)!;
      for (const path of ['/health', '/no-such-route', `/${routes.get(name)![0]!.path.slice(1)}?unknown_param_x=1`]) {
        const response = await fetch(`${target.service.url}${path.replace(/\{[^}]+\}/g, ID)}`, {
          headers: { authorization: `Bearer ${target.credential}` },
        });
        await response.text();
        const headers = {
          path,
          poweredBy: response.headers.get('x-powered-by'),
          nosniff: response.headers.get('x-content-type-options'),
          csp: response.headers.get('content-security-policy'),
          hsts: /max-age=\d+/.test(response.headers.get('strict-transport-security') ?? ''),
        };
        expect(headers).toEqual({
          path,
          poweredBy: null,
          nosniff: 'nosniff',
          csp: "default-src 'none';frame-ancestors 'none'",
          hsts: true,
        });
      }
      const ui = await fetch(`${target.service.url}/docs`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toContain('swagger-ui');
      expect(ui.headers.get('content-security-policy')).toContain("script-src 'self'");
    },
  );

  it('alert-worker sends the security headers too, and no X-Powered-By', async () => {
    for (const path of ['/health', '/metrics', '/no-such-route']) {
      const response = await fetch(`${alertWorker!.url}${path}`);
      await response.text();
      expect({ path, poweredBy: response.headers.get('x-powered-by') }).toEqual({ path, poweredBy: null });
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    }
  });

  it.each(['query', 'cost-cap', 'alert', 'ingest'])(
    '%s answers control characters and lone surrogates in path parameters with a 4xx',
    async (name) => {
      const target = targets.find((t) => t.name === name)!;
      const failures: string[] = [];
      for (const route of routes.get(name)!.filter((r) => r.path.includes('{'))) {
        for (const value of ['a%00b', '%07', '%0B', 'x%ED%A0%80']) {
          const path = route.path.replace(/\{[^}]+\}/g, value);
          const answer = await send(target, { method: route.method, path }, '', {
            type: 'application/json',
            body: '{}',
          });
          if (!acceptable(answer)) failures.push(`${route.method} ${path}: ${describe_(answer)}`);
        }
      }
      expect(failures).toEqual([]);
    },
  );

  it('names the field of an unknown field next to valid ones, in each service', async () => {
    const cases: Array<[string, Route, string]> = [
      ['query', { method: 'POST', path: '/tenants/{tenant_id}/pause' }, '{"reason":"x","force":true}'],
      ['cost-cap', { method: 'POST', path: '/v1/tenants/{tenant_id}/pause' }, '{"actor":"a","reason":"x","force":1}'],
      [
        'alert',
        { method: 'POST', path: '/admin/mutes' },
        JSON.stringify({
          tenant_id: 't',
          actor: 'a',
          reason: 'x',
          ends_at: new Date(Date.now() + 3_600_000),
          force: 1,
        }),
      ],
    ];
    for (const [name, route, body] of cases) {
      const answer = await send(
        targets.find((t) => t.name === name)!,
        route,
        '',
        { type: 'application/json', body },
      );
      expect({ name, status: answer.status }).toEqual({ name, status: 400 });
      expect(answer.type).toMatch(/application\/problem\+json/);
      expect(answer.detail).toMatch(/force: unknown field/);
    }
  });
});

interface Sent {
  status: number;
  type: string;
  detail: string;
}

function acceptable(answer: Sent): boolean {
  if (answer.status < 400 || answer.status >= 500) return false;
  return answer.status !== 400 || answer.type.includes('application/problem+json');
}

function describe_(answer: Sent): string {
  return `${answer.status} ${answer.type} ${answer.detail}`;
}

async function send(target: Target, route: Route, query: string, body: { type: string; body: string }): Promise<Sent> {
  const path = route.path.replace(/\{[^}]+\}/g, ID);
  const response = await fetch(`${target.service.url}${path}${query ? `?${query}` : ''}`, {
    method: route.method,
    headers: { authorization: `Bearer ${target.credential}`, 'content-type': body.type },
    body: route.method === 'GET' ? undefined : body.body,
  });
  const text = await response.text();
  let detail = text.slice(0, 200);
  try {
    detail = String((JSON.parse(text) as { detail?: unknown }).detail ?? detail);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, type: response.headers.get('content-type') ?? '', detail };
}

async function routesOf(url: string): Promise<Route[]> {
  const response = await fetch(`${url}/docs-json`);
  expect(response.status).toBe(200);
  const document = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.keys(methods)
      .filter((method) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map((method) => ({ method: method.toUpperCase(), path })),
  );
}
