import {
  AlertRules,
  AlertThresholdSchemas,
  PLATFORM_TENANT,
  type AlertRuleId,
  type AlertThresholds,
} from '@agentmeter/contracts';
import {
  capObservations,
  dailyTokenUsage,
  driftRatio,
  errorRateAbove,
  failingContacts,
  implementerDrift,
  mcpBreakers,
  modelErrorSpikes,
  overdueProofs,
  quietPeriodMs,
  stalledPhases,
  sustainedQueueLatency,
  toolErrorRates,
  validationFailuresObservation,
  type CapCrossing,
} from './alert-rules';

const defaults = <R extends AlertRuleId>(rule: R): AlertThresholds<R> =>
  AlertThresholdSchemas[rule].parse({}) as AlertThresholds<R>;
const now = new Date('2026-11-25T12:00:00Z');

describe('capObservations', () => {
  const crossing = (over: Partial<CapCrossing>): CapCrossing => ({
    type: 'cap_warning',
    tenantId: 'acme',
    runId: 'r1',
    scope: 'run',
    cap: 'cost',
    limit: '5.000000',
    observed: '4.000000',
    time: now,
    ...over,
  });
  const warning = defaults(AlertRules.CapWarning);

  it.each<[string, Partial<CapCrossing>, number, string[]]>([
    ['80% of a run cap warns, keyed by run', {}, 80, ['owner.cap_warning|run:r1:cost|']],
    ['79.99% does not warn', { observed: '3.999999' }, 80, []],
    ['a tenant override at 90% does not warn at 80%', {}, 90, []],
    ['100% of a run cap is hit', { type: 'cap_hit', observed: '5.000000' }, 80, ['owner.cap_hit|run:r1:cost|']],
    [
      'over the limit is hit even when reported as a warning',
      { observed: '5.100000' },
      80,
      ['owner.cap_hit|run:r1:cost|'],
    ],
    [
      'a tenant cap hit also raises the admin breach, keyed by the day',
      { type: 'cap_hit', scope: 'tenant', observed: '5.000000', day: '2026-11-24' },
      80,
      ['owner.cap_hit|tenant:cost|2026-11-24', 'admin.tenant_cap_breach|tenant:cost|2026-11-24'],
    ],
    [
      'a tenant warning without a day uses the UTC day',
      { scope: 'tenant' },
      80,
      ['owner.cap_warning|tenant:cost|2026-11-25'],
    ],
    [
      'token caps compare as integers',
      { cap: 'tokens', limit: '400000', observed: '320000' },
      80,
      ['owner.cap_warning|run:r1:tokens|'],
    ],
    [
      'an unreadable limit on a cap_hit still fires',
      { type: 'cap_hit', limit: 'n/a' },
      80,
      ['owner.cap_hit|run:r1:cost|'],
    ],
    ['an unreadable limit on a warning does nothing', { limit: 'n/a' }, 80, []],
  ])('%s', (_name, over, percent, expected) => {
    const out = capObservations(crossing(over), { ...warning, percent });
    expect(out.map((o) => `${o.rule}|${o.scope}|${o.period}`)).toEqual(expected);
    for (const o of out) expect(o.firing).toBe(true);
  });

  it('routes owner alerts to owners and the breach to admins', () => {
    const out = capObservations(crossing({ type: 'cap_hit', scope: 'tenant', observed: '6' }), warning);
    expect(out.map((o) => o.audience)).toEqual(['owner', 'admin']);
    expect(out[0]!.body).toContain('6 of 5.000000');
  });
});

describe('validationFailuresObservation', () => {
  const params = defaults(AlertRules.ValidationFailures);
  it.each([
    [2, false],
    [3, true],
    [7, true],
  ])('%i failures in the window fire: %s', (count, fires) => {
    expect(validationFailuresObservation('acme', 'r1', count, params, 'missing section') !== null).toBe(fires);
  });

  it('resolves after a quiet window', () => {
    expect(quietPeriodMs(AlertRules.ValidationFailures, params)).toBe(24 * 60 * 60_000);
    expect(quietPeriodMs(AlertRules.CapHit, {})).toBe(86_400_000);
  });
});

