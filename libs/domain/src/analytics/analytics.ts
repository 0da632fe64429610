import { formatUsd, parseUsd, type Micros } from '../money';

/**
 * Pure rules behind the query API's dashboards and analytics (docs/query.md "Dashboards"): analysis periods, caps
 * approaching their limit, and a project's next action. No IO; the SQL that gathers the inputs lives in
 * services/query.
 */

export const DAY_MS = 86_400_000;

export interface DayRange {
  /** First UTC day included (YYYY-MM-DD). */
  fromDay: string;
  /** Last UTC day included (YYYY-MM-DD), today for a period ending now. */
  toDay: string;
  /** [from, to): from is fromDay 00:00 UTC, to is the end of toDay. */
  from: Date;
  to: Date;
}

/** "30d" -> 30. Periods are whole UTC days ending today, like the daily rollups they read. */
export function parsePeriodDays(period: string): number | null {
  const match = /^([1-9]\d{0,3})d$/.exec(period);
  return match ? Number(match[1]) : null;
}

/** The `days` UTC calendar days ending with the day of `now` (today counts as one). */
export function dayRange(now: Date, days: number): DayRange {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const from = new Date(today - (days - 1) * DAY_MS);
  const to = new Date(today + DAY_MS);
  return { fromDay: isoDay(from), toDay: isoDay(new Date(today)), from, to };
}

/** The UTC days from `fromDay` to `toDay`, both included (YYYY-MM-DD). */
export function dayRangeBetween(fromDay: string, toDay: string): DayRange {
  const from = new Date(`${fromDay}T00:00:00Z`);
  const last = new Date(`${toDay}T00:00:00Z`);
  return { fromDay: isoDay(from), toDay: isoDay(last), from, to: new Date(last.getTime() + DAY_MS) };
}

export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Every UTC day from `fromDay` to `toDay` inclusive. */
export function daysBetween(fromDay: string, toDay: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${fromDay}T00:00:00Z`); t <= Date.parse(`${toDay}T00:00:00Z`); t += DAY_MS) {
    out.push(isoDay(new Date(t)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Caps approaching (docs/query.md "Dashboards": the Admin Overview; alerting at 80 % and 100 %)

/** Per-run caps as run_started carries them (libs/contracts RunCaps). */
export interface RunCapsInput {
  max_tokens?: number;
  max_wall_time_s?: number;
  max_cost_usd?: string;
  max_external_usd?: string;
}

export interface RunSpend {
  tokens: bigint;
  costMicros: Micros;
  externalMicros: Micros;
  startedAt: Date | null;
}

export type CapKind = 'tokens' | 'wall_time' | 'cost' | 'external';

export interface CapUse {
  cap: CapKind;
  /** Decimal strings: tokens, seconds, or USD with six decimals. */
  used: string;
  limit: string;
  /** used / limit, rounded down to 4 decimals (1 = at the cap). */
  ratio: number;
}

export const CAP_APPROACHING_RATIO = 0.8;

/** Ratio of two non-negative integers, rounded down to 4 decimals, exact for any size. */
export function ratioOf(used: bigint, limit: bigint): number {
  if (limit <= 0n) return used > 0n ? Number.POSITIVE_INFINITY : 0;
  return Number((used * 10_000n) / limit) / 10_000;
}

/** Every cap of a run with its use; callers keep those with ratio >= CAP_APPROACHING_RATIO. */
export function runCapUses(caps: RunCapsInput | null | undefined, spend: RunSpend, now: Date): CapUse[] {
  if (!caps) return [];
  const uses: CapUse[] = [];
  if (caps.max_tokens !== undefined) {
    const limit = BigInt(caps.max_tokens);
    uses.push({
      cap: 'tokens',
      used: spend.tokens.toString(),
      limit: limit.toString(),
      ratio: ratioOf(spend.tokens, limit),
    });
  }
  if (caps.max_wall_time_s !== undefined && spend.startedAt) {
    const elapsed = BigInt(Math.max(0, Math.floor((now.getTime() - spend.startedAt.getTime()) / 1000)));
    const limit = BigInt(caps.max_wall_time_s);
    uses.push({ cap: 'wall_time', used: elapsed.toString(), limit: limit.toString(), ratio: ratioOf(elapsed, limit) });
  }
  const money = (cap: CapKind, used: Micros, limitUsd: string | undefined) => {
    if (limitUsd === undefined) return;
    const limit = parseUsd(limitUsd);
    uses.push({ cap, used: formatUsd(used), limit: formatUsd(limit), ratio: ratioOf(used, limit) });
  };
  money('cost', spend.costMicros, caps.max_cost_usd);
  money('external', spend.externalMicros, caps.max_external_usd);
  return uses;
}

// ---------------------------------------------------------------------------------------------------------
// Project next action (docs/console.md "Project Overview": what is blocking the project)

export interface ProjectState {
  latestRun: {
    runId: string;
    status: string;
    phase: string | null;
    /** Status of the latest attempt of the run's current phase. */
    stageStatus: string | null;
    lastEventAt: Date;
    error: string | null;
  } | null;
  /** Most recent failure reason of the latest run, if any. */
  lastFailure: string | null;
  /** A run is stuck when it is running and silent for this long. */
  stuckAfterMs: number;
  now: Date;
}

export type NextActionKind =
  'start_run' | 'rerun_last_step' | 'fix_validation' | 'check_stuck_phase' | 'wait_for_run' | 'none';

export interface NextAction {
  action: NextActionKind;
  run_id: string | null;
  phase: string | null;
  reason: string;
}

export function nextAction(state: ProjectState): NextAction {
  const run = state.latestRun;
  if (!run) return { action: 'start_run', run_id: null, phase: null, reason: 'the project has no run yet' };
  const at = { run_id: run.runId, phase: run.phase };
  if (run.status === 'failed') {
    return { action: 'rerun_last_step', ...at, reason: run.error ?? state.lastFailure ?? 'the run failed' };
  }
  if (run.status === 'succeeded') return { action: 'none', ...at, reason: 'the latest run succeeded' };
  if (run.stageStatus === 'failed') {
    return { action: 'fix_validation', ...at, reason: state.lastFailure ?? 'the current phase failed validation' };
  }
  const silentMs = state.now.getTime() - run.lastEventAt.getTime();
  if (silentMs >= state.stuckAfterMs) {
    const minutes = Math.floor(silentMs / 60_000);
    return { action: 'check_stuck_phase', ...at, reason: `no event for ${minutes} min in phase ${run.phase ?? '?'}` };
  }
  return { action: 'wait_for_run', ...at, reason: `phase ${run.phase ?? '?'} in progress` };
}

// ---------------------------------------------------------------------------------------------------------
// Small statistics used by the metrics endpoint

/** Nearest-rank percentile of numbers (null for none). */
export function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/** A share as a number with 4 decimals (null when the denominator is 0). */
export function share(part: number, whole: number): number | null {
  return whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;
}

/** total / count rounded half up to whole micros (null when count is 0). */
export function averageMicros(total: Micros, count: number): Micros | null {
  if (count <= 0) return null;
  const n = BigInt(count);
  return (total * 2n + n) / (2n * n);
}
