import { type CapOverride, type CapPolicy, reachedThresholds, resolveLimits, type RunCapValues } from './caps';

const none: RunCapValues = { tokens: null, wallTimeS: null, costMicros: null, externalMicros: null };
const policy = (daily: bigint | null, run: Partial<RunCapValues> = {}): CapPolicy => ({
  dailyCostMicros: daily,
  run: { ...none, ...run },
});
const now = new Date('2026-11-25T12:00:00Z');
const hours = (h: number) => new Date(now.getTime() + h * 3_600_000);

function raise(overrides: Partial<CapOverride>): CapOverride {
  return {
    id: 'o1',
    target: 'tenant_daily_cost',
    runId: null,
    value: 0n,
    createdAt: hours(-1),
    expiresAt: hours(71),
    revokedAt: null,
    actor: 'ops',
    reason: 'launch',
    ...overrides,
  };
}

describe('resolveLimits', () => {
  const base = { defaults: policy(null), tenant: null, project: null, runCaps: null, runId: 'r1', overrides: [], now };

  it.each([
    ['nothing configured: no caps', {}, 'runCost', null, 'none'],
    ['deployment default', { defaults: policy(9n, { costMicros: 5n }) }, 'runCost', 5n, 'default'],
    [
      'tenant beats default',
      { defaults: policy(null, { costMicros: 5n }), tenant: policy(null, { costMicros: 7n }) },
      'runCost',
      7n,
      'tenant',
    ],
    [
      'project beats tenant',
      { tenant: policy(null, { costMicros: 7n }), project: policy(null, { costMicros: 3n }) },
      'runCost',
      3n,
      'project',
    ],
    [
      'a looser project still beats tenant',
      { tenant: policy(null, { costMicros: 7n }), project: policy(null, { costMicros: 30n }) },
      'runCost',
      30n,
      'project',
    ],
    [
      'run caps tighten',
      { tenant: policy(null, { tokens: 100n }), runCaps: { ...none, tokens: 40n } },
      'runTokens',
      40n,
      'run',
    ],
    [
      'run caps never loosen',
      { tenant: policy(null, { tokens: 100n }), runCaps: { ...none, tokens: 400n } },
      'runTokens',
      100n,
      'tenant',
    ],
    ['run caps without a default', { runCaps: { ...none, wallTimeS: 60n } }, 'runWallTimeS', 60n, 'run'],
    ['daily cap from the tenant', { defaults: policy(9n), tenant: policy(4n) }, 'tenantDailyCost', 4n, 'tenant'],
    ['daily cap from the default', { defaults: policy(9n), tenant: policy(null) }, 'tenantDailyCost', 9n, 'default'],
    ['project daily values are ignored', { project: policy(1n) }, 'tenantDailyCost', null, 'none'],
  ] as const)('%s', (_name, inputs, field, value, source) => {
    const limits = resolveLimits({ ...base, ...inputs });
    expect(limits[field]).toMatchObject({ value, source });
  });

  it.each([
    ['a raise in force replaces the cap', [raise({ value: 20n })], 20n, 'override', 'o1'],
    ['expired exactly at expires_at', [raise({ value: 20n, expiresAt: now })], 10n, 'tenant', null],
    ['not yet created', [raise({ value: 20n, createdAt: hours(1) })], 10n, 'tenant', null],
    ['revoked', [raise({ value: 20n, revokedAt: hours(-0.5) })], 10n, 'tenant', null],
    ['a raise never lowers, but is shown', [raise({ value: 5n })], 10n, 'tenant', 'o1'],
    [
      'the latest of two raises',
      [raise({ id: 'a', value: 20n, createdAt: hours(-2) }), raise({ id: 'b', value: 15n })],
      15n,
      'override',
      'b',
    ],
    [
      'created at the same instant: the higher',
      [raise({ id: 'high', value: 30n }), raise({ id: 'low', value: 15n })],
      30n,
      'override',
      'high',
    ],
  ])('tenant daily: %s', (_name, overrides, value, source, overrideId) => {
    const limits = resolveLimits({ ...base, tenant: policy(10n), overrides });
    expect(limits.tenantDailyCost).toMatchObject({ value, source });
    expect(limits.tenantDailyCost.override?.id ?? null).toBe(overrideId);
  });

  it.each([
    ['a raise for all runs', [raise({ target: 'run_cost', value: 50n })], 50n],
    ['a raise for another run does not apply', [raise({ target: 'run_cost', value: 50n, runId: 'r2' })], 10n],
    [
      'a raise for this run beats a newer one for all runs',
      [
        raise({ id: 'mine', target: 'run_cost', value: 30n, runId: 'r1', createdAt: hours(-3) }),
        raise({ id: 'all', target: 'run_cost', value: 60n }),
      ],
      30n,
    ],
    ['a raise of another cap does not apply', [raise({ target: 'run_tokens', value: 50n })], 10n],
  ])('run cost: %s', (_name, overrides, value) => {
    const limits = resolveLimits({ ...base, tenant: policy(null, { costMicros: 10n }), overrides });
    expect(limits.runCost.value).toBe(value);
  });

  it('a raise does not create a cap where there is none', () => {
    const limits = resolveLimits({ ...base, overrides: [raise({ value: 20n })] });
    expect(limits.tenantDailyCost).toMatchObject({ value: null, source: 'none', override: null });
  });
});

describe('reachedThresholds', () => {
  it.each([
    [0n, 100n, []],
    [79n, 100n, []],
    [80n, 100n, [80]],
    [99n, 100n, [80]],
    [100n, 100n, [80, 100]],
    [150n, 100n, [80, 100]],
    [5n, null, []],
    [0n, 0n, []],
    [1n, 0n, [80, 100]],
    // 80 % of 7 is 5.6: 5 is below, 6 is above
    [5n, 7n, []],
    [6n, 7n, [80]],
  ])('%p of %p', (observed, limit, thresholds) => {
    expect(reachedThresholds(observed, limit)).toEqual(thresholds);
  });
});