describe('evaluated rules', () => {
  const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);

  it.each([
    ['47 h is not stalled', 47, 48, 0],
    ['48 h is stalled', 48, 48, 1],
    ['a tenant override of 12 h', 13, 12, 1],
  ])('stalled phases: %s', (_name, age, hours, expected) => {
    const out = stalledPhases(
      [{ tenantId: 'acme', runId: 'r1', phase: 'implement', role: 'implementer', since: hoursAgo(age) }],
      now,
      () => ({ ...defaults(AlertRules.PhaseStalled), hours }),
    );
    expect(out).toHaveLength(expected);
    if (expected) expect(out[0]).toMatchObject({ scope: 'run:r1:phase:implement', audience: 'owner' });
  });

  it.each([
    ['due in the future', -1, 0, 0],
    ['due an hour ago', 1, 0, 1],
    ['due an hour ago with two hours of grace', 1, 120, 0],
  ])('overdue proofs: %s', (_name, dueHoursAgo, grace, expected) => {
    const out = overdueProofs(
      [{ tenantId: 'acme', runId: 'r1', proofId: 'p1', dueAt: hoursAgo(dueHoursAgo) }],
      now,
      () => ({
        ...defaults(AlertRules.ProofOverdue),
        grace_minutes: grace,
      }),
    );
    expect(out.map((o) => o.scope)).toEqual(expected ? ['run:r1:proof:p1'] : []);
  });

  it.each([
    [{ calls: 19, errors: 19 }, 20, 20, false],
    [{ calls: 20, errors: 4 }, 20, 20, true],
    [{ calls: 20, errors: 3 }, 20, 20, false],
    [{ calls: 3, errors: 1 }, 33.3, 1, true],
    [{ calls: 0, errors: 0 }, 0, 0, false],
  ])('errorRateAbove(%o, %d%%, min %d) is %s', (counts, percent, min, expected) => {
    expect(errorRateAbove(counts, percent, min)).toBe(expected);
  });

  it('model error spikes are platform alerts keyed by model', () => {
    const out = modelErrorSpikes(
      [
        { model: 'gpt-4.1', provider: 'openai', calls: 100, errors: 30 },
        { model: 'claude-sonnet-4-5', provider: 'anthropic', calls: 100, errors: 2 },
      ],
      defaults(AlertRules.ModelErrorSpike),
    );
    expect(out.map((o) => [o.tenantId, o.scope, o.audience])).toEqual([
      [PLATFORM_TENANT, 'model:openai/gpt-4.1', 'admin'],
    ]);
  });

  it('tool error rates use each tenant’s threshold', () => {
    const out = toolErrorRates(
      [
        { tenantId: 'strict', tool: 'github.get_tree', calls: 50, errors: 3 },
        { tenantId: 'lenient', tool: 'github.get_tree', calls: 50, errors: 3 },
      ],
      (tenant) => ({ ...defaults(AlertRules.ToolErrorRate), error_rate_percent: tenant === 'strict' ? 5 : 10 }),
    );
    expect(out.map((o) => o.tenantId)).toEqual(['strict']);
  });

  it('daily tokens fire at the threshold, keyed by the UTC day', () => {
    const out = dailyTokenUsage(
      [
        { tenantId: 'a', tokens: 5_000_000n },
        { tenantId: 'b', tokens: 4_999_999n },
      ],
      now,
      () => defaults(AlertRules.DailyTokens),
    );
    expect(out.map((o) => [o.tenantId, o.period])).toEqual([['a', '2026-11-25']]);
  });

  it.each<[string, Array<'ok' | 'error'>, boolean]>([
    ['five errors in a row: open', ['error', 'error', 'error', 'error', 'error', 'ok'], true],
    ['a success among the last five: closed', ['error', 'error', 'ok', 'error', 'error', 'error'], false],
    ['fewer calls than the streak: closed', ['error', 'error'], false],
    ['the latest call succeeded: closed', ['ok', 'error', 'error', 'error', 'error', 'error'], false],
  ])('MCP breaker: %s', (_name, latest, open) => {
    const out = mcpBreakers([{ tenantId: 'acme', server: 'github', latest }], () =>
      defaults(AlertRules.McpBreakerOpen),
    );
    expect(out.map((o) => o.scope)).toEqual(open ? ['mcp:github'] : []);
  });

  it.each<[string, Array<[number, number]>, boolean]>([
    [
      'above in all three buckets',
      [
        [0, 400],
        [1, 350],
        [2, 301],
      ],
      true,
    ],
    [
      'one bucket at the threshold',
      [
        [0, 400],
        [1, 300],
        [2, 400],
      ],
      false,
    ],
    [
      'a bucket without tasks breaks the streak',
      [
        [0, 400],
        [2, 400],
      ],
      false,
    ],
    [
      'older buckets do not count',
      [
        [0, 400],
        [1, 400],
        [2, 400],
        [3, 10],
      ],
      true,
    ],
  ])('sustained queue latency: %s', (_name, buckets, fires) => {
    const out = sustainedQueueLatency(
      [{ queue: 'implementer', buckets: new Map(buckets) }],
      defaults(AlertRules.QueueLatency),
    );
    expect(out.map((o) => [o.tenantId, o.scope])).toEqual(fires ? [[PLATFORM_TENANT, 'queue:implementer']] : []);
  });

  it('failing contacts fire until a later delivery succeeds', () => {
    const out = failingContacts(
      [
        { tenantId: 'acme', contactId: 'c1', channel: 'webhook', failures: 1, recovered: false },
        { tenantId: 'acme', contactId: 'c2', channel: 'slack', failures: 3, recovered: true },
      ],
      defaults(AlertRules.WebhookFailures),
    );
    expect(out.map((o) => o.scope)).toEqual(['contact:c1']);
  });

  it.each([
    [100, 100, 1],
    [200, 100, 2],
    [50, 100, 2],
    [0, 100, Number.POSITIVE_INFINITY],
    [0, 0, 1],
  ])('driftRatio(%d, %d) = %d', (recent, baseline, ratio) => {
    expect(driftRatio(recent, baseline)).toBe(ratio);
  });

  it.each([
    ['twice as long: drift', 2000, 30, 1000, 100, true],
    ['half as long: drift', 500, 30, 1000, 100, true],
    ['1.5 times: no drift', 1500, 30, 1000, 100, false],
    ['too few recent samples', 5000, 10, 1000, 100, false],
    ['too small a baseline', 5000, 30, 1000, 10, false],
  ])('implementer drift: %s', (_name, recentMean, recentSamples, baselineMean, baselineSamples, fires) => {
    const out = implementerDrift(
      [{ tenantId: 'acme', measure: 'length', recentMean, recentSamples, baselineMean, baselineSamples }],
      () => defaults(AlertRules.ImplementerDrift),
    );
    expect(out.map((o) => o.scope)).toEqual(fires ? ['implementer:length'] : []);
  });
});
