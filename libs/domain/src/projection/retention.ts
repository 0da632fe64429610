/** Retention windows of raw rows, daily rollups and aggregates (docs/operations.md "Retention"). */
export interface RetentionPolicy {
  /** Raw events and call rows: 14 to 30 days. */
  rawDays: number;
  /** Daily usage rollups before being folded into monthly rows. */
  dailyUsageDays: number;
  /** Aggregates (runs, stages, failures, monthly usage). */
  aggregateMonths: number;
  /** Day partitions created ahead of time. */
  partitionsAheadDays: number;
}

export interface RetentionPlan {
  /** Raw partitions of days before this one are dropped. */
  dropRawBefore: string;
  /** Daily usage before this day is folded into months. */
  foldUsageBefore: string;
  /** Aggregates older than this day are deleted. */
  deleteAggregatesBefore: string;
  /** Days that must have partitions (today and the days ahead). */
  ensureDays: string[];
}

export function retentionPlan(now: Date, policy: RetentionPolicy): RetentionPlan {
  const day = (offset: number) => {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + offset));
    return d.toISOString().slice(0, 10);
  };
  const aggregates = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - policy.aggregateMonths, 1));
  return {
    dropRawBefore: day(-policy.rawDays),
    foldUsageBefore: day(-policy.dailyUsageDays),
    deleteAggregatesBefore: aggregates.toISOString().slice(0, 10),
    ensureDays: Array.from({ length: policy.partitionsAheadDays + 1 }, (_, i) => day(i)),
  };
}
