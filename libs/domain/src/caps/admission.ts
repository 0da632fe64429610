import type { CapName, CapOverride, CapScope, EffectiveLimits, Limit } from './caps';

/**
 * Admission before spend (docs/cost-cap.md "Caps and decisions"). The counted dimensions, in the order checks
 * run and denials are reported:
 *
 *   run_tokens    tokens of LLM calls
 *   run_cost      total $ of the run (LLM calls and external charges)
 *   run_external  $ of external charges
 *   tenant_cost   $ of the tenant-day (everything)
 *
 * decideAdmission() is the reference of what the Redis Lua script (services/cost-cap counters.lua.ts)
 * does atomically; an integration test runs both on the same random cases. The rules:
 *
 * 1. A run stopped by its wall-time cap is denied.
 * 2. A dimension whose committed spend has reached its limit denies everything of its scope: the run (or
 *    the tenant-day) is blocked, whatever is asked. Blocking ends with a new day or a raise.
 * 3. Each dimension the request adds to must have room: committed + reserved + requested <= limit.
 *    Otherwise the request is denied by the first dimension without room, except in partial mode (the
 *    Publisher): the money is cut down to the smallest room of its dimensions ("publish partial"); tokens
 *    must still fit, and no room at all is a denial.
 *
 * So a granted reservation never brings committed + reserved above a limit, and since it is checked and
 * held in one atomic step, no interleaving of requests can either.
 */

export type Dimension = 'run_tokens' | 'run_cost' | 'run_external' | 'tenant_cost';
export const DIMENSIONS: readonly Dimension[] = ['run_tokens', 'run_cost', 'run_external', 'tenant_cost'];

export const DIMENSION_CAPS: Record<Dimension, { scope: CapScope; cap: CapName }> = {
  run_tokens: { scope: 'run', cap: 'tokens' },
  run_cost: { scope: 'run', cap: 'cost' },
  run_external: { scope: 'run', cap: 'external' },
  tenant_cost: { scope: 'tenant', cap: 'cost' },
};

export interface Counter {
  committed: bigint;
  reserved: bigint;
}

export type Counters = Record<Dimension, Counter>;
export type DimensionLimits = Record<Dimension, bigint | null>;

/** An LLM call reserves tokens and $; an external charge reserves $ only. */
export type ReservationKind = 'llm' | 'charge';

export interface AdmissionRequest {
  kind: ReservationKind;
  tokens: bigint;
  /** $ in micros: the call's cost, or the charge's amount. */
  money: bigint;
  /** Publisher mode: grant what is left instead of denying. */
  partial: boolean;
}

export type DenyReason = 'stopped' | 'cap_reached' | 'insufficient';

export type AdmissionOutcome =
  | { status: 'allow'; tokens: bigint; money: bigint }
  | { status: 'partial'; tokens: bigint; money: bigint }
  | { status: 'deny'; dimension: Dimension | 'run_wall_time'; reason: DenyReason };

/** What a request adds to each dimension. */
export function needs(kind: ReservationKind, tokens: bigint, money: bigint): Record<Dimension, bigint> {
  return {
    run_tokens: kind === 'llm' ? tokens : 0n,
    run_cost: money,
    run_external: kind === 'charge' ? money : 0n,
    tenant_cost: money,
  };
}

export function decideAdmission(
  counters: Counters,
  limits: DimensionLimits,
  stopped: boolean,
  request: AdmissionRequest,
): AdmissionOutcome {
  if (stopped) return { status: 'deny', dimension: 'run_wall_time', reason: 'stopped' };
  for (const dimension of DIMENSIONS) {
    const limit = limits[dimension];
    if (limit !== null && counters[dimension].committed >= limit) {
      return { status: 'deny', dimension, reason: 'cap_reached' };
    }
  }
  const need = needs(request.kind, request.tokens, request.money);
  let granted = request.money;
  let tightest: Dimension | null = null;
  for (const dimension of DIMENSIONS) {
    const limit = limits[dimension];
    if (limit === null || need[dimension] <= 0n) continue;
    const room = limit - counters[dimension].committed - counters[dimension].reserved;
    if (need[dimension] <= room) continue;
    if (!request.partial || dimension === 'run_tokens') return { status: 'deny', dimension, reason: 'insufficient' };
    if (room < granted) {
      granted = room;
      tightest = dimension;
    }
  }
  if (tightest !== null && granted <= 0n) return { status: 'deny', dimension: tightest, reason: 'insufficient' };
  if (granted < request.money) return { status: 'partial', tokens: request.tokens, money: granted };
  return { status: 'allow', tokens: request.tokens, money: request.money };
}

export function dimensionLimits(limits: EffectiveLimits): DimensionLimits {
  return {
    run_tokens: limits.runTokens.value,
    run_cost: limits.runCost.value,
    run_external: limits.runExternal.value,
    tenant_cost: limits.tenantDailyCost.value,
  };
}

export function limitOf(limits: EffectiveLimits, dimension: Dimension | 'run_wall_time'): Limit {
  switch (dimension) {
    case 'run_tokens':
      return limits.runTokens;
    case 'run_cost':
      return limits.runCost;
    case 'run_external':
      return limits.runExternal;
    case 'tenant_cost':
      return limits.tenantDailyCost;
    case 'run_wall_time':
      return limits.runWallTimeS;
  }
}

/** The state of one cap, as every decision explains it. */
export interface ScopeState {
  dimension: Dimension;
  scope: CapScope;
  cap: CapName;
  limit: bigint | null;
  spent: bigint;
  reserved: bigint;
  /** limit - spent - reserved, never below zero; null without a cap. */
  remaining: bigint | null;
  /** Tenant scope: when the day's budget resets; run scope: never (null). */
  resetsAt: Date | null;
  override: CapOverride | null;
}

export function explainScopes(counters: Counters, limits: EffectiveLimits, tenantResetsAt: Date): ScopeState[] {
  return DIMENSIONS.map((dimension) => {
    const limit = limitOf(limits, dimension);
    const { committed, reserved } = counters[dimension];
    const remaining = limit.value === null ? null : max0(limit.value - committed - reserved);
    return {
      dimension,
      ...DIMENSION_CAPS[dimension],
      limit: limit.value,
      spent: committed,
      reserved,
      remaining,
      resetsAt: dimension === 'tenant_cost' ? tenantResetsAt : null,
      override: limit.override,
    };
  });
}

function max0(value: bigint): bigint {
  return value < 0n ? 0n : value;
}
