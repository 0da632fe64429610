import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import { createLogger } from '@agentmeter/telemetry';
import { createTestDatabase, type TestDatabase, testRedactor } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { EventsRepository } from '../src/events/events.repository';
import { EventsService } from '../src/events/events.service';
import { IngestMetrics } from '../src/events/ingest.metrics';
import { PricingService } from '../src/pricing/pricing.service';

/**
 * Each event is stored once, in the event log or in its call table (docs/decisions.md "Call facts stored
 * once"), and `events` reads them all: across deliveries that classify an LLM call differently (counted,
 * then a 'duplicate' of its stored span) and across a retraction, which moves a call to the log.
 */
describe('call facts stored once', () => {
  let database: TestDatabase;
  let db: DataSource;
  let service: EventsService;
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const base = { tenant_id: 'facts-t', project_id: 'facts-p', run_id: 'facts-run' };
  const stage = { ...base, phase: 'implement', role: 'implementer', attempt: 1 };
  let seq = 0;
  const event = (type: string, data: object): AgentEvent =>
    AgentEventSchema.parse({
      specversion: '1.0',
      id: `facts-${++seq}`,
      source: 'sdk://facts',
      type,
      time: new Date(Date.UTC(2026, 11, 7, 12, 0, seq)).toISOString(),
      subject: base.tenant_id,
      data,
    }) as AgentEvent;
  const call = (span: string, ancestors: string[]) =>
    event('llm_call', {
      ...stage,
      model: 'gpt-4.1',
      provider: 'openai',
      prompt_tokens: 100,
      completion_tokens: 10,
      latency_ms: 50,
      trace_id: trace,
      span_id: span,
      ancestor_span_ids: ancestors,
    });
  const started = event('run_started', { ...base, playbook: 'facts' });
  const parent = call('00000000000000a1', []);
  const child = call('00000000000000b2', ['00000000000000a1']);
  const tool = event('tool_call', { ...stage, tool: 'github.get_tree', latency_ms: 3 });
  const charge = event('external_charge', { ...base, vendor: 'search-api', amount_usd: '0.004000' });

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDataSource({ url: database.url, poolSize: 2 }).initialize();
    const pricing = new PricingService(new PricingRepository(db), createLogger('ingest-test', 'silent'));
    await pricing.refresh();
    service = new EventsService(
      new EventsRepository(db),
      new PartitionManager(db),
      new IngestMetrics(),
      pricing,
      testRedactor(),
    );
  });

  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  /** Where each stored event is, and what the run counts. */
  async function stored(): Promise<unknown> {
    return {
      events: await db.query(`SELECT event_id, type FROM events ORDER BY event_id`),
      log: await db.query(`SELECT event_id FROM event_log ORDER BY event_id`),
      llm: await db.query(`SELECT event_id FROM llm_calls ORDER BY event_id`),
      tools: await db.query(`SELECT count(*)::int AS n FROM tool_calls`),
      charges: await db.query(`SELECT count(*)::int AS n FROM external_charges`),
      run: await db.query(`SELECT llm_calls, tokens_in::int, external_micros::int FROM runs`),
    };
  }

  it('keeps each event in one table through redeliveries and a retraction', async () => {
    await service.ingest([started, parent, tool, charge]);
    const first = {
      events: [
        { event_id: 'facts-1', type: 'run_started' },
        { event_id: 'facts-2', type: 'llm_call' },
        { event_id: 'facts-4', type: 'tool_call' },
        { event_id: 'facts-5', type: 'external_charge' },
      ],
      log: [{ event_id: 'facts-1' }],
      llm: [{ event_id: 'facts-2' }],
      tools: [{ n: 1 }],
      charges: [{ n: 1 }],
      run: [{ llm_calls: 1, tokens_in: 100, external_micros: 4000 }],
    };
    expect(await stored()).toEqual(first);

    // The parent alone again: its stored span makes it a 'duplicate', which the log does not take twice.
    await service.ingest([parent]);
    expect(await stored()).toEqual(first);

    // The child names the parent: the parent is an aggregate, moved to the log and no longer counted.
    await service.ingest([child]);
    const retracted = {
      ...first,
      events: [...first.events, { event_id: 'facts-3', type: 'llm_call' }].sort((a, b) =>
        a.event_id.localeCompare(b.event_id),
      ),
      log: [{ event_id: 'facts-1' }, { event_id: 'facts-2' }],
      llm: [{ event_id: 'facts-3' }],
    };
    expect(await stored()).toEqual(retracted);

    // Every event again, alone and together: nothing changes.
    for (const again of [parent, child, tool, charge]) await service.ingest([again]);
    await service.ingest([charge, child, tool, parent, started]);
    expect(await stored()).toEqual(retracted);
  });
});
