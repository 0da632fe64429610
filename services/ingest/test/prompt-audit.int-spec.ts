import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import { Clock } from '@agentmeter/domain';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, type TestDatabase, testRedactor } from '@agentmeter/testing';
import { loadConfig } from '../src/config';
import { sanitizeDeadLetter } from '../src/events/events.consumer';
import { EventsRepository } from '../src/events/events.repository';
import { EventsService } from '../src/events/events.service';
import { IngestMetrics } from '../src/events/ingest.metrics';
import { PricingService } from '../src/pricing/pricing.service';
import { RetentionRepository } from '../src/retention/retention.repository';
import { RetentionService } from '../src/retention/retention.service';

/**
 * The prompt audit (docs/events.md "Prompt audit"): prompt and completion texts of llm_calls are stored, redacted,
 * only for tenants that enabled it; otherwise they are dropped and stored nowhere, the event log included;
 * retention deletes them after the tenant's number of days.
 */
describe('prompt audit at ingest', () => {
  let database: TestDatabase;
  let db: DataSource;
  let ingest: EventsService;
  let retention: RetentionService;
  let n = 0;

  // Fake secrets, assembled so that no scanner mistakes this file for a leak.
  const awsKey = 'AK' + 'IA' + 'Q3EGRJ7XMP4TZW2N';
  const email = 'jane.doe@example.com';
  const card = ['4111', '1111', '1111', '1111'].join(' ');
  const prompt = `Use ${awsKey} to list the bucket, then mail ${email}; bill card ${card}. canary-prompt`;
  const completion = `Done. I wrote to ${email}. canary-completion`;
  const secrets = [awsKey, email, card, card.replace(/ /g, '')];

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    const pricing = new PricingService(new PricingRepository(db), createLogger('prompt-audit-test', 'silent'));
    await pricing.refresh();
    ingest = new EventsService(
      new EventsRepository(db),
      new PartitionManager(db),
      new IngestMetrics(),
      pricing,
      testRedactor(),
    );
    const config = loadConfig({ DATABASE_URL: database.url });
    const logger = { info: () => undefined } as unknown as Logger;
    retention = new RetentionService(
      config,
      logger,
      new PartitionManager(db),
      new RetentionRepository(db),
      new Clock(),
    );
    await db.query(
      `INSERT INTO tenants (tenant_id, prompt_audit, prompt_audit_retention_days) VALUES
         ('audited', true, 30), ('short', true, 5), ('quiet', false, 30)`,
    );
  });

  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  type LlmCall = AgentEvent & { type: 'llm_call' };

  function call(tenant: string, time: string, texts: { prompt?: string; completion?: string }): LlmCall {
    const id = `pa-${++n}`;
    return AgentEventSchema.parse({
      specversion: '1.0',
      id,
      source: 'prompt-audit-test',
      type: 'llm_call',
      time,
      subject: tenant,
      data: {
        tenant_id: tenant,
        project_id: 'p',
        run_id: `${tenant}-run-${n}`,
        phase: 'implement',
        role: 'implementer',
        attempt: 1,
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 100,
        completion_tokens: 10,
        latency_ms: 50,
        ...texts,
      },
    }) as LlmCall;
  }

  const payloadOf = async (id: string) =>
    ((await db.query(`SELECT payload FROM events WHERE event_id = $1`, [id])) as Array<{ payload: object }>)[0]
      ?.payload;
  const auditOf = async (id: string) =>
    (await db.query(`SELECT tenant_id, run_id, model, prompt, completion FROM prompt_audit WHERE event_id = $1`, [
      id,
    ])) as Array<{
      tenant_id: string;
      run_id: string;
      model: string;
      prompt: string | null;
      completion: string | null;
    }>;

  it('stores the texts redacted for a tenant that enabled the audit, and never in the event log', async () => {
    const event = call('audited', '2026-11-20T10:00:00Z', { prompt, completion });
    await ingest.ingest([event]);

    const [row] = await auditOf(event.id);
    expect(row).toMatchObject({ tenant_id: 'audited', run_id: event.data.run_id, model: 'gpt-4.1' });
    expect(row!.prompt).toContain('canary-prompt');
    expect(row!.prompt).toContain('[REDACTED:');
    expect(row!.completion).toContain('canary-completion');
    for (const secret of secrets) {
      expect(row!.prompt).not.toContain(secret);
      expect(row!.completion).not.toContain(secret);
    }
    const payload = await payloadOf(event.id);
    expect(payload).toMatchObject({ model: 'gpt-4.1', prompt_tokens: 100 });
    expect(payload).not.toHaveProperty('prompt');
    expect(payload).not.toHaveProperty('completion');
    expect((await db.query(`SELECT count(*)::int AS n FROM llm_calls WHERE event_id = $1`, [event.id]))[0].n).toBe(1);
  });

  it('drops the texts of a tenant that did not enable it (and of an unknown tenant): stored nowhere', async () => {
    const quiet = call('quiet', '2026-11-20T10:01:00Z', { prompt, completion });
    const unknown = call('never-seen', '2026-11-20T10:02:00Z', { prompt });
    await ingest.ingest([quiet, unknown]);

    for (const event of [quiet, unknown]) {
      expect(await auditOf(event.id)).toEqual([]);
      const payload = await payloadOf(event.id);
      expect(payload).toMatchObject({ tenant_id: event.data.tenant_id });
      expect(payload).not.toHaveProperty('prompt');
      expect(payload).not.toHaveProperty('completion');
    }
    const [{ n: copies }] = (await db.query(
      `SELECT count(*)::int AS n FROM events WHERE payload::text LIKE '%canary-%'`,
    )) as [{ n: number }];
    expect(copies).toBe(0);
    const [{ n: audited }] = (await db.query(
      `SELECT count(*)::int AS n FROM prompt_audit WHERE tenant_id IN ('quiet', 'never-seen')`,
    )) as [{ n: number }];
    expect(audited).toBe(0);
  });

  it('stores a redelivered call once, and one text of two when only one is sent', async () => {
    const event = call('audited', '2026-11-20T10:03:00Z', { completion: 'only the answer' });
    await ingest.ingest([event]);
    await ingest.ingest([event]);
    expect(await auditOf(event.id)).toEqual([
      {
        tenant_id: 'audited',
        run_id: event.data.run_id,
        model: 'gpt-4.1',
        prompt: null,
        completion: 'only the answer',
      },
    ]);
  });

  it("keeps the texts out of dead letters: a refused message's prompt is not sent on", () => {
    const message = JSON.stringify(call('audited', '2026-11-20T10:04:00Z', { prompt, completion }));
    const clean = sanitizeDeadLetter(message, testRedactor());
    expect(clean).not.toContain('canary-');
    expect(JSON.parse(clean).data).toMatchObject({ tenant_id: 'audited', prompt_tokens: 100 });
  });

  it("retention deletes texts older than the tenant's days, and keeps the rest", async () => {
    const old = call('audited', '2026-11-21T00:00:00Z', { prompt: 'old prompt' });
    const recent = call('audited', '2026-12-10T00:00:00Z', { prompt: 'recent prompt' });
    const short = call('short', '2026-12-10T00:00:00Z', { prompt: 'short-lived prompt' });
    await ingest.ingest([old, recent, short]);

    // 2026-12-22: 'audited' keeps 30 days (from 2026-11-22), 'short' keeps 5 (from 2026-12-17).
    const outcome = await retention.run(new Date('2026-12-22T00:00:00Z'));
    expect(await auditOf(old.id)).toEqual([]);
    expect(await auditOf(short.id)).toEqual([]);
    expect((await auditOf(recent.id)).map((row) => row.prompt)).toEqual(['recent prompt']);
    expect(outcome.deletedPromptTexts).toBeGreaterThanOrEqual(3); // and the 2026-11-20 rows of the tests above
    const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM prompt_audit`)) as [{ n: number }];
    expect(n).toBe(1);
  });
});
