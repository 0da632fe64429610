import { randomBytes } from 'node:crypto';
import { type AgentEventInput, type ControlCommand, topicName, Topics } from '@agentmeter/contracts';
import { eventually, publishEvents, readAll, waitForGroupCaughtUp } from '@agentmeter/testing';
import { DailyCapsRefresher } from '../src/caps/daily-caps.refresher';
import { OutboxPublisher } from '../src/outbox/outbox.publisher';
import { type Harness, reserveBody, startInProcess } from './harness';

/**
 * Spend from agent.events.v1 (docs/cost-cap.md "Accounting and the ledger"): accounted once per event identity
 * whatever the duplicates, the same spend committed through admission and reported on the stream counts
 * once, calls without a cost are priced, and crossings publish cap_warning / cap_hit and commands.
 */
describe('spend from the stream', () => {
  let h: Harness;
  let eventsTopic: string;
  const ops = { actor: 'ops@agentmeter', reason: 'test setup' };

  beforeAll(async () => {
    h = await startInProcess();
    eventsTopic = topicName(h.topicPrefix, Topics.AgentEvents);
  });

  afterAll(async () => {
    await h?.close();
  });

  let seq = 0;
  function event<T extends AgentEventInput['type']>(
    type: T,
    tenantId: string,
    runId: string,
    data: Record<string, unknown>,
    id = `ev-${++seq}-${randomBytes(3).toString('hex')}`,
  ): AgentEventInput & { key: string } {
    return {
      key: runId,
      specversion: '1.0',
      id,
      source: 'coordinator/test',
      type,
      time: new Date().toISOString(),
      subject: tenantId,
      data: { tenant_id: tenantId, project_id: 'site', run_id: runId, ...data },
    } as AgentEventInput & { key: string };
  }
  const call = (tenantId: string, runId: string, extra: Record<string, unknown> = {}, id?: string) =>
    event(
      'llm_call',
      tenantId,
      runId,
      {
        phase: 'implement',
        role: 'implementer',
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 1_000,
        completion_tokens: 100,
        latency_ms: 10,
        ...extra,
      },
      id,
    );

  async function caughtUp(): Promise<void> {
    await waitForGroupCaughtUp(h.kafka, h.groupId, eventsTopic);
  }
  async function ledger(tenantId: string): Promise<{ cost: number; tokens: number; entries: number }> {
    const { rows } = await h.pg.query(
      `SELECT COALESCE(sum(cost_micros), 0)::int AS cost, COALESCE(sum(tokens), 0)::int AS tokens, count(*)::int AS entries
         FROM spend_ledger WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0];
  }
  async function daily(tenantId: string): Promise<{ spent: string; reserved: string }> {
    return (await h.api<{ daily: { spent: string; reserved: string } }>('GET', `/v1/tenants/${tenantId}/caps`)).body
      .daily;
  }

  it('counts each event once, however often it is delivered, in the ledger and in Redis', async () => {
    const tenantId = `dup-${randomBytes(3).toString('hex')}`;
    const events = [
      call(tenantId, 'run-1', { cost_usd: '0.100000' }),
      call(tenantId, 'run-1', { cost_usd: '0.200000' }),
      event('external_charge', tenantId, 'run-2', { vendor: 'search', amount_usd: '0.050000' }),
    ];
    await publishEvents(h.kafka, eventsTopic, [...events, ...events]);
    await publishEvents(h.kafka, eventsTopic, events);
    await caughtUp();
    expect(await ledger(tenantId)).toEqual({ cost: 350_000, tokens: 2_200, entries: 3 });
    expect(await daily(tenantId)).toMatchObject({ spent: '0.350000', reserved: '0.000000' });
  });

  it('counts a spend committed through admission and reported on the stream once', async () => {
    const tenantId = `both-${randomBytes(3).toString('hex')}`;
    // Commit first, event second.
    const first = await h.api<{ reservation_id: string }>(
      'POST',
      '/v1/admission/reserve',
      reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.5' } }),
    );
    const commit = await h.api<{ duplicate: boolean }>(
      'POST',
      `/v1/admission/reservations/${first.body.reservation_id}/commit`,
      {
        event: { source: 'coordinator/test', id: 'call-a' },
        actual: { cost_usd: '0.40' },
      },
    );
    expect(commit.body.duplicate).toBe(false);
    await publishEvents(h.kafka, eventsTopic, [call(tenantId, 'run-1', { cost_usd: '0.400000' }, 'call-a')]);
    await caughtUp();
    // Event first, commit second: the commit only releases the hold.
    const second = await h.api<{ reservation_id: string }>(
      'POST',
      '/v1/admission/reserve',
      reserveBody({ tenant_id: tenantId, estimate: { cost_usd: '0.5' } }),
    );
    await publishEvents(h.kafka, eventsTopic, [call(tenantId, 'run-1', { cost_usd: '0.300000' }, 'call-b')]);
    await caughtUp();
    expect(await daily(tenantId)).toMatchObject({ spent: '0.700000', reserved: '0.500000' });
    const late = await h.api<{ duplicate: boolean }>(
      'POST',
      `/v1/admission/reservations/${second.body.reservation_id}/commit`,
      {
        event: { source: 'coordinator/test', id: 'call-b' },
        actual: { cost_usd: '0.30' },
      },
    );
    expect(late.body.duplicate).toBe(true);
    // A repeated commit changes nothing either.
    await h.api('POST', `/v1/admission/reservations/${second.body.reservation_id}/commit`, {
      event: { source: 'coordinator/test', id: 'call-b' },
      actual: { cost_usd: '0.30' },
    });
    expect(await ledger(tenantId)).toMatchObject({ cost: 700_000, entries: 2 });
    expect(await daily(tenantId)).toMatchObject({ spent: '0.700000', reserved: '0.000000' });
  });

  it('names the role a reservation was admitted for on the crossing its commit reaches', async () => {
    const tenantId = `commit-cross-${randomBytes(3).toString('hex')}`;
    await h.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '1.00' });
    const reserved = await h.api<{ reservation_id: string }>(
      'POST',
      '/v1/admission/reserve',
      reserveBody({ tenant_id: tenantId, role: 'validator', estimate: { cost_usd: '0.5' } }),
    );
    await h.api('POST', `/v1/admission/reservations/${reserved.body.reservation_id}/commit`, {
      event: { source: 'coordinator/test', id: `call-${tenantId}` },
      actual: { cost_usd: '0.90' },
    });
    await h.app.get(OutboxPublisher).flush();
    const warning = await eventually(async () => {
      const published = (await readAll(h.kafka, eventsTopic))
        .map((m) => JSON.parse(m.value!) as { type: string; source: string; data: Record<string, string> })
        .filter((e) => e.source === 'agentmeter/cost-cap' && e.data.tenant_id === tenantId);
      expect(published.map((e) => e.type)).toEqual(['cap_warning']);
      return published[0]!;
    });
    expect(warning.data).toMatchObject({ scope: 'tenant', cap: 'cost', observed: '0.900000', role: 'validator' });
  });

  it('prices calls reported without a cost, and counts unpriced ones in tokens only', async () => {
    const tenantId = `price-${randomBytes(3).toString('hex')}`;
    await publishEvents(h.kafka, eventsTopic, [
      call(tenantId, 'run-1'), // gpt-4.1: 1,000 x $2/M + 100 x $8/M
      call(tenantId, 'run-1', { model: 'in-house-llm', provider: 'self' }),
    ]);
    await caughtUp();
    const { rows } = await h.pg.query(
      `SELECT cost_source, cost_micros::int AS cost, tokens::int FROM spend_ledger WHERE tenant_id = $1 ORDER BY cost_source`,
      [tenantId],
    );
    expect(rows).toEqual([
      { cost_source: 'computed', cost: 2_800, tokens: 1_100 },
      { cost_source: 'unpriced', cost: 0, tokens: 1_100 },
    ]);
  });

  it('publishes cap_warning at 80 % and cap_hit at 100 % once, with the command for the Coordinator', async () => {
    const tenantId = `cross-${randomBytes(3).toString('hex')}`;
    await h.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '1.00', run: { max_tokens: 2_000 } });
    // Run tokens: 1,100 then 2,200 (warning at 1,600, hit at 2,000); tenant $: 0.5, 0.85 (warning), 1.06 (hit).
    await publishEvents(h.kafka, eventsTopic, [
      call(tenantId, 'run-1', { cost_usd: '0.500000' }),
      call(tenantId, 'run-2', { cost_usd: '0.350000', prompt_tokens: 10, completion_tokens: 10 }),
    ]);
    await caughtUp();
    // The crossing call happened a moment before it reached cost-cap: the crossings it reaches carry its time.
    const crossing = {
      ...call(tenantId, 'run-1', { cost_usd: '0.210000' }),
      time: new Date(Date.now() - 1_500).toISOString(),
    };
    await publishEvents(h.kafka, eventsTopic, [crossing]);
    await caughtUp();
    await h.app.get(OutboxPublisher).flush();

    const published = (await readAll(h.kafka, eventsTopic))
      .map((m) => JSON.parse(m.value!) as { type: string; source: string; time: string; data: Record<string, string> })
      .filter((e) => e.source === 'agentmeter/cost-cap' && e.data.tenant_id === tenantId);
    const summary = published
      .map((e) => `${e.type} ${e.data.scope} ${e.data.cap} ${e.data.limit} ${e.data.observed}`)
      .sort();
    expect(summary).toEqual([
      'cap_hit run tokens 2000 2200',
      'cap_hit tenant cost 1.000000 1.060000',
      'cap_warning run tokens 2000 2200',
      'cap_warning tenant cost 1.000000 0.850000',
    ]);
    const hit = published.find((e) => e.type === 'cap_hit' && e.data.scope === 'tenant')!;
    expect(hit.data).toMatchObject({ day: expect.any(String), resets_at: expect.any(String) });
    // The crossing names the phase and role of the call whose spend crossed it (docs/events.md).
    expect(hit.data).toMatchObject({ phase: expect.any(String), role: expect.any(String) });
    expect(published.filter((e) => e.type === 'cap_hit').map((e) => e.time)).toEqual([crossing.time, crossing.time]);

    const messages = (await readAll(h.kafka, topicName(h.topicPrefix, Topics.Control))).filter((m) => {
      const c = JSON.parse(m.value!) as ControlCommand;
      return 'tenant_id' in c && c.tenant_id === tenantId;
    });
    const commands = messages.map((m) => JSON.parse(m.value!) as ControlCommand);
    expect(commands.map((c) => c.type).sort()).toEqual(['block_tenant', 'short_circuit_run']);
    // As the query API's commands: keyed by tenant, JSON (libs/kafka controlMessage).
    for (const m of messages)
      expect(m).toMatchObject({ key: tenantId, headers: { 'content-type': 'application/json' } });
    expect(commands.find((c) => c.type === 'short_circuit_run')).toMatchObject({
      run_id: 'run-1',
      instruction: 'partial_artifact_and_summary',
      cap: { scope: 'run', cap: 'tokens', limit: '2000' },
    });
    expect(commands.find((c) => c.type === 'block_tenant')).toMatchObject({
      cause: 'cap_hit',
      until: hit.data.resets_at,
    });

    // Admission now denies the run and the tenant; the caps row says blocked.
    const denied = await h.api<{ decision: string; denied_by: { scope: string; reason: string } }>(
      'POST',
      '/v1/admission/reserve',
      reserveBody({ tenant_id: tenantId, run_id: 'run-9' }),
    );
    expect(denied.body).toMatchObject({ decision: 'deny', denied_by: { scope: 'tenant', reason: 'cap_reached' } });
    const { rows } = await h.pg.query(`SELECT blocked FROM caps WHERE tenant_id = $1`, [tenantId]);
    expect(rows).toEqual([{ blocked: true }]);
    // The caps table and the remaining-budget gauge follow the ledger.
    await h.app.get(DailyCapsRefresher).refresh();
    const caps = await h.pg.query(
      `SELECT spent_micros::int AS spent, daily_cap_micros::int AS cap FROM caps WHERE tenant_id = $1`,
      [tenantId],
    );
    expect(caps.rows).toEqual([{ spent: 1_060_000, cap: 1_000_000 }]);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`agentmeter_cost_cap_tenant_remaining_usd\\{[^}]*tenant="${tenantId}"[^}]*\\} 0`),
    );

    // A raise unblocks the day and tells the Coordinator.
    await h.api('POST', `/v1/tenants/${tenantId}/overrides`, { ...ops, cap: 'tenant_daily_cost', limit: '2.00' });
    await h.app.get(OutboxPublisher).flush();
    await eventually(async () => {
      const control = (await readAll(h.kafka, topicName(h.topicPrefix, Topics.Control)))
        .map((m) => JSON.parse(m.value!) as ControlCommand)
        .filter((c) => 'tenant_id' in c && c.tenant_id === tenantId);
      expect(control.map((c) => c.type)).toContain('unblock_tenant');
    });
    expect(
      (
        await h.api<{ decision: string }>(
          'POST',
          '/v1/admission/reserve',
          reserveBody({ tenant_id: tenantId, run_id: 'run-9' }),
        )
      ).body.decision,
    ).toBe('allow');
  });
});
