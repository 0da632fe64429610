import { Inject, Injectable } from '@nestjs/common';
import { DAY_MS, dayRange, dayRangeBetween, parsePeriodDays, type DayRange } from '@agentmeter/domain';
import { QueryConfig } from '../config';
import { InvalidRequestError } from '@agentmeter/http';

export const DEFAULT_PAGE_SIZE = 50;
const DEFAULT_RANGE_DAYS = 30;

/** Page-size and time-range caps (docs/security.md "Limits"), each refused with a 400 that says the cap. */
@Injectable()
export class Limits {
  constructor(@Inject(QueryConfig) private readonly config: QueryConfig) {}

  /** Page size of a JSON answer, or of a CSV export (which may be larger, up to QUERY_MAX_EXPORT_ROWS). */
  pageSize(requested: number | undefined, csv = false): number {
    const max = csv
      ? Math.max(this.config.QUERY_MAX_EXPORT_ROWS, this.config.QUERY_MAX_PAGE_SIZE)
      : this.config.QUERY_MAX_PAGE_SIZE;
    if (requested === undefined) return csv ? max : DEFAULT_PAGE_SIZE;
    if (requested > max) throw new InvalidRequestError(`limit: at most ${max}`);
    return requested;
  }

  /** [from, to) from optional ISO bounds: to defaults to now, from to 30 days before to. */
  timeRange(from: string | undefined, to: string | undefined, now: Date): { from: Date; to: Date } {
    const end = to ? new Date(to) : now;
    const start = from ? new Date(from) : new Date(end.getTime() - DEFAULT_RANGE_DAYS * DAY_MS);
    if (start.getTime() >= end.getTime()) throw new InvalidRequestError('from: must be before to');
    this.checkSpan((end.getTime() - start.getTime()) / DAY_MS);
    return { from: start, to: end };
  }

  /** Days of a "30d" period, within the range cap. */
  periodDays(period: string | undefined, fallback = 30): number {
    const days = period === undefined ? fallback : parsePeriodDays(period);
    if (days === null) throw new InvalidRequestError('period: a number of days such as 30d');
    this.checkSpan(days);
    return days;
  }

  /**
   * The UTC days an analytics answer covers: `period` (days ending today, default 30d) or `from`/`to` (UTC days,
   * both included; `to` defaults to today, `from` to 29 days before `to`), at most QUERY_MAX_AGGREGATE_RANGE_DAYS
   * (13 months: these routes read rollups kept that long).
   */
  aggregateRange(query: { period?: string; from?: string; to?: string }, now: Date): { range: DayRange; days: number } {
    if (query.period !== undefined && (query.from !== undefined || query.to !== undefined)) {
      throw new InvalidRequestError('period: give either period or from/to');
    }
    const max = this.config.QUERY_MAX_AGGREGATE_RANGE_DAYS;
    if (query.from === undefined && query.to === undefined) {
      const days = query.period === undefined ? 30 : parsePeriodDays(query.period);
      if (days === null) throw new InvalidRequestError('period: a number of days such as 30d');
      if (days > max) throw new InvalidRequestError(`time range: at most ${max} days`);
      return { range: dayRange(now, days), days };
    }
    const toDay = query.to ?? dayRange(now, 1).toDay;
    const fromDay = query.from ?? new Date(Date.parse(`${toDay}T00:00:00Z`) - 29 * DAY_MS).toISOString().slice(0, 10);
    if (fromDay > toDay) throw new InvalidRequestError('from: must not be after to');
    const range = dayRangeBetween(fromDay, toDay);
    const days = Math.round((range.to.getTime() - range.from.getTime()) / DAY_MS);
    if (days > max) throw new InvalidRequestError(`time range: at most ${max} days`);
    return { range, days };
  }

  /** An analytics range over raw rows (kept QUERY_MAX_RANGE_DAYS): aggregateRange within the raw range cap. */
  rawAggregateRange(
    query: { period?: string; from?: string; to?: string },
    now: Date,
  ): { range: DayRange; days: number } {
    const answer = this.aggregateRange(query, now);
    this.checkSpan(answer.days);
    return answer;
  }

  private checkSpan(days: number): void {
    if (days > this.config.QUERY_MAX_RANGE_DAYS) {
      throw new InvalidRequestError(`time range: at most ${this.config.QUERY_MAX_RANGE_DAYS} days`);
    }
  }
}
