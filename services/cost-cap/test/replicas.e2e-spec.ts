import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import {
  type AgentEventInput,
  type AlertSignal,
  type ControlCommand,
  type ReserveResponse,
  topicName,
  Topics,
} from '@agentmeter/contracts';
import {
  eventually,
  publishEvents,
  readAll,
  type RunningService,
  startService,
  waitForGroupCaughtUp,
} from '@agentmeter/testing';
import { call, isolation, reserveBody } from './harness';

type Isolation = Awaited<ReturnType<typeof isolation>>;

/**
 * Two cost-cap processes on the same database, Redis, topics and consumer group (docs/cost-cap.md "Tests and benchmark"): each
 * crossing gives one cap_warning / cap_hit and one command, however the work is split between them;
 * wall-time caps fire while a run is silent and not after it ended; a pause on one replica holds on the
 * other; validator sampling freezes the Publisher with a command and an Admin alert; a burst of 500
 * concurrent requests over both admits exactly the cap, with explicit commits and on the fast path (settled
 * by the events).
 */
describe('two cost-cap replicas', () => {
  let iso: Isolation;
  let kafka: Kafka;
  let a: RunningService;
  let b: RunningService;
  let pg: Client;
  const ops = { actor: 'ops@agentmeter', reason: 'e2e setup' };

  beforeAll(async () => {
    iso = await isolation();
    kafka = iso.kafka;
    const env = { ...iso.env, LOG_LEVEL: 'warn' };
    // Replica a traces (nothing exported): its control messages carry the trace context of their decision.
    a = await startService('cost-cap', { ...env, OTEL_SDK_DISABLED: 'false' });
    b = await startService('cost-cap', env);
    pg = new Client({ connectionString: iso.db.url });
    await pg.connect();
  });

  afterAll(async () => {
    if (process.env.E2E_DEBUG) console.log(a?.output(), b?.output());
    await Promise.all([a?.stop(), b?.stop()]);
    await pg?.end();
    await iso?.db.drop();
  });

  const eventsTopic = () => topicName(iso.topicPrefix, Topics.AgentEvents);
  const api = <T>(service: RunningService, method: string, path: string, body?: unknown) =>
    call<T>(service.url, method, path, body);

  let seq = 0;
  function event(type: AgentEventInput['type'], tenantId: string, runId: string, data: Record<string, unknown>) {
    return {
      key: runId,
      specversion: '1.0',
      id: `e2e-${++seq}-${randomBytes(3).toString('hex')}`,
      source: 'coordinator/e2e',
      type,
      time: new Date().toISOString(),
      subject: tenantId,
      data: { tenant_id: tenantId, project_id: 'site', run_id: runId, ...data },
    } as AgentEventInput & { key: string };
  }
  it('fast path: 500 concurrent reserves over both replicas admit exactly the cap, and their events settle every hold once', async () => {
    const tenantId = `fast-${randomBytes(3).toString('hex')}`;
    expect((await api(b, 'PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '1.00' })).status).toBe(200);
    // One request per call: reserve only, settled by the llm_call event naming the reservation.
    const answers = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const reserve = await api<ReserveResponse>(
          i % 2 === 0 ? a : b,
          'POST',
          '/v1/admission/reserve',
          reserveBody({ tenant_id: tenantId, run_id: `f-run-${i % 50}`, estimate: { cost_usd: '0.010000' } }),
        );
        return { i, status: reserve.status, body: reserve.body };
      }),
    );
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    const allowed = answers.filter((answer) => answer.body.decision === 'allow');
    expect(allowed).toHaveLength(100);
    const held = await pg.query(
      `SELECT count(*)::int AS n, sum(cost_micros)::bigint AS s FROM reservations WHERE tenant_id = $1 AND status = 'open'`,
      [tenantId],
    );
    expect(held.rows[0]).toEqual({ n: 100, s: '1000000' });
    // Each call spent half its estimate; every event is delivered twice. The consumer group spreads the
    // partitions over both replicas.
    const events = allowed.map(({ i, body }) => {
      const call = llmCall(tenantId, `f-run-${i % 50}`, '0.005000');
      return { ...call, data: { ...call.data, reservation_id: body.reservation_id } } as typeof call;
    });
    await publishEvents(kafka, eventsTopic(), [...events, ...events]);
    await waitForGroupCaughtUp(kafka, iso.groupId, eventsTopic());
    const settled = await pg.query(
      `SELECT status, count(*)::int AS n FROM reservations WHERE tenant_id = $1 GROUP BY status`,
      [tenantId],
    );
    expect(settled.rows).toEqual([{ status: 'committed', n: 100 }]);
    const ledger = await pg.query(
      `SELECT count(*)::int AS n, sum(cost_micros)::bigint AS s, count(reservation_id)::int AS linked
         FROM spend_ledger WHERE tenant_id = $1`,
      [tenantId],
    );
    expect(ledger.rows[0]).toEqual({ n: 100, s: '500000', linked: 100 });
    // The room the events gave back is admitted again, exactly: $0.50 = 50 more calls, over both replicas.
    const more = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        api<ReserveResponse>(
          i % 2 === 0 ? a : b,
          'POST',
          '/v1/admission/reserve',
          reserveBody({ tenant_id: tenantId, run_id: `f-run-${i % 50}`, estimate: { cost_usd: '0.010000' } }),
        ),
      ),
    );
    expect(more.filter((answer) => answer.body.decision === 'allow')).toHaveLength(50);
  });

  const llmCall = (tenantId: string, runId: string, cost: string) =>
    event('llm_call', tenantId, runId, {
      phase: 'implement',
      role: 'implementer',
      model: 'gpt-4.1',
      provider: 'openai',
      prompt_tokens: 100,
      completion_tokens: 10,
      latency_ms: 5,
      cost_usd: cost,
    });

  async function capEvents(tenantId: string): Promise<Array<{ type: string; data: Record<string, string> }>> {
    return (await readAll(kafka, eventsTopic()))
      .map((m) => JSON.parse(m.value!) as { type: string; source: string; data: Record<string, string> })
      .filter((e) => e.source === 'agentmeter/cost-cap' && e.data.tenant_id === tenantId);
  }
  async function commands(): Promise<ControlCommand[]> {
    return (await readAll(kafka, topicName(iso.topicPrefix, Topics.Control))).map(
      (m) => JSON.parse(m.value!) as ControlCommand,
    );
  }

  it('publish one cap_warning and one cap_hit per crossing, whichever replica sees it', async () => {
    const tenantId = `race-${randomBytes(3).toString('hex')}`;
    expect(
      (
        await api(a, 'PUT', `/v1/tenants/${tenantId}/caps`, {
          ...ops,
          daily_cap_usd: '1.00',
          run: { max_cost_usd: '0.20' },
        })
      ).status,
    ).toBe(200);
    // 30 runs over 3 partitions (split between the replicas' consumers) and 60 admission commits through
    // both replicas at once: $0.90 on the stream plus $0.60 committed crosses 80 % and 100 % of the day.
    const streamed = Array.from({ length: 30 }, (_, i) => llmCall(tenantId, `s-run-${i}`, '0.030000'));
    const admitted = Array.from({ length: 60 }, (_, i) => async () => {
      const replica = i % 2 === 0 ? a : b;
      const reserve = await api<ReserveResponse>(
        replica,
        'POST',
        '/v1/admission/reserve',
        reserveBody({ tenant_id: tenantId, run_id: `h-run-${i % 3}`, estimate: { cost_usd: '0.010000' } }),
      );
      if (reserve.body.decision !== 'allow') return;
      await api(replica, 'POST', `/v1/admission/reservations/${reserve.body.reservation_id}/commit`, {
        event: { source: 'coordinator/e2e', id: `h-${tenantId}-${i}` },
        actual: { cost_usd: '0.010000' },
      });
    });
    await Promise.all([publishEvents(kafka, eventsTopic(), streamed), ...admitted.map((task) => task())]);
    await waitForGroupCaughtUp(kafka, iso.groupId, eventsTopic(), 120_000);

    const { rows } = await pg.query(
      `SELECT count(*)::int AS n FROM cap_crossings WHERE tenant_id = $1 AND scope = 'tenant'`,
      [tenantId],
    );
    expect(rows[0].n).toBe(2);
    const published = await eventually(async () => {
      const events = (await capEvents(tenantId)).filter((e) => e.data.scope === 'tenant');
      expect(events).toHaveLength(2);
      return events;
    }, 60_000);
    expect(published.map((e) => e.type).sort()).toEqual(['cap_hit', 'cap_warning']);
    expect(published.find((e) => e.type === 'cap_hit')!.data).toMatchObject({
      scope: 'tenant',
      cap: 'cost',
      limit: '1.000000',
    });
    // Each run of the admission path crossed its own $0.20 cap once at most, and was stopped at it.
    const runHits = (await capEvents(tenantId)).filter((e) => e.data.scope === 'run' && e.type === 'cap_hit');
    expect(new Set(runHits.map((e) => e.data.run_id)).size).toBe(runHits.length);
    const blocks = (await commands()).filter((c) => c.type === 'block_tenant' && c.tenant_id === tenantId);
    expect(blocks).toHaveLength(1);
    const ledger = await pg.query(
      `SELECT run_id, sum(cost_micros)::int AS s FROM spend_ledger WHERE tenant_id = $1 AND run_id LIKE 'h-run-%' GROUP BY run_id`,
      [tenantId],
    );
    for (const run of ledger.rows) expect(run.s).toBeLessThanOrEqual(200_000);
  });

  it('admit exactly the cap, never more, with 500 concurrent requests spread over both replicas', async () => {
    const tenantId = `burst-${randomBytes(3).toString('hex')}`;
    expect((await api(a, 'PUT', `/v1/tenants/${tenantId}/caps`, { ...ops, daily_cap_usd: '1.00' })).status).toBe(200);
    // 500 requests of $0.01 at once, alternating replicas, over 50 runs: the $1.00 day has room for 100.
    const answers = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const replica = i % 2 === 0 ? a : b;
        const reserve = await api<ReserveResponse>(
          replica,
          'POST',
          '/v1/admission/reserve',
          reserveBody({ tenant_id: tenantId, run_id: `b-run-${i % 50}`, estimate: { cost_usd: '0.010000' } }),
        );
        return { replica, i, status: reserve.status, body: reserve.body };
      }),
    );
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    const allowed = answers.filter((answer) => answer.body.decision === 'allow');
    expect(allowed).toHaveLength(100);
    // Which replica's requests reach Redis first is up to timing: the cap holds over both whatever the split.
    // Committing every admitted call through the replica that admitted it accounts exactly the cap.
    await Promise.all(
      allowed.map(async ({ replica, i, body }) => {
        const commit = await api(replica, 'POST', `/v1/admission/reservations/${body.reservation_id}/commit`, {
          event: { source: 'coordinator/e2e', id: `b-${tenantId}-${i}` },
          actual: { cost_usd: '0.010000' },
        });
        expect(commit.status).toBe(200);
      }),
    );
    const { rows } = await pg.query(`SELECT sum(cost_micros)::bigint AS s FROM spend_ledger WHERE tenant_id = $1`, [
      tenantId,
    ]);
    expect(BigInt(rows[0].s)).toBe(1_000_000n);
    for (const replica of [a, b]) {
      const after = await api<ReserveResponse>(
        replica,
        'POST',
        '/v1/admission/reserve',
        reserveBody({ tenant_id: tenantId, run_id: 'b-run-0', estimate: { cost_usd: '0.000001' } }),
      );
      expect(after.body.decision).toBe('deny');
    }
  });

  it('fires a wall-time cap while the run is silent, and never for a run that ended', async () => {
    const tenantId = `wall-${randomBytes(3).toString('hex')}`;
    await publishEvents(kafka, eventsTopic(), [
      event('run_started', tenantId, 'quick', { caps: { max_wall_time_s: 1 } }),
      event('run_finished', tenantId, 'quick', {}),
      event('run_started', tenantId, 'silent', { caps: { max_wall_time_s: 2 } }),
    ]);
    const hits = await eventually(async () => {
      const events = await capEvents(tenantId);
      expect(events.filter((e) => e.type === 'cap_hit')).toHaveLength(1);
      return events;
    }, 60_000);
    expect(hits.map((e) => `${e.type} ${e.data.run_id} ${e.data.cap} ${e.data.limit}`).sort()).toEqual([
      'cap_hit silent wall_time 2',
      'cap_warning silent wall_time 2',
    ]);
    const shortCircuit = await eventually(async () => {
      const found = (await commands()).find((c) => c.type === 'short_circuit_run' && c.tenant_id === tenantId);
      expect(found).toBeDefined();
      return found!;
    });
    expect(shortCircuit).toMatchObject({ run_id: 'silent', cap: { cap: 'wall_time', limit: '2' } });
    // The stopped run is denied at admission on both replicas.
    for (const replica of [a, b]) {
      const denied = await api<ReserveResponse>(
        replica,
        'POST',
        '/v1/admission/reserve',
        reserveBody({ tenant_id: tenantId, run_id: 'silent' }),
      );
      expect(denied.body.denied_by).toMatchObject({ scope: 'run', cap: 'wall_time', reason: 'stopped' });
    }
  });

  it('holds a pause made on one replica on the other', async () => {
    const tenantId = `pause-${randomBytes(3).toString('hex')}`;
    expect(
      (await api<ReserveResponse>(b, 'POST', '/v1/admission/reserve', reserveBody({ tenant_id: tenantId }))).body
        .decision,
    ).toBe('allow');
    await api(a, 'POST', `/v1/tenants/${tenantId}/pause`, { actor: 'admin@am', reason: 'abuse report' });
    await eventually(async () => {
      const response = await api<ReserveResponse>(
        b,
        'POST',
        '/v1/admission/reserve',
        reserveBody({ tenant_id: tenantId }),
      );
      expect(response.body.denied_by).toMatchObject({ cap: 'paused' });
    }, 10_000);
    const block = await eventually(async () => {
      const found = (await commands()).find((c) => c.type === 'block_tenant' && c.tenant_id === tenantId);
      expect(found).toBeDefined();
      return found!;
    });
    expect(block).toMatchObject({ cause: 'paused', issued_by: 'admin@am', reason: 'abuse report' });
    // Published like the query API's commands (libs/kafka controlMessage): key, content type, trace context.
    const message = (await readAll(kafka, topicName(iso.topicPrefix, Topics.Control))).find(
      (m) => (JSON.parse(m.value!) as ControlCommand).command_id === block.command_id,
    );
    expect(message).toMatchObject({
      key: tenantId,
      headers: {
        'content-type': 'application/json',
        traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/),
      },
    });
  });

  it('freezes the Publisher of a failing playbook with a command and an Admin alert', async () => {
    const playbook = `pb-${randomBytes(3).toString('hex')}`;
    const samples = Array.from({ length: 6 }, (_, i) => ({ sample_id: `s-${i}`, passed: i % 2 === 0 }));
    const [first, second] = await Promise.all([
      api<{ newly_frozen: boolean }>(a, 'POST', `/v1/playbooks/${playbook}/validator-samples`, { samples }),
      api<{ newly_frozen: boolean }>(b, 'POST', `/v1/playbooks/${playbook}/validator-samples`, { samples }),
    ]);
    expect([first.body.newly_frozen, second.body.newly_frozen].filter(Boolean)).toHaveLength(1);
    const freeze = await eventually(async () => {
      const found = (await commands()).filter((c) => c.type === 'freeze_publisher' && c.playbook === playbook);
      expect(found).toHaveLength(1);
      return found[0]!;
    });
    expect(freeze).toMatchObject({ samples: 6, failures: 3, failure_rate: 0.5 });
    const alerts = await eventually(async () => {
      const found = (await readAll(kafka, topicName(iso.topicPrefix, Topics.Alerts)))
        .map((m) => JSON.parse(m.value!) as AlertSignal)
        .filter((alert) => alert.scope === `playbook:${playbook}`);
      expect(found).toHaveLength(1);
      return found;
    });
    expect(alerts[0]).toMatchObject({ rule: 'service.cost_cap.publisher_frozen', audience: 'admin', status: 'firing' });
  });
});
