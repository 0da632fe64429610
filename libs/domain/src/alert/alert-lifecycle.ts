import { createHash } from 'node:crypto';

/**
 * The alert lifecycle (docs/alert.md "Lifecycle"), as a pure decision over the stored state of one alert and
 * a new observation of its condition.
 *
 * An alert is identified by (rule, tenant, scope, period). It fires once; while it keeps firing it is sent
 * again only after the repeat interval; when the condition stops it resolves (optionally with a "resolved"
 * message); after that the next firing is a new notification (it re-armed). A new period is a new key, so
 * it fires anew; a changed threshold while firing re-arms it in place (it is sent again, with the new
 * threshold). The caller holds a row lock on the alert while it decides and writes, so concurrent
 * observers (replicas, retries) see each other's writes and only one of them notifies.
 */

export type AlertStatus = 'firing' | 'resolved';

export interface AlertState {
  status: AlertStatus;
  /** Fingerprint of the thresholds in force when it last fired. */
  thresholdFingerprint: string;
  /** When a notification (or a muted one) was last recorded for it; null when never. */
  lastNotifiedAt: Date | null;
}

export interface AlertObservation {
  firing: boolean;
  thresholdFingerprint: string;
}

export interface LifecyclePolicy {
  /** null: never repeat. */
  repeatIntervalMs: number | null;
  notifyResolved: boolean;
}

export type NotificationKind = 'firing' | 'repeat' | 'resolved';

export type AlertDecision =
  /** Nothing changes (besides "last observed"). */
  | { action: 'none' }
  /** Becomes (or stays) firing and a notification of this kind is due. */
  | { action: 'notify'; kind: 'firing' | 'repeat'; reason: 'new' | 'rearmed' | 'threshold_changed' | 'repeat' }
  /** Becomes resolved; a "resolved" notification is due when `notify`. */
  | { action: 'resolve'; notify: boolean };

export function decideAlert(
  state: AlertState | null,
  observation: AlertObservation,
  policy: LifecyclePolicy,
  now: Date,
): AlertDecision {
  if (!observation.firing) {
    if (state?.status !== 'firing') return { action: 'none' };
    return { action: 'resolve', notify: policy.notifyResolved };
  }
  if (state === null) return { action: 'notify', kind: 'firing', reason: 'new' };
  if (state.status === 'resolved') return { action: 'notify', kind: 'firing', reason: 'rearmed' };
  if (state.thresholdFingerprint !== observation.thresholdFingerprint) {
    return { action: 'notify', kind: 'firing', reason: 'threshold_changed' };
  }
  if (
    policy.repeatIntervalMs !== null &&
    state.lastNotifiedAt !== null &&
    now.getTime() - state.lastNotifiedAt.getTime() >= policy.repeatIntervalMs
  ) {
    return { action: 'notify', kind: 'repeat', reason: 'repeat' };
  }
  return { action: 'none' };
}

export interface AlertKeyParts {
  rule: string;
  tenantId: string;
  scope: string;
  period: string;
}

/** The stored key of an alert. Parts are joined by a character that ids cannot contain. */
export function alertKey(parts: AlertKeyParts): string {
  return [parts.rule, parts.tenantId, parts.scope, parts.period].join('\u001f');
}

/** Lifecycle parameters are not thresholds: changing them does not re-arm an alert. */
const LIFECYCLE_PARAMS = new Set(['repeat_interval_minutes', 'notify_resolved']);

/** A short stable fingerprint of the threshold parameters (key order does not matter). */
export function thresholdFingerprint(params: Record<string, unknown>): string {
  const kept = Object.keys(params)
    .filter((key) => !LIFECYCLE_PARAMS.has(key))
    .sort()
    .map((key) => [key, params[key]]);
  return createHash('sha256').update(JSON.stringify(kept)).digest('hex').slice(0, 16);
}

export function lifecyclePolicyOf(params: {
  repeat_interval_minutes: number | null;
  notify_resolved: boolean;
}): LifecyclePolicy {
  return {
    repeatIntervalMs: params.repeat_interval_minutes === null ? null : params.repeat_interval_minutes * 60_000,
    notifyResolved: params.notify_resolved,
  };
}
