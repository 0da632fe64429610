import {
  averageMicros,
  dayRange,
  daysBetween,
  nextAction,
  parsePeriodDays,
  percentile,
  ratioOf,
  runCapUses,
} from './analytics';

describe('periods', () => {
  it.each([
    ['30d', 30],
    ['1d', 1],
    ['0d', null],
    ['30', null],
    ['-3d', null],
    ["30d' OR 1=1", null],
  ])('%s -> %s days', (period, days) => expect(parsePeriodDays(period)).toBe(days));

  it('covers whole UTC days ending today', () => {
    const range = dayRange(new Date('2026-11-25T23:59:00Z'), 7);
    expect(range).toMatchObject({ fromDay: '2026-11-19', toDay: '2026-11-25' });
    expect(range.to.toISOString()).toBe('2026-11-26T00:00:00.000Z');
    expect(daysBetween(range.fromDay, range.toDay)).toHaveLength(7);
  });
});

describe('runCapUses', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const spend = {
    tokens: 90_000n,
    costMicros: 4_000_000n,
    externalMicros: 0n,
    startedAt: new Date('2026-11-25T11:00:00Z'),
  };

  it.each([
    ['no caps', null, []],
    ['tokens at 90%', { max_tokens: 100_000 }, [{ cap: 'tokens', used: '90000', limit: '100000', ratio: 0.9 }]],
    ['cost at 80%', { max_cost_usd: '5.00' }, [{ cap: 'cost', used: '4.000000', limit: '5.000000', ratio: 0.8 }]],
    ['wall time at 100%', { max_wall_time_s: 3600 }, [{ cap: 'wall_time', used: '3600', limit: '3600', ratio: 1 }]],
    [
      'external with no spend',
      { max_external_usd: '1' },
      [{ cap: 'external', used: '0.000000', limit: '1.000000', ratio: 0 }],
    ],
  ])('%s', (_name, caps, expected) => expect(runCapUses(caps, spend, now)).toEqual(expected));

  it('computes ratios exactly for huge numbers and rounds down', () => {
    expect(ratioOf(2n ** 80n - 1n, 2n ** 80n)).toBe(0.9999);
    expect(ratioOf(1n, 0n)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('nextAction', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const run = (over: object) => ({
    runId: 'r',
    status: 'running',
    phase: 'validate',
    stageStatus: 'running',
    lastEventAt: new Date('2026-11-25T11:55:00Z'),
    error: null,
    ...over,
  });
  it.each([
    ['no run', null, null, 'start_run'],
    ['failed run', run({ status: 'failed', error: 'boom' }), null, 'rerun_last_step'],
    ['succeeded run', run({ status: 'succeeded' }), null, 'none'],
    ['failed validation', run({ stageStatus: 'failed' }), 'missing section', 'fix_validation'],
    ['silent run', run({ lastEventAt: new Date('2026-11-25T10:00:00Z') }), null, 'check_stuck_phase'],
    ['busy run', run({}), null, 'wait_for_run'],
  ])('%s -> %s', (_name, latestRun, lastFailure, action) => {
    expect(nextAction({ latestRun, lastFailure, stuckAfterMs: 3_600_000, now }).action).toBe(action);
  });
});

describe('statistics', () => {
  it('takes nearest-rank percentiles and half-up micro averages', () => {
    expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(percentile([1, 2], 0.95)).toBe(2);
    expect(percentile([], 0.5)).toBeNull();
    expect(averageMicros(5n, 2)).toBe(3n);
    expect(averageMicros(4n, 3)).toBe(1n);
    expect(averageMicros(1n, 0)).toBeNull();
  });
});
