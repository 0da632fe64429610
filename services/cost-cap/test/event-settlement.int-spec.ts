import { randomBytes } from 'node:crypto';
import type { AgentEventInput, CommitResponse, ReserveResponse } from '@agentmeter/contracts';
import { topicName, Topics } from '@agentmeter/contracts';
import { eventually, publishEvents, waitForGroupCaughtUp } from '@agentmeter/testing';
import { type Harness, reserveBody, startInProcess } from './harness';

/**
 * The fast path's settlement (docs/cost-cap.md "Settling from the event"): the llm_call / external_charge
 * event that names its reservation commits it — the spend counted once, the hold released once, whatever the
 * redeliveries and an explicit commit of the same event — and an event never settles another tenant's or
 * another run's reservation.
 */
describe('settling a reservation from its event', () => {
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
  const llmCall = (tenantId: string, runId: string, extra: Record<string, unknown>) =>
    ({
      key: runId,
      specversion: '1.0',
      id: `settle-${++seq}-${randomBytes(3).toString('hex')}`,
      source: 'coordinator/test',
      type: 'llm_call',
      time: new Date().toISOString(),
      subject: tenantId,
      data: {
        tenant_id: tenantId,
        project_id: 'site',
        run_id: runId,
        phase: 'implement',
        role: 'implementer',
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 1_000,
        completion_tokens: 100,
        latency_ms: 10,
        ...extra,
      },
    }) as AgentEventInput & { key: string };

  const reserve = (body: Record<string, unknown>) =>
    h.api<ReserveResponse>('POST', '/v1/admission/reserve', reserveBody(body));
  async function tenantWithCap(usd: string): Promise<string> {
    const tenantId = `settle-${randomBytes(3).toString('hex')}`;
    await h.api('PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: usd });
    return tenantId;
  }
  async function reservation(id: string): Promise<{ status: string }> {
    const { rows } = await h.pg.query(`SELECT status FROM reservations WHERE reservation_id = $1`, [id]);
    return rows[0];
  }
  async function ledger(tenantId: string): Promise<{ cost: number; entries: number; linked: number }> {
    const { rows } = await h.pg.query(
      `SELECT COALESCE(sum(cost_micros), 0)::int AS cost, count(*)::int AS entries,
              count(reservation_id)::int AS linked
         FROM spend_ledger WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0];
  }
  async function daily(tenantId: string): Promise<{ spent: string; reserved: string }> {
    return (await h.api<{ daily: { spent: string; reserved: string } }>('GET', `/v1/tenants/${tenantId}/caps`)).body
      .daily;
  }

  it('commits the reservation its llm_call names and releases the hold exactly once under redelivery', async () => {
    const tenantId = await tenantWithCap('1');
    const held = await reserve({ tenant_id: tenantId, estimate: { cost_usd: '0.300000' } });
    expect(held.body.decision).toBe('allow');
    const id = held.body.reservation_id!;
    expect(await daily(tenantId)).toMatchObject({ spent: '0.000000', reserved: '0.300000' });

    const event = llmCall(tenantId, 'run-1', { cost_usd: '0.200000', reservation_id: id });
    await publishEvents(h.kafka, eventsTopic, [event, event]);
    await publishEvents(h.kafka, eventsTopic, [event]);
    await waitForGroupCaughtUp(h.kafka, h.groupId, eventsTopic);

    expect(await reservation(id)).toMatchObject({ status: 'committed' });
    expect(await ledger(tenantId)).toEqual({ cost: 200_000, entries: 1, linked: 1 });
    expect(await daily(tenantId)).toMatchObject({ spent: '0.200000', reserved: '0.000000' });

    // The explicit commit of the same event changes nothing more (it is the same spend).
    const commit = await h.api<CommitResponse>('POST', `/v1/admission/reservations/${id}/commit`, {
      event: { source: event.source, id: event.id },
      actual: { cost_usd: '0.200000' },
    });
    expect(commit.status).toBe(200);
    expect(commit.body.duplicate).toBe(true);
    expect(await ledger(tenantId)).toEqual({ cost: 200_000, entries: 1, linked: 1 });
    expect(await daily(tenantId)).toMatchObject({ spent: '0.200000', reserved: '0.000000' });

    // The released room is admitted again, exactly: 0.8 left.
    expect((await reserve({ tenant_id: tenantId, estimate: { cost_usd: '0.800000' } })).body.decision).toBe('allow');
    expect((await reserve({ tenant_id: tenantId, estimate: { cost_usd: '0.000001' } })).body.decision).toBe('deny');
  });

  it('settles holds of a burst from their events: the room comes back exactly, once', async () => {
    const tenantId = await tenantWithCap('0.100000');
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => reserve({ tenant_id: tenantId, run_id: `run-${i % 3}` })),
    );
    const admitted = answers.filter((a) => a.body.decision === 'allow');
    expect(admitted).toHaveLength(10);
    // Each call cost half its estimate; the events come twice, interleaved.
    const events = admitted.map((a, i) =>
      llmCall(tenantId, `run-${answers.indexOf(a) % 3}`, {
        cost_usd: '0.005000',
        reservation_id: a.body.reservation_id,
        attempt: i + 1,
      }),
    );
    await publishEvents(h.kafka, eventsTopic, [...events, ...events.slice().reverse()]);
    await waitForGroupCaughtUp(h.kafka, h.groupId, eventsTopic);
    expect(await ledger(tenantId)).toEqual({ cost: 50_000, entries: 10, linked: 10 });
    expect(await daily(tenantId)).toMatchObject({ spent: '0.050000', reserved: '0.000000' });
    const more = await Promise.all(Array.from({ length: 20 }, () => reserve({ tenant_id: tenantId })));
    expect(more.filter((a) => a.body.decision === 'allow')).toHaveLength(5);
  });

  it("never settles another tenant's or another run's reservation: that event counts in full and the hold stays", async () => {
    const owner = await tenantWithCap('1');
    const other = await tenantWithCap('1');
    const held = await reserve({ tenant_id: owner, estimate: { cost_usd: '0.300000' } });
    const id = held.body.reservation_id!;
    await publishEvents(h.kafka, eventsTopic, [
      llmCall(other, 'run-1', { cost_usd: '0.100000', reservation_id: id }),
      llmCall(owner, 'run-other', { cost_usd: '0.100000', reservation_id: id }),
    ]);
    await waitForGroupCaughtUp(h.kafka, h.groupId, eventsTopic);
    expect(await reservation(id)).toMatchObject({ status: 'open' });
    expect(await ledger(other)).toEqual({ cost: 100_000, entries: 1, linked: 0 });
    expect(await ledger(owner)).toEqual({ cost: 100_000, entries: 1, linked: 0 });
    expect(await daily(owner)).toMatchObject({ spent: '0.100000', reserved: '0.300000' });
    await eventually(async () => expect(await daily(other)).toMatchObject({ spent: '0.100000', reserved: '0.000000' }));
  });
});
