import {
  alertKey,
  decideAlert,
  lifecyclePolicyOf,
  thresholdFingerprint,
  type AlertDecision,
  type AlertState,
} from './alert-lifecycle';

const now = new Date('2026-11-25T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const firing = (lastNotifiedMinutesAgo: number | null, fp = 'fp1'): AlertState => ({
  status: 'firing',
  thresholdFingerprint: fp,
  lastNotifiedAt: lastNotifiedMinutesAgo === null ? null : minutesAgo(lastNotifiedMinutesAgo),
});
const resolved: AlertState = { status: 'resolved', thresholdFingerprint: 'fp1', lastNotifiedAt: minutesAgo(10) };
const every4h = { repeatIntervalMs: 240 * 60_000, notifyResolved: true };
const never = { repeatIntervalMs: null, notifyResolved: false };

describe('decideAlert', () => {
  it.each<[string, AlertState | null, boolean, string, typeof every4h | typeof never, AlertDecision]>([
    ['first firing fires', null, true, 'fp1', every4h, { action: 'notify', kind: 'firing', reason: 'new' }],
    ['not firing and never fired: nothing', null, false, 'fp1', every4h, { action: 'none' }],
    ['still firing within the repeat interval: once only', firing(10), true, 'fp1', every4h, { action: 'none' }],
    ['still firing just before the interval', firing(239), true, 'fp1', every4h, { action: 'none' }],
    [
      'still firing at the interval: repeat',
      firing(240),
      true,
      'fp1',
      every4h,
      { action: 'notify', kind: 'repeat', reason: 'repeat' },
    ],
    ['no repeat interval: never again', firing(100_000), true, 'fp1', never, { action: 'none' }],
    [
      'threshold changed while firing: re-armed',
      firing(1, 'fp0'),
      true,
      'fp1',
      every4h,
      { action: 'notify', kind: 'firing', reason: 'threshold_changed' },
    ],
    ['stops firing: resolves with a message', firing(1), false, 'fp1', every4h, { action: 'resolve', notify: true }],
    ['stops firing: resolves quietly', firing(1), false, 'fp1', never, { action: 'resolve', notify: false }],
    ['resolved stays resolved', resolved, false, 'fp1', every4h, { action: 'none' }],
    [
      'fires again after resolving: re-armed',
      resolved,
      true,
      'fp1',
      every4h,
      { action: 'notify', kind: 'firing', reason: 'rearmed' },
    ],
  ])('%s', (_name, state, isFiring, fp, policy, expected) => {
    expect(decideAlert(state, { firing: isFiring, thresholdFingerprint: fp }, policy, now)).toEqual(expected);
  });
});

describe('alert keys and fingerprints', () => {
  it('keys differ by every part, and a new period is a new key', () => {
    const base = { rule: 'usage.daily_tokens', tenantId: 't', scope: '', period: '2026-11-25' };
    const keys = new Set([
      alertKey(base),
      alertKey({ ...base, period: '2026-11-26' }),
      alertKey({ ...base, tenantId: 'u' }),
      alertKey({ ...base, scope: 'x' }),
      alertKey({ ...base, rule: 'usage.tool_error_rate' }),
    ]);
    expect(keys.size).toBe(5);
  });

  it('fingerprints thresholds regardless of key order, ignoring lifecycle parameters', () => {
    const a = thresholdFingerprint({ tokens: 10, repeat_interval_minutes: 240, notify_resolved: true });
    expect(thresholdFingerprint({ notify_resolved: false, tokens: 10, repeat_interval_minutes: null })).toBe(a);
    expect(thresholdFingerprint({ tokens: 11, repeat_interval_minutes: 240, notify_resolved: true })).not.toBe(a);
  });

  it('turns parameters into a policy', () => {
    expect(lifecyclePolicyOf({ repeat_interval_minutes: 5, notify_resolved: true })).toEqual({
      repeatIntervalMs: 300_000,
      notifyResolved: true,
    });
    expect(lifecyclePolicyOf({ repeat_interval_minutes: null, notify_resolved: false }).repeatIntervalMs).toBeNull();
  });
});
