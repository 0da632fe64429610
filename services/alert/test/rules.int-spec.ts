import { randomUUID } from 'node:crypto';
import { AlertRules, PLATFORM_TENANT } from '@agentmeter/contracts';
import { PartitionManager } from '@agentmeter/database';
import { createTestDatabase, type TestDatabase } from '@agentmeter/testing';
import type { DataSource } from 'typeorm';
import { alertReplica, TestClock, type AlertReplica } from './alert-harness';

/**
 * Time-based rules over ingest's tables (and the alert tables), as the scheduler runs them: each
 * evaluation fires what holds, leaves alone what still fires, and resolves what stopped.
 */
describe('time-based rules against PostgreSQL', () => {
  let database: TestDatabase;
  let clock: TestClock;
  let alert: AlertReplica;
  let db: DataSource;
  let seq = 0;
  const minutesAgo = (minutes: number) => new Date(clock.now().getTime() - minutes * 60_000).toISOString();

  beforeAll(async () => {
    database = await createTestDatabase();
    clock = new TestClock(new Date('2026-11-25T12:00:00Z'));
    alert = await alertReplica(database.url, clock);
    db = alert.db;
    const days = Array.from({ length: 12 }, (_, i) => new Date(Date.UTC(2026, 10, 15 + i)).toISOString().slice(0, 10));
    await new PartitionManager(db).ensureDays(days);
  });

  afterAll(async () => {
    await alert.close();
    await database.drop();
  });

  async function run(tenant: string, runId: string, phase: string, phaseAt: string, status = 'running') {
    await db.query(`INSERT INTO tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING`, [tenant]);
    await db.query(`INSERT INTO projects (tenant_id, project_id) VALUES ($1, 'p') ON CONFLICT DO NOTHING`, [tenant]);
    await db.query(
      `INSERT INTO runs (tenant_id, run_id, project_id, status, status_rank, phase, role, phase_at, first_event_at, last_event_at)
       VALUES ($1, $2, 'p', $3, 1, $4, 'planner', $5, $5, $5)
       ON CONFLICT (tenant_id, run_id) DO UPDATE SET status = EXCLUDED.status, phase = EXCLUDED.phase, phase_at = EXCLUDED.phase_at`,
      [tenant, runId, status, phase, phaseAt],
    );
  }

  async function event(tenant: string, runId: string, type: string, time: string, payload: Record<string, unknown>) {
    await db.query(
      `INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload) VALUES ('t', $1, $2, $3, $4, $5, $6)`,
      [`e${++seq}`, tenant, runId, type, time, JSON.stringify({ tenant_id: tenant, run_id: runId, ...payload })],
    );
  }

  async function llmCall(tenant: string, model: string, status: 'ok' | 'error', time: string, completion = 100) {
    await db.query(
      `INSERT INTO llm_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model, provider,
         prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros, cost_source, latency_ms,
         cached, status, time, payload)
       VALUES ('t', $1, $2, 'p', 'r', 'implement', 1, 'implementer', $3, 'openai', 10, $4, 0, 0, 0, 'computed', 100,
         false, $5, $6, '{}')`,
      [`c${++seq}`, tenant, model, completion, status, time],
    );
  }

  async function toolCall(tenant: string, tool: string, server: string | null, status: 'ok' | 'error', time: string) {
    await db.query(
      `INSERT INTO tool_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, tool, mcp_server,
         latency_ms, status, time, payload)
       VALUES ('t', $1, $2, 'p', 'r', 'implement', 1, 'implementer', $3, $4, 10, $5, $6, '{}')`,
      [`t${++seq}`, tenant, tool, server, status, time],
    );
  }

  async function notifications(rule: string) {
    return db.query(`SELECT tenant_id, scope, period, kind FROM alert_notifications WHERE rule = $1 ORDER BY id`, [
      rule,
    ]) as Promise<Array<{ tenant_id: string; scope: string; period: string; kind: string }>>;
  }

  it('phase stalled: fires past the threshold (per tenant), once, and resolves when the phase moves', async () => {
    await run('t1', 'stuck', 'implement', minutesAgo(49 * 60));
    await run('t1', 'fresh', 'implement', minutesAgo(47 * 60));
    await run('t2', 'stuck', 'implement', minutesAgo(49 * 60));
    await run('t1', 'done', 'publish', minutesAgo(100 * 60), 'succeeded');
    await alert.thresholds.set('t2', AlertRules.PhaseStalled, { hours: 72 }, 'ops', 'long phases are normal here');
    await alert.rules.evaluate(AlertRules.PhaseStalled);
    await alert.rules.evaluate(AlertRules.PhaseStalled);
    expect(await notifications(AlertRules.PhaseStalled)).toEqual([
      { tenant_id: 't1', scope: 'run:stuck:phase:implement', period: '', kind: 'firing' },
    ]);

    await run('t1', 'stuck', 'validate', minutesAgo(1));
    await alert.rules.evaluate(AlertRules.PhaseStalled);
    expect((await notifications(AlertRules.PhaseStalled)).map((n) => n.kind)).toEqual(['firing', 'resolved']);
  });

  it('proof overdue: a due proof without its completion fires, and resolves once completed', async () => {
    await event('t1', 'r1', 'proof_due', minutesAgo(600), { proof_id: 'late', due_at: minutesAgo(60) });
    await event('t1', 'r1', 'proof_due', minutesAgo(600), { proof_id: 'later', due_at: minutesAgo(-60) });
    await event('t1', 'r1', 'proof_due', minutesAgo(600), { proof_id: 'done', due_at: minutesAgo(60) });
    await event('t1', 'r1', 'proof_completed', minutesAgo(70), { proof_id: 'done', passed: true });
    await alert.rules.evaluate(AlertRules.ProofOverdue);
    expect(await notifications(AlertRules.ProofOverdue)).toEqual([
      { tenant_id: 't1', scope: 'run:r1:proof:late', period: '', kind: 'firing' },
    ]);
    await event('t1', 'r1', 'proof_completed', minutesAgo(1), { proof_id: 'late', passed: true });
    await alert.rules.evaluate(AlertRules.ProofOverdue);
    expect((await notifications(AlertRules.ProofOverdue)).map((n) => n.kind)).toEqual(['firing', 'resolved']);
  });

  it('model error spike: a platform alert per model over the window', async () => {
    for (let i = 0; i < 30; i++) await llmCall('t1', 'gpt-4.1', i < 9 ? 'error' : 'ok', minutesAgo(5));
    for (let i = 0; i < 30; i++) await llmCall('t2', 'gpt-4.1-mini', i < 2 ? 'error' : 'ok', minutesAgo(5));
    for (let i = 0; i < 30; i++) await llmCall('t2', 'o3', 'error', minutesAgo(60)); // outside the 15 min window
    await alert.rules.evaluate(AlertRules.ModelErrorSpike);
    expect(await notifications(AlertRules.ModelErrorSpike)).toEqual([
      { tenant_id: PLATFORM_TENANT, scope: 'model:openai/gpt-4.1', period: '', kind: 'firing' },
    ]);
  });

  it('tool error rate and MCP circuit breaker, with a per-tenant window', async () => {
    for (let i = 0; i < 20; i++) await toolCall('t3', 'search', null, i < 3 ? 'error' : 'ok', minutesAgo(10));
    for (let i = 0; i < 20; i++) await toolCall('t4', 'search', null, i < 1 ? 'error' : 'ok', minutesAgo(10));
    for (let i = 0; i < 6; i++) await toolCall('t3', 'github.get_tree', 'github', 'error', minutesAgo(6 - i));
    await toolCall('t3', 'github.get_tree', 'slack-mcp', 'error', minutesAgo(1));
    await alert.rules.evaluate(AlertRules.ToolErrorRate);
    await alert.rules.evaluate(AlertRules.McpBreakerOpen);
    // github.get_tree failed every time but 7 calls are under min_calls (20): no rate alert.
    expect(await notifications(AlertRules.ToolErrorRate)).toEqual([
      { tenant_id: 't3', scope: 'tool:search', period: '', kind: 'firing' },
    ]);
    expect(await notifications(AlertRules.McpBreakerOpen)).toEqual([
      { tenant_id: 't3', scope: 'mcp:github', period: '', kind: 'firing' },
    ]);

    // A success closes the breaker; a one-minute window for t3 drops the older errors from the rate.
    await toolCall('t3', 'github.get_tree', 'github', 'ok', minutesAgo(0));
    await alert.thresholds.set('t3', AlertRules.ToolErrorRate, { window_minutes: 1 }, 'ops', 'short window');
    await alert.rules.evaluate(AlertRules.McpBreakerOpen);
    await alert.rules.evaluate(AlertRules.ToolErrorRate);
    expect((await notifications(AlertRules.McpBreakerOpen)).map((n) => n.kind)).toEqual(['firing', 'resolved']);
    expect((await notifications(AlertRules.ToolErrorRate)).map((n) => n.kind)).toEqual(['firing', 'resolved']);
  });

  it('daily tokens: fires per tenant-day and ends quietly with the day', async () => {
    const usage = async (tenant: string, day: string, tokens: number) =>
      db.query(
        `INSERT INTO usage_model_daily (day, tenant_id, model, provider, call_count, input_tokens, output_tokens,
           cached_tokens, cost_micros, unpriced_calls) VALUES ($1, $2, 'gpt-4.1', 'openai', 1, $3, $3, 0, 0, 0)`,
        [day, tenant, tokens / 2],
      );
    await usage('big', '2026-11-25', 6_000_000);
    await usage('small', '2026-11-25', 1_000_000);
    await usage('big', '2026-11-24', 9_000_000); // yesterday does not count today
    await alert.rules.evaluate(AlertRules.DailyTokens);
    expect(await notifications(AlertRules.DailyTokens)).toEqual([
      { tenant_id: 'big', scope: '', period: '2026-11-25', kind: 'firing' },
    ]);

    const tomorrow = new TestClock(new Date('2026-11-26T00:05:00Z'));
    const next = await alertReplica(database.url, tomorrow);
    try {
      await next.rules.evaluate(AlertRules.DailyTokens);
    } finally {
      await next.close();
    }
    expect(await notifications(AlertRules.DailyTokens)).toHaveLength(1); // resolved without a message
    expect(await db.query(`SELECT status FROM alerts WHERE rule = $1`, [AlertRules.DailyTokens])).toEqual([
      { status: 'resolved' },
    ]);
  });

  it('sustained queue latency: p95 over the threshold in every bucket of the duration', async () => {
    const dequeued = async (queue: string, minutes: number, waitSeconds: number) => {
      const time = minutesAgo(minutes);
      const enqueued = new Date(Date.parse(time) - waitSeconds * 1000).toISOString();
      await event('t1', 'r', 'task_dequeued', time, { queue, enqueued_at: enqueued });
    };
    for (const minutes of [1, 3, 6, 8, 11, 13]) await dequeued('implementer', minutes, 400);
    for (const minutes of [1, 3, 11, 13]) await dequeued('validator', minutes, 900); // nothing 5-10 min ago
    for (const minutes of [1, 6, 11]) await dequeued('planner', minutes, 30);
    await alert.rules.evaluate(AlertRules.QueueLatency);
    expect(await notifications(AlertRules.QueueLatency)).toEqual([
      { tenant_id: PLATFORM_TENANT, scope: 'queue:implementer', period: '', kind: 'firing' },
    ]);
  });

  it('implementer drift: output length far from its baseline', async () => {
    for (let i = 0; i < 60; i++) await llmCall('drifty', 'gpt-4.1', 'ok', minutesAgo(3 * 24 * 60 + i), 1000);
    for (let i = 0; i < 25; i++) await llmCall('drifty', 'gpt-4.1', 'ok', minutesAgo(60 + i), 2500);
    for (let i = 0; i < 60; i++) await llmCall('steady', 'gpt-4.1', 'ok', minutesAgo(3 * 24 * 60 + i), 1000);
    for (let i = 0; i < 25; i++) await llmCall('steady', 'gpt-4.1', 'ok', minutesAgo(60 + i), 1200);
    await alert.rules.evaluate(AlertRules.ImplementerDrift);
    expect(await notifications(AlertRules.ImplementerDrift)).toEqual([
      { tenant_id: 'drifty', scope: 'implementer:length', period: '', kind: 'firing' },
    ]);
  });

  it('delivery failures: a contact with dead-lettered deliveries, until one succeeds again', async () => {
    const contact = randomUUID();
    await db.query(
      `INSERT INTO alert_contacts (id, tenant_id, audience, channel, email, created_by)
       VALUES ($1, 't5', 'owner', 'email', 'x@t5.test', 'test')`,
      [contact],
    );
    const delivery = async (status: 'dead' | 'sent', at: string) => {
      const group = randomUUID();
      await db.query(
        `INSERT INTO alert_groups (id, tenant_id, rule, audience, status, flush_at)
         VALUES ($1, 't5', 'r', 'owner', 'flushed', now())`,
        [group],
      );
      await db.query(
        `INSERT INTO alert_deliveries (id, group_id, tenant_id, audience, rule, channel, contact_id, status, message,
           dead_at, sent_at)
         VALUES ($1, $2, 't5', 'owner', 'r', 'email', $3, $4, '{}', $5, $6)`,
        [randomUUID(), group, contact, status, status === 'dead' ? at : null, status === 'sent' ? at : null],
      );
    };
    await delivery('sent', minutesAgo(30));
    await delivery('dead', minutesAgo(20));
    await alert.rules.evaluate(AlertRules.WebhookFailures);
    expect(await notifications(AlertRules.WebhookFailures)).toEqual([
      { tenant_id: 't5', scope: `contact:${contact}`, period: '', kind: 'firing' },
    ]);
    await delivery('sent', minutesAgo(1));
    await alert.rules.evaluate(AlertRules.WebhookFailures);
    expect((await notifications(AlertRules.WebhookFailures)).map((n) => n.kind)).toEqual(['firing', 'resolved']);
  });
});
