import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, type TestDatabase, testRedactor } from '@agentmeter/testing';
import { EventsRepository } from '../../ingest/src/events/events.repository';
import { EventsService } from '../../ingest/src/events/events.service';
import { IngestMetrics } from '../../ingest/src/events/ingest.metrics';
import { PricingService } from '../../ingest/src/pricing/pricing.service';
import { call, startQuery, token, type RunningQuery } from './query.fixture';

/**
 * The prompt audit through the query API (docs/events.md "Prompt audit"): Admins and a tenant's Owners turn
 * it on and off (audited) and read the redacted texts of their tenant only; every other role is refused, and
 * the texts have no CSV form.
 */
describe('prompt audit API', () => {
  const prefix = `qa${randomBytes(3).toString('hex')}`;
  const tenant1 = `${prefix}-tenant-1`;
  const tenant2 = `${prefix}-tenant-2`;
  let database: TestDatabase;
  let db: DataSource;
  let ingest: EventsService;
  let q: RunningQuery;
  let n = 0;

  const awsKey = 'AK' + 'IA' + 'Z7Q4MBX2KD9LRT3W';
  const email = 'sam.owner@example.org';
  const card = ['5555', '5555', '5555', '4444'].join('-');
  const secretPrompt = `Deploy with ${awsKey}, notify ${email}, charge ${card}.`;

  const llmCall = (tenant: string, texts: { prompt?: string; completion?: string }): AgentEvent => {
    n += 1;
    return AgentEventSchema.parse({
      specversion: '1.0',
      id: `${prefix}-c${n}`,
      source: `prompt-audit-api/${prefix}`,
      type: 'llm_call',
      time: new Date(Date.now() - 60_000 + n).toISOString(),
      subject: tenant,
      data: {
        tenant_id: tenant,
        project_id: `${prefix}-project`,
        run_id: `${tenant}-run`,
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 10,
        completion_tokens: 5,
        latency_ms: 20,
        ...texts,
      },
    }) as AgentEvent;
  };

  const put = async (tenant: string, roles: string[], body: unknown) =>
    call(q.url, await token(tenant, roles), `/tenants/${tenant}/prompt-audit`, { method: 'PUT', body });
  const get = async (tenant: string, roles: string[], path = `/tenants/${tenant}/prompt-audit`) =>
    call(q.url, await token(tenant, roles), path);

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    const pricing = new PricingService(new PricingRepository(db), createLogger('prompt-audit-api', 'silent'));
    await pricing.refresh();
    ingest = new EventsService(
      new EventsRepository(db),
      new PartitionManager(db),
      new IngestMetrics(),
      pricing,
      testRedactor(),
    );
    // Both tenants exist (a first call without texts creates them), with the audit off by default.
    await ingest.ingest([llmCall(tenant1, {}), llmCall(tenant2, {})]);
    q = await startQuery(database.url);
  });

  afterAll(async () => {
    await q?.stop();
    await db?.destroy();
    await database?.drop();
  });

  it('is off by default: texts sent meanwhile are stored nowhere', async () => {
    const answer = await get(tenant1, ['owner']);
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ tenant_id: tenant1, enabled: false, retention_days: 30, items: [] });
    const event = llmCall(tenant1, { prompt: secretPrompt });
    await ingest.ingest([event]);
    expect((await get(tenant1, ['admin'])).json.items).toEqual([]);
  });

  it("an Owner enables it (audited); the tenant's new texts are readable redacted by Admin and Owner", async () => {
    const enabled = await put(tenant1, ['owner'], { enabled: true, retention_days: 14, reason: 'debug prompts' });
    expect(enabled.status).toBe(200);
    expect(enabled.json).toMatchObject({ tenant_id: tenant1, enabled: true, retention_days: 14 });

    const audit = await call(q.url, await token(tenant1, ['admin']), `/audit?action=tenant.prompt_audit`);
    const row = audit.json.items.find((item: { id: string }) => item.id === enabled.json.audit_id);
    expect(row).toMatchObject({
      tenant_id: tenant1,
      actor_roles: ['owner'],
      reason: 'debug prompts',
      outcome: 'succeeded',
      params: { before: { enabled: false, retention_days: 30 }, after: { enabled: true, retention_days: 14 } },
    });

    const first = llmCall(tenant1, { prompt: secretPrompt, completion: 'ok' });
    const second = llmCall(tenant1, { prompt: 'second prompt' });
    const third = llmCall(tenant1, { completion: 'third answer' });
    const other = llmCall(tenant2, { prompt: `tenant two ${secretPrompt}` });
    await ingest.ingest([first, second, third, other]);

    for (const roles of [['admin'], ['owner']]) {
      const answer = await get(tenant1, roles);
      expect(answer.status).toBe(200);
      expect(answer.json.items.map((item: { event_id: string }) => item.event_id)).toEqual([
        third.id,
        second.id,
        first.id,
      ]);
      const stored = answer.json.items[2];
      expect(stored).toMatchObject({ run_id: `${tenant1}-run`, model: 'gpt-4.1', completion: 'ok' });
      expect(stored.prompt).toContain('[REDACTED:');
      for (const secret of [awsKey, email, card]) expect(stored.prompt).not.toContain(secret);
    }

    // Pages, newest first.
    const page1 = await get(tenant1, ['admin'], `/tenants/${tenant1}/prompt-audit?limit=2`);
    expect(page1.json.items).toHaveLength(2);
    const page2 = await get(
      tenant1,
      ['admin'],
      `/tenants/${tenant1}/prompt-audit?limit=2&cursor=${encodeURIComponent(page1.json.next_cursor)}`,
    );
    expect(page2.json.items.map((item: { event_id: string }) => item.event_id)).toEqual([first.id]);
    expect(page2.json.next_cursor).toBeNull();

    // tenant 2 kept its audit off: nothing of its call is stored.
    const admin2 = await call(q.url, await token(tenant1, ['admin']), `/tenants/${tenant2}/prompt-audit`);
    expect(admin2.json).toMatchObject({ tenant_id: tenant2, enabled: false, items: [] });
  });

  it("isolates tenants: an Owner reads and changes only its own tenant's audit (another one is a 404)", async () => {
    const owner1 = await token(tenant1, ['owner']);
    const read = await call(q.url, owner1, `/tenants/${tenant2}/prompt-audit`);
    expect(read.status).toBe(404);
    const change = await call(q.url, owner1, `/tenants/${tenant2}/prompt-audit`, {
      method: 'PUT',
      body: { enabled: true, reason: 'not mine' },
    });
    expect(change.status).toBe(404);
    expect((await get(tenant2, ['owner'])).json.enabled).toBe(false);
  });

  it('refuses every other role (403) and has no CSV form for anyone', async () => {
    for (const role of ['op', 'bu', 'auditor', 'support', 'finance']) {
      const read = await get(tenant1, [role]);
      expect({ role, status: read.status }).toEqual({ role, status: 403 });
      const csv = await get(tenant1, [role], `/tenants/${tenant1}/prompt-audit?format=csv`);
      expect({ role, status: csv.status }).toEqual({ role, status: 403 });
      expect(csv.text).not.toContain('second prompt');
      const change = await put(tenant1, [role], { enabled: false, reason: 'x' });
      expect({ role, status: change.status }).toEqual({ role, status: 403 });
    }
    for (const role of ['admin', 'owner']) {
      const csv = await get(tenant1, [role], `/tenants/${tenant1}/prompt-audit?format=csv`);
      expect({ role, status: csv.status }).toEqual({ role, status: 400 });
      expect(csv.text).not.toContain('second prompt');
    }
    expect((await get(tenant1, ['admin'])).json.enabled).toBe(true);
  });

  it('answers bad bodies with 400 naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ enabled: true, retention_days: 0, reason: 'x' }, 'retention_days'],
      [{ enabled: true, retention_days: 366, reason: 'x' }, 'retention_days'],
      [{ enabled: 'yes', reason: 'x' }, 'enabled'],
      [{ enabled: true }, 'reason'],
      [{ enabled: true, reason: 'x', store_raw: true }, 'store_raw'],
    ];
    for (const [body, field] of cases) {
      const answer = await put(tenant1, ['admin'], body);
      expect({ field, status: answer.status }).toEqual({ field, status: 400 });
      expect(answer.json.detail).toContain(field);
    }
  });

  it('once disabled, new texts are dropped again; stored ones stay readable until retention deletes them', async () => {
    const disabled = await put(tenant1, ['admin'], { enabled: false, reason: 'done debugging' });
    expect(disabled.json).toMatchObject({ enabled: false, retention_days: 14 });
    const late = llmCall(tenant1, { prompt: 'after disabling' });
    await ingest.ingest([late]);
    const answer = await get(tenant1, ['owner']);
    expect(answer.json.items.map((item: { event_id: string }) => item.event_id)).not.toContain(late.id);
    expect(answer.json.items).toHaveLength(3);
    const [{ n: copies }] = (await db.query(`SELECT count(*)::int AS n FROM events WHERE payload::text LIKE $1`, [
      '%after disabling%',
    ])) as [{ n: number }];
    expect(copies).toBe(0);
  });
});
