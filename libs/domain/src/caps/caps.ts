import type { Micros } from '../money';

/**
 * Cap limits (docs/cost-cap.md "Caps and decisions"): which limit is in force for a run and for a
 * tenant-day, where it comes from, and which override raised it. Pure: the service passes "now".
 *
 * - A run cap's default is the project's value, else the tenant's, else the deployment default.
 * - A run may carry its own caps (run_started or the admission request): they can only tighten
 *   (the effective cap is the smaller of the two).
 * - The tenant's daily $ cap is the tenant's value, else the deployment default. No value: no cap.
 * - A raise (override) in force replaces the limit by its value when that is higher (a raise never
 *   lowers a cap). A raise for one run beats a raise for all runs of the tenant; among equals the latest (the higher
 *   when created at the same instant).
 *   A raise is in force from its creation until it is revoked or its expiry passes (expires_at <= now is
 *   expired: a 72 h raise created at t is gone at exactly t + 72 h).
 */

export type CapScope = 'run' | 'tenant';
export type CapName = 'tokens' | 'wall_time' | 'cost' | 'external';

/** The caps a run is held to; null means no cap. Wall time in seconds, money in micros. */
export interface RunCapValues {
  tokens: bigint | null;
  wallTimeS: bigint | null;
  costMicros: Micros | null;
  externalMicros: Micros | null;
}

/** Configured caps of one level (deployment default, tenant, or project). */
export interface CapPolicy {
  /** Ignored on project policies: the daily cap is per tenant. */
  dailyCostMicros: Micros | null;
  run: RunCapValues;
}

/** What an override raises. Run targets apply to one run (runId set) or to every run of the tenant. */
export type OverrideTarget = 'tenant_daily_cost' | 'run_tokens' | 'run_wall_time' | 'run_cost' | 'run_external';

export interface CapOverride {
  id: string;
  target: OverrideTarget;
  runId: string | null;
  value: bigint;
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  actor: string;
  reason: string;
}

export type LimitSource = 'run' | 'project' | 'tenant' | 'default' | 'override' | 'none';

export interface Limit {
  value: bigint | null;
  source: LimitSource;
  /** The raise in force for this cap, if any (also when the base limit was already higher). */
  override: CapOverride | null;
}

export interface EffectiveLimits {
  runTokens: Limit;
  runWallTimeS: Limit;
  runCost: Limit;
  runExternal: Limit;
  tenantDailyCost: Limit;
}

export interface LimitInputs {
  defaults: CapPolicy;
  tenant: CapPolicy | null;
  project: CapPolicy | null;
  /** The run's own caps, if it declared any. */
  runCaps: RunCapValues | null;
  runId: string | null;
  overrides: readonly CapOverride[];
  now: Date;
}

const RUN_FIELDS: Record<Exclude<OverrideTarget, 'tenant_daily_cost'>, keyof RunCapValues> = {
  run_tokens: 'tokens',
  run_wall_time: 'wallTimeS',
  run_cost: 'costMicros',
  run_external: 'externalMicros',
};

export function resolveLimits(inputs: LimitInputs): EffectiveLimits {
  const run = (target: keyof typeof RUN_FIELDS): Limit => {
    const field = RUN_FIELDS[target];
    let base: Limit = { value: null, source: 'none', override: null };
    const project = inputs.project?.run[field] ?? null;
    const tenant = inputs.tenant?.run[field] ?? null;
    const fallback = inputs.defaults.run[field];
    if (project !== null) base = { value: project, source: 'project', override: null };
    else if (tenant !== null) base = { value: tenant, source: 'tenant', override: null };
    else if (fallback !== null) base = { value: fallback, source: 'default', override: null };
    const own = inputs.runCaps?.[field] ?? null;
    if (own !== null && (base.value === null || own < base.value)) base = { value: own, source: 'run', override: null };
    return raised(base, activeOverride(inputs, target));
  };
  const daily = inputs.tenant?.dailyCostMicros ?? null;
  const dailyBase: Limit =
    daily !== null
      ? { value: daily, source: 'tenant', override: null }
      : inputs.defaults.dailyCostMicros !== null
        ? { value: inputs.defaults.dailyCostMicros, source: 'default', override: null }
        : { value: null, source: 'none', override: null };
  return {
    runTokens: run('run_tokens'),
    runWallTimeS: run('run_wall_time'),
    runCost: run('run_cost'),
    runExternal: run('run_external'),
    tenantDailyCost: raised(dailyBase, activeOverride(inputs, 'tenant_daily_cost')),
  };
}

/** True while an override is in force at `now`. */
export function overrideActive(override: CapOverride, now: Date): boolean {
  return override.revokedAt === null && override.createdAt <= now && now < override.expiresAt;
}

function activeOverride(inputs: LimitInputs, target: OverrideTarget): CapOverride | null {
  let best: CapOverride | null = null;
  for (const override of inputs.overrides) {
    if (override.target !== target || !overrideActive(override, inputs.now)) continue;
    if (override.runId !== null && override.runId !== inputs.runId) continue;
    if (target === 'tenant_daily_cost' && override.runId !== null) continue;
    if (!best) {
      best = override;
      continue;
    }
    const specific = override.runId !== null;
    const bestSpecific = best.runId !== null;
    if (specific !== bestSpecific) {
      if (specific) best = override;
    } else if (
      override.createdAt > best.createdAt ||
      (override.createdAt.getTime() === best.createdAt.getTime() && override.value > best.value)
    ) {
      best = override;
    }
  }
  return best;
}

function raised(base: Limit, override: CapOverride | null): Limit {
  if (!override || base.value === null) return base; // no cap: nothing to raise
  if (override.value > base.value) return { value: override.value, source: 'override', override };
  return { ...base, override };
}

/** Share of a cap at which a warning is raised (docs/cost-cap.md "Crossings, commands and alerts": 80 %/100 %). */
const WARNING_PERCENT = 80n;

export type Threshold = 80 | 100;

/**
 * Thresholds that committed spend has reached for a cap: 80 at 80 % and 100 at 100 %. Nothing is reached
 * with no spend (a zero cap denies everything at admission without "crossing" anything).
 */
export function reachedThresholds(observed: bigint, limit: bigint | null): Threshold[] {
  if (limit === null || observed <= 0n) return [];
  const reached: Threshold[] = [];
  if (observed * 100n >= limit * WARNING_PERCENT) reached.push(80);
  if (observed >= limit) reached.push(100);
  return reached;
}
