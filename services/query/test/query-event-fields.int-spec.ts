import { randomBytes } from 'node:crypto';
import type { AgentEventInput, EventType } from '@agentmeter/contracts';
import { call, ingestAll, seed, startQuery, token, type RunningQuery, type Seeded } from './query.fixture';

/**
 * Phase, role and delta fields on every event where they apply (docs/events.md "Phase, role and deltas"): run_started,
 * run_finished and cap_hit name a phase and role, stage and end events carry token and cost deltas. Ingest
 * stores them with the event (the contract no longer drops them), the run's timeline returns them under the
 * field policy, and the deltas are never added to the run's totals.
 */
describe('phase, role and deltas on run and cap events', () => {
  const prefix = `qf${randomBytes(3).toString('hex')}`;
  const tenant = `${prefix}-tenant-1`;
  const runId = `${prefix}-fields-run`;
  let s: Seeded;
  let q: RunningQuery;

  beforeAll(async () => {
    s = await seed(prefix);
    const base = { tenant_id: tenant, project_id: `${prefix}-t1-project-1`, run_id: runId };
    const at = (minutesAgo: number) => new Date(s.now.getTime() - minutesAgo * 60_000).toISOString();
    let n = 0;
    const event = (type: EventType, minutesAgo: number, data: object) =>
      ({
        specversion: '1.0',
        id: `${runId}-${++n}`,
        source: `query-fields/${prefix}`,
        type,
        time: at(minutesAgo),
        subject: tenant,
        data: { ...base, ...data },
      }) as AgentEventInput;
    const deltas = { input_tokens: 900, output_tokens: 90, cost_usd: '0.004500' };
    await ingestAll(s.ingest, [
      event('run_started', 10, { phase: 'plan', role: 'planner', playbook: 'landing-page' }),
      event('llm_call', 9, {
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 900,
        completion_tokens: 90,
        cost_usd: '0.004500',
        latency_ms: 800,
      }),
      event('phase_advanced', 8, { phase: 'plan', role: 'planner', attempt: 1, next_phase: 'implement', ...deltas }),
      event('cap_hit', 7, {
        phase: 'implement',
        role: 'implementer',
        scope: 'run',
        cap: 'tokens',
        limit: '1000',
        observed: '990',
      }),
      event('run_finished', 6, { phase: 'publish', role: 'publisher', summary: 'done', ...deltas }),
    ]);
    q = await startQuery(s.database.url);
  });

  afterAll(async () => {
    await q?.stop();
    await s?.db.destroy();
    await s?.database.drop();
  });

  it('stores them with the event and returns them on the timeline', async () => {
    const answer = await call(q.url, await token(tenant, ['admin']), `/runs/${runId}/events`);
    expect(answer.status).toBe(200);
    const items = answer.json.items as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const byType = Object.fromEntries(items.map((item) => [item.type, item]));
    expect(byType.run_started).toMatchObject({ phase: 'plan', role: 'planner' });
    expect(byType.cap_hit).toMatchObject({ phase: 'implement', role: 'implementer' });
    expect(byType.run_finished).toMatchObject({
      phase: 'publish',
      role: 'publisher',
      data: { input_tokens: 900, output_tokens: 90, cost_usd: '0.004500' },
    });
    expect(byType.phase_advanced?.data).toMatchObject({ input_tokens: 900, output_tokens: 90, cost_usd: '0.004500' });

    const stored = await s.db.query(
      `SELECT type, payload->>'phase' AS phase, payload->>'role' AS role, payload->>'cost_usd' AS cost
         FROM events WHERE tenant_id = $1 AND run_id = $2 AND type IN ('run_started', 'cap_hit', 'run_finished')
        ORDER BY time`,
      [tenant, runId],
    );
    expect(stored).toEqual([
      { type: 'run_started', phase: 'plan', role: 'planner', cost: null },
      { type: 'cap_hit', phase: 'implement', role: 'implementer', cost: null },
      { type: 'run_finished', phase: 'publish', role: 'publisher', cost: '0.004500' },
    ]);
  });

  it('never adds the deltas to the totals, and the last phase named becomes the run’s phase', async () => {
    const [run] = await s.db.query(
      `SELECT tokens_in::int, tokens_out::int, cost_micros::int, phase, role FROM runs WHERE tenant_id = $1 AND run_id = $2`,
      [tenant, runId],
    );
    expect(run).toEqual({ tokens_in: 900, tokens_out: 90, cost_micros: 4_500, phase: 'publish', role: 'publisher' });
  });

  it('keeps the cost delta from Support, which sees token counts', async () => {
    const support = await call(q.url, await token(tenant, ['support']), `/runs/${runId}/events`);
    expect(support.status).toBe(200);
    const finished = (support.json.items as Array<{ type: string; data: object }>).find(
      (i) => i.type === 'run_finished',
    );
    expect(finished?.data).toMatchObject({ input_tokens: 900, output_tokens: 90 });
    expect(finished?.data).not.toHaveProperty('cost_usd');
  });
});
