import { retentionPlan } from './retention';

describe('retentionPlan', () => {
  const policy = { rawDays: 30, dailyUsageDays: 90, aggregateMonths: 13, partitionsAheadDays: 2 };

  it('computes cutoffs from the UTC day', () => {
    expect(retentionPlan(new Date('2026-11-25T23:59:00Z'), policy)).toEqual({
      dropRawBefore: '2026-10-26',
      foldUsageBefore: '2026-08-27',
      deleteAggregatesBefore: '2025-10-01',
      ensureDays: ['2026-11-25', '2026-11-26', '2026-11-27'],
    });
  });

  it('crosses year boundaries', () => {
    expect(retentionPlan(new Date('2027-01-05T00:00:00Z'), { ...policy, rawDays: 14 })).toMatchObject({
      dropRawBefore: '2026-12-22',
      ensureDays: ['2027-01-05', '2027-01-06', '2027-01-07'],
    });
  });
});
