import { AgentEvent as AgentEventSchema, type AgentEvent, type AgentEventInput } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, type TestDatabase, testRedactor } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { REDACTION_CORPUS } from '../../../libs/domain/src/privacy/redaction-corpus';
import { EventsRepository } from '../src/events/events.repository';
import { EventsService } from '../src/events/events.service';
import { IngestMetrics } from '../src/events/ingest.metrics';
import { PricingService } from '../src/pricing/pricing.service';

/**
 * Every fake secret and piece of personal data of the corpus, placed in every free-text field of the
 * contract, goes through ingest; afterwards no table of the database holds any of them.
 */
describe('redaction before storage', () => {
  let database: TestDatabase;
  let db: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
  });

  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  function events(): AgentEvent[] {
    const base = { tenant_id: 'acme', project_id: 'p', run_id: 'r' };
    const stage = { ...base, phase: 'implement', role: 'implementer', attempt: 1 };
    const inputs: AgentEventInput[] = [];
    REDACTION_CORPUS.forEach(({ sample }, i) => {
      const envelope = {
        specversion: '1.0' as const,
        source: 'test',
        time: `2026-11-25T10:${String(i % 60).padStart(2, '0')}:00Z`,
        subject: 'acme',
      };
      inputs.push(
        { ...envelope, id: `vf-${i}`, type: 'validation_failed', data: { ...stage, reason: sample } },
        { ...envelope, id: `rf-${i}`, type: 'run_failed', data: { ...base, error: sample } },
        {
          ...envelope,
          id: `uo-${i}`,
          type: 'user_override',
          data: { ...base, user_id: 'u', action: 'reopen', reason: sample },
        },
        {
          ...envelope,
          id: `ec-${i}`,
          type: 'external_charge',
          data: { ...base, vendor: 'v', amount_usd: '0.01', description: sample },
        },
        { ...envelope, id: `rs-${i}`, type: 'run_finished', data: { ...base, summary: sample } },
        {
          ...envelope,
          id: `lc-${i}`,
          type: 'llm_call',
          data: {
            ...stage,
            model: 'gpt-4.1',
            provider: 'openai',
            prompt_tokens: 1,
            completion_tokens: 1,
            latency_ms: 1,
            status: 'error',
            error: sample,
          },
        },
        {
          ...envelope,
          id: `tc-${i}`,
          type: 'tool_call',
          data: { ...stage, tool: 't', latency_ms: 1, status: 'error', error: sample },
        },
        {
          ...envelope,
          id: `im-${i}`,
          type: 'impersonation_started',
          data: { tenant_id: 'acme', session_id: `s${i}`, actor_id: 'a', target_user_id: 'u', reason: sample },
        },
      );
    });
    return inputs.map((input) => AgentEventSchema.parse(input) as AgentEvent);
  }

  it('leaves no secret of the corpus in any table', async () => {
    const pricing = new PricingService(new PricingRepository(db), createLogger('redaction-test', 'silent'));
    await pricing.onModuleInit();
    const service = new EventsService(
      new EventsRepository(db),
      new PartitionManager(db),
      new IngestMetrics(),
      pricing,
      testRedactor(),
    );
    await service.ingest(events());
    pricing.onModuleDestroy();

    const tables: Array<{ table_name: string }> = await db.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    let dump = '';
    for (const { table_name } of tables) {
      const rows: Array<{ row: string }> = await db.query(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`);
      dump += rows.map((r) => r.row).join('\n');
    }
    expect(dump).toContain('[REDACTED:'); // the rows are there, redacted
    const leaked = REDACTION_CORPUS.filter(({ secret }) => dump.includes(secret)).map(
      ({ kind, context }) => `${kind}/${context}`,
    );
    expect(leaked).toEqual([]);
  });
});
