import { AgentEvent as AgentEventSchema, AlertRules, type AgentEvent } from '@agentmeter/contracts';
import { createTestDatabase, type TestDatabase } from '@agentmeter/testing';
import type { Observation } from '../src/lifecycle/lifecycle.service';
import { alertReplica, TestClock, type AlertReplica } from './alert-harness';

/**
 * The alert lifecycle against PostgreSQL: fire once, repeat, resolve, re-arm; the claim under concurrency
 * (replicas and retries record one notification); muting; grouping and flushing.
 */
describe('alert lifecycle against PostgreSQL', () => {
  let database: TestDatabase;
  let clock: TestClock;
  let a: AlertReplica;
  let b: AlertReplica;

  beforeAll(async () => {
    database = await createTestDatabase();
    clock = new TestClock(new Date('2026-11-23T10:00:00Z')); // a Monday
    a = await alertReplica(database.url, clock);
    b = await alertReplica(database.url, clock);
  });

  afterAll(async () => {
    await a.close();
    await b.close();
    await database.drop();
  });

  const observation = (over: Partial<Observation> = {}): Observation => ({
    rule: AlertRules.PhaseStalled,
    tenantId: 'acme',
    scope: 'run:r1:phase:plan',
    period: '',
    firing: true,
    audience: 'owner',
    severity: 'warning',
    title: 'Phase stalled',
    body: 'Run r1 has been in phase plan for 49 h.',
    ...over,
  });

  async function notifications(tenantId: string, scope?: string) {
    const rows: Array<{ kind: string; outcome: string; group_id: string | null; muted_by: string | null }> =
      await a.db.query(
        `SELECT kind, outcome, group_id, muted_by FROM alert_notifications
          WHERE tenant_id = $1 AND ($2::text IS NULL OR scope = $2) ORDER BY id`,
        [tenantId, scope ?? null],
      );
    return rows;
  }

  it('fires once, repeats after the interval, resolves with a message, and re-arms', async () => {
    const scope = 'run:lifecycle:phase:plan';
    for (let i = 0; i < 3; i++) await a.lifecycle.observe([observation({ scope })]);
    expect((await notifications('acme', scope)).map((n) => n.kind)).toEqual(['firing']);

    clock.advance(239 * 60_000);
    await a.lifecycle.observe([observation({ scope })]);
    expect(await notifications('acme', scope)).toHaveLength(1);

    clock.advance(60_000); // the default repeat interval is 240 minutes
    await a.lifecycle.observe([observation({ scope })]);
    expect((await notifications('acme', scope)).map((n) => n.kind)).toEqual(['firing', 'repeat']);

    await a.lifecycle.observe([observation({ scope, firing: false })]);
    await a.lifecycle.observe([observation({ scope, firing: false })]);
    expect((await notifications('acme', scope)).map((n) => n.kind)).toEqual(['firing', 'repeat', 'resolved']);
    const [state] = await a.db.query(`SELECT status, resolved_at FROM alerts WHERE scope = $1`, [scope]);
    expect(state).toMatchObject({ status: 'resolved', resolved_at: clock.now() });

    await a.lifecycle.observe([observation({ scope })]);
    expect((await notifications('acme', scope)).map((n) => n.kind)).toEqual(['firing', 'repeat', 'resolved', 'firing']);
  });

  it('re-arms a firing alert when its threshold changes', async () => {
    const scope = 'run:threshold:phase:plan';
    await a.lifecycle.observe([observation({ scope })]);
    await a.lifecycle.observe([observation({ scope })]);
    expect(await notifications('acme', scope)).toHaveLength(1);

    await a.thresholds.set('acme', AlertRules.PhaseStalled, { hours: 12 }, 'ops@acme', 'noisy project');
    await a.lifecycle.observe([observation({ scope })]);
    await a.lifecycle.observe([observation({ scope })]);
    expect((await notifications('acme', scope)).map((n) => n.kind)).toEqual(['firing', 'firing']);

    // Lifecycle parameters are not thresholds: changing the repeat interval re-arms nothing.
    await a.thresholds.set('acme', AlertRules.PhaseStalled, { hours: 12, repeat_interval_minutes: 30 }, 'ops', 'x');
    await a.lifecycle.observe([observation({ scope })]);
    expect(await notifications('acme', scope)).toHaveLength(2);
    await a.thresholds.clear('acme', AlertRules.PhaseStalled, 'ops@acme', 'back to defaults');
    const audit = await a.db.query(`SELECT action, actor FROM alert_audit WHERE tenant_id = 'acme' ORDER BY id`);
    expect(audit).toEqual([
      { action: 'threshold.set', actor: 'ops@acme' },
      { action: 'threshold.set', actor: 'ops' },
      { action: 'threshold.clear', actor: 'ops@acme' },
    ]);
  });

  it('records one notification when two replicas observe the same alert many times at once', async () => {
    const scope = 'run:race:phase:plan';
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).lifecycle.observe([observation({ scope })])),
    );
    expect(await notifications('acme', scope)).toHaveLength(1);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).lifecycle.observe([observation({ scope, firing: false })])),
    );
    expect((await notifications('acme', scope)).map((n) => n.kind)).toEqual(['firing', 'resolved']);
  });

  it('records a muted alert without queuing it, and a tenant mute leaves Admin rules alone', async () => {
    await a.mutes.create({
      tenant_id: 'muted',
      actor: 'owner@muted',
      reason: 'migration weekend',
      ends_at: new Date(clock.now().getTime() + 3_600_000).toISOString(),
    });
    await a.lifecycle.observe([observation({ tenantId: 'muted' })]);
    await a.lifecycle.observe([
      observation({ tenantId: 'muted', rule: AlertRules.TenantCapBreach, audience: 'admin', scope: 'tenant:cost' }),
    ]);
    const rows = await notifications('muted');
    expect(rows).toEqual([
      { kind: 'firing', outcome: 'muted', group_id: null, muted_by: expect.stringMatching(/^mute:/) },
      { kind: 'firing', outcome: 'queued', group_id: expect.any(String), muted_by: null },
    ]);
    const [alert] = await a.db.query(`SELECT status FROM alerts WHERE tenant_id = 'muted' AND rule = $1`, [
      AlertRules.PhaseStalled,
    ]);
    expect(alert).toEqual({ status: 'firing' }); // recorded
    const [audit] = await a.db.query(`SELECT action, actor, reason FROM alert_audit WHERE tenant_id = 'muted'`);
    expect(audit).toEqual({ action: 'mute.create', actor: 'owner@muted', reason: 'migration weekend' });

    // The mute expires: the next new alert is queued.
    clock.advance(3_600_000);
    await a.lifecycle.observe([observation({ tenantId: 'muted', scope: 'run:after:phase:plan' })]);
    expect((await notifications('muted', 'run:after:phase:plan'))[0]).toMatchObject({ outcome: 'queued' });
  });

  it('mutes on weekends with a mute timing', async () => {
    await a.mutes.createTiming({
      tenant_id: 'weekender',
      actor: 'owner',
      reason: 'no pages on weekends',
      name: 'weekends',
      weekdays: ['sat', 'sun'],
      start: '00:00',
      end: '24:00',
      time_zone: 'UTC',
    });
    const saturday = new TestClock(new Date('2026-11-28T15:00:00Z'));
    const weekend = await alertReplica(database.url, saturday);
    try {
      await weekend.lifecycle.observe([observation({ tenantId: 'weekender', scope: 'run:sat:phase:plan' })]);
      saturday.at = new Date('2026-11-30T09:00:00Z'); // Monday
      await weekend.lifecycle.observe([observation({ tenantId: 'weekender', scope: 'run:mon:phase:plan' })]);
    } finally {
      await weekend.close();
    }
    expect((await notifications('weekender')).map((n) => [n.outcome, n.muted_by])).toEqual([
      ['muted', 'timing:weekends'],
      ['queued', null],
    ]);
  });

  async function addEmailContact(tenantId: string, email: string): Promise<void> {
    await a.db.query(
      `INSERT INTO alert_contacts (id, tenant_id, audience, channel, email, created_by)
       VALUES (gen_random_uuid(), $1, 'owner', 'email', $2, 'test')`,
      [tenantId, email],
    );
  }

  it('groups alerts of one tenant and rule into one message per contact, plus banners, once', async () => {
    await addEmailContact('grouped', 'one@grouped.test');
    await addEmailContact('grouped', 'two@grouped.test');
    const outcomes = await a.lifecycle.observe(
      ['r1', 'r2', 'r3'].map((run) => observation({ tenantId: 'grouped', scope: `run:${run}:phase:plan` })),
    );
    const groupIds = new Set(outcomes.map((o) => o.notification?.groupId));
    expect(groupIds.size).toBe(1);
    const [groupId] = [...groupIds];

    const deliveries = await a.groups.flush(groupId!);
    expect(deliveries.map((d) => d.channel).sort()).toEqual(['banner', 'email', 'email']);
    for (const delivery of deliveries) {
      expect(delivery.message.alerts.map((item) => item.scope)).toEqual([
        'run:r1:phase:plan',
        'run:r2:phase:plan',
        'run:r3:phase:plan',
      ]);
      expect(delivery.message.subject).toBe('[AgentMeter warning] Phase stalled: 3 firing (tenant grouped)');
    }
    expect(await a.groups.flush(groupId!)).toEqual([]); // a repeated flush job adds nothing

    // After the flush a new notification opens a new group.
    const [later] = await a.lifecycle.observe([observation({ tenantId: 'grouped', scope: 'run:r4:phase:plan' })]);
    expect(later!.notification!.groupId).not.toBe(groupId);
  });

  it('delivers every queued notification exactly once while flushes race with new notifications', async () => {
    const tenantId = 'racing';
    const scopes = Array.from({ length: 40 }, (_, i) => `run:n${i}:phase:plan`);
    let done = false;
    const flusher = (async () => {
      while (!done) {
        const open: Array<{ id: string }> = await b.db.query(
          `SELECT id FROM alert_groups WHERE tenant_id = $1 AND status = 'open'`,
          [tenantId],
        );
        await Promise.all(open.map((group) => b.groups.flush(group.id)));
      }
    })();
    await Promise.all(scopes.map((scope, i) => (i % 2 ? a : b).lifecycle.observe([observation({ tenantId, scope })])));
    done = true;
    await flusher;
    const open: Array<{ id: string }> = await a.db.query(
      `SELECT id FROM alert_groups WHERE tenant_id = $1 AND status = 'open'`,
      [tenantId],
    );
    for (const group of open) await a.groups.flush(group.id);

    const banners: Array<{ message: { alerts: Array<{ scope: string }> } }> = await a.db.query(
      `SELECT message FROM alert_deliveries WHERE tenant_id = $1 AND channel = 'banner'`,
      [tenantId],
    );
    const delivered = banners.flatMap((d) => d.message.alerts.map((item) => item.scope)).sort();
    expect(delivered).toEqual([...scopes].sort());
  });

  function capHit(id: string, tenantId: string, runId: string, over: Record<string, unknown> = {}): AgentEvent {
    return AgentEventSchema.parse({
      specversion: '1.0',
      id,
      source: 'cost-cap/test',
      type: 'cap_hit',
      time: clock.now().toISOString(),
      subject: tenantId,
      data: {
        tenant_id: tenantId,
        project_id: 'p',
        run_id: runId,
        scope: 'run',
        cap: 'cost',
        limit: '5.000000',
        observed: '5.000000',
        ...over,
      },
    }) as AgentEvent;
  }

  it('fires event alerts once per crossing and resolves them quietly when they go quiet', async () => {
    await a.events.handle([
      capHit('e1', 'caps', 'run-1'),
      capHit('e1', 'caps', 'run-1'),
      capHit('e2', 'caps', 'run-1'),
    ]);
    await a.events.handle([capHit('e3', 'caps', 'run-1', { scope: 'tenant', day: '2026-11-23' })]);
    const rows = await a.db.query(
      `SELECT rule, scope, period, kind FROM alert_notifications WHERE tenant_id = 'caps' ORDER BY scope, rule`,
    );
    expect(rows).toEqual([
      { rule: AlertRules.CapHit, scope: 'run:run-1:cost', period: '', kind: 'firing' },
      { rule: AlertRules.TenantCapBreach, scope: 'tenant:cost', period: '2026-11-23', kind: 'firing' },
      { rule: AlertRules.CapHit, scope: 'tenant:cost', period: '2026-11-23', kind: 'firing' },
    ]);
    await a.db.query(
      `INSERT INTO alert_banners (tenant_id, audience, alert_key, rule, severity, title, body)
       SELECT tenant_id, audience, alert_key, rule, severity, title, body FROM alerts WHERE tenant_id = 'caps'`,
    );

    clock.advance(23 * 3_600_000);
    await a.rules.sweep();
    expect(
      await a.db.query(`SELECT count(*)::int AS n FROM alerts WHERE tenant_id = 'caps' AND status = 'firing'`),
    ).toEqual([{ n: 3 }]);
    clock.advance(3_600_000);
    const swept = await a.rules.sweep();
    expect(swept.resolved).toBe(3);
    expect(await a.db.query(`SELECT DISTINCT status FROM alerts WHERE tenant_id = 'caps'`)).toEqual([
      { status: 'resolved' },
    ]);
    // Event rules resolve without a message, but their banners are resolved.
    expect(await a.db.query(`SELECT count(*)::int AS n FROM alert_notifications WHERE tenant_id = 'caps'`)).toEqual([
      { n: 3 },
    ]);
    expect(
      await a.db.query(`SELECT count(*)::int AS n FROM alert_banners WHERE tenant_id = 'caps' AND resolved_at IS NULL`),
    ).toEqual([{ n: 0 }]);
  });

  it('fires repeated validation failures at the third failure of a run within the window', async () => {
    const failure = (id: string, minutesAgo: number, runId = 'run-v') =>
      AgentEventSchema.parse({
        specversion: '1.0',
        id,
        source: 'coordinator/test',
        type: 'validation_failed',
        time: new Date(clock.now().getTime() - minutesAgo * 60_000).toISOString(),
        subject: 'valid',
        data: {
          tenant_id: 'valid',
          project_id: 'p',
          run_id: runId,
          phase: 'validate',
          role: 'validator',
          reason: `r${id}`,
        },
      }) as AgentEvent;
    await a.events.handle([failure('v1', 1500)]); // outside the 24 h window of the next ones
    await a.events.handle([failure('v0', 3000)]); // older than ALERT_MAX_EVENT_AGE_MS: ignored
    await a.events.handle([failure('v2', 30), failure('v2', 30)]); // a duplicate counts once
    expect(await notifications('valid')).toHaveLength(0);
    await a.events.handle([failure('v3', 20)]);
    expect(await notifications('valid')).toHaveLength(0);
    await a.events.handle([failure('v4', 10), failure('v5', 5)]);
    const rows = await a.db.query(`SELECT rule, scope, kind, body FROM alert_notifications WHERE tenant_id = 'valid'`);
    expect(rows).toEqual([
      {
        rule: AlertRules.ValidationFailures,
        scope: 'run:run-v',
        kind: 'firing',
        body: expect.stringContaining('failed validation 3 times'),
      },
    ]);
  });
});
