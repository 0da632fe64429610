import { createHash } from 'node:crypto';
import type { ReserveRequest, ReserveResponse, ScopeState as WireScope } from '@agentmeter/contracts';
import {
  type CapOverride,
  type Counters,
  explainScopes,
  formatUsd,
  type Limit,
  type ScopeState,
} from '@agentmeter/domain';
import type { CapContext } from '../caps/limits.service';
import { formatCapValue } from '../crossings/crossings.service';
import type { ReservationRow } from '../ledger/ledger.repository';

/** How an admission answer explains the caps (pure: shared by reserve and commit answers). */

export type DenyReason = NonNullable<ReserveResponse['denied_by']>['reason'];

/** Every cap of the run and the tenant-day, wire-formatted; the wall-time cap last. */
export function wireScopes(counters: Counters, stopped: boolean, context: CapContext, now: Date): WireScope[] {
  const states = explainScopes(counters, context.limits, context.resetsAt).map(wireScope);
  const wall = context.limits.runWallTimeS;
  const startedAt = context.run?.startedAt ?? null;
  const elapsed = startedAt ? BigInt(Math.max(0, Math.floor((now.getTime() - startedAt.getTime()) / 1000))) : 0n;
  const spent = stopped && wall.value !== null && elapsed < wall.value ? wall.value : elapsed;
  states.push({
    scope: 'run',
    cap: 'wall_time',
    limit: wall.value?.toString() ?? null,
    spent: spent.toString(),
    reserved: '0',
    remaining: wall.value === null ? null : (wall.value > spent ? wall.value - spent : 0n).toString(),
    resets_at: null,
    override: overrideWire('wall_time', wall),
  });
  return states;
}

/** Its hold still counts: open, or expired without its spend known yet. */
export function unsettled(row: ReservationRow): boolean {
  return row.status === 'open' || row.status === 'expired';
}

/**
 * Fingerprint of a reserve request (all of its body but the key itself, keys sorted): a key repeated with
 * another body is a 409, not a replay.
 */
export function requestHash(request: ReserveRequest): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([key, field]) => key !== 'idempotency_key' && field !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, field]) => [key, canonical(field)]),
    );
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(request)))
    .digest('hex');
}

export const none = {
  reservation_id: null,
  expires_at: null,
  reserved: { cost_usd: '0.000000', tokens: '0' },
  partial: null,
};

/** An operator switch as a cap of zero: nothing passes until it is turned off (it never resets by itself). */
export function switchScope(scope: WireScope['scope'], cap: WireScope['cap']): WireScope {
  return { scope, cap, limit: '0', spent: '0', reserved: '0', remaining: '0', resets_at: null, override: null };
}

export function denyDetail(state: WireScope, reason: DenyReason, asked: bigint): string {
  const cap = `${state.scope} ${state.cap} cap${state.limit === null ? '' : ` of ${state.limit}`}`;
  const resets = state.resets_at ? `; it resets at ${state.resets_at}` : '; it does not reset';
  const raised = state.override ? ` (raised by ${state.override.actor} until ${state.override.expires_at})` : '';
  if (reason === 'stopped') return `the run reached its wall-time cap${raised} and was stopped`;
  if (reason === 'cap_reached') return `the ${cap}${raised} is reached: ${state.spent} spent${resets}`;
  return `the ${cap}${raised} has ${state.remaining} left (${state.spent} spent, ${state.reserved} reserved), less than the ${formatUsd(asked)} USD asked${resets}`;
}

function wireScope(state: ScopeState): WireScope {
  const value = (amount: bigint | null) => (amount === null ? null : formatCapValue(state.cap, amount));
  return {
    scope: state.scope,
    cap: state.cap,
    limit: value(state.limit),
    spent: value(state.spent)!,
    reserved: value(state.reserved)!,
    remaining: value(state.remaining),
    resets_at: state.resetsAt?.toISOString() ?? null,
    override: state.override ? overrideOf(state.cap, state.override) : null,
  };
}

function overrideWire(cap: 'wall_time', limit: Limit): WireScope['override'] {
  return limit.override ? overrideOf(cap, limit.override) : null;
}

function overrideOf(
  cap: Parameters<typeof formatCapValue>[0],
  override: CapOverride,
): NonNullable<WireScope['override']> {
  return {
    override_id: override.id,
    limit: formatCapValue(cap, override.value),
    expires_at: override.expiresAt.toISOString(),
    actor: override.actor,
    reason: override.reason,
  };
}

export function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
