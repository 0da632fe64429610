import { clockMinutes, localWeekMinute, muteVerdict, type AlertMute, type AlertMuteTiming } from './alert-mute';

const mute = (rule: string | null, from: string, to: string): AlertMute => ({
  id: 'm1',
  rule,
  startsAt: new Date(from),
  endsAt: new Date(to),
});
const weekends: AlertMuteTiming = {
  id: 't1',
  name: 'weekends',
  rule: null,
  weekdays: [0, 6],
  startMinute: 0,
  endMinute: 1440,
  timeZone: 'UTC',
};
const parisNights: AlertMuteTiming = {
  ...weekends,
  name: 'paris-nights',
  weekdays: [1, 2, 3, 4, 5],
  startMinute: clockMinutes('22:00'),
  endMinute: clockMinutes('24:00'),
  timeZone: 'Europe/Paris',
};

describe('muteVerdict', () => {
  const monday = '2026-11-23T10:00:00Z';
  it.each<[string, string, 'owner' | 'admin', string, AlertMute[], AlertMuteTiming[], boolean]>([
    ['no mutes', 'owner.cap_hit', 'owner', monday, [], [], false],
    [
      'a tenant-wide mute silences owner rules',
      'owner.cap_hit',
      'owner',
      monday,
      [mute(null, '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z')],
      [],
      true,
    ],
    [
      'a tenant-wide mute never silences admin rules',
      'admin.tenant_cap_breach',
      'admin',
      monday,
      [mute(null, '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z')],
      [],
      false,
    ],
    [
      'an admin rule is muted when named',
      'admin.tenant_cap_breach',
      'admin',
      monday,
      [mute('admin.tenant_cap_breach', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z')],
      [],
      true,
    ],
    [
      'a mute of another rule',
      'owner.cap_hit',
      'owner',
      monday,
      [mute('owner.proof_overdue', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z')],
      [],
      false,
    ],
    [
      'starts_at is inclusive',
      'owner.cap_hit',
      'owner',
      monday,
      [mute(null, monday, '2026-11-24T00:00:00Z')],
      [],
      true,
    ],
    [
      'ends_at is exclusive (expired)',
      'owner.cap_hit',
      'owner',
      monday,
      [mute(null, '2026-11-22T00:00:00Z', monday)],
      [],
      false,
    ],
    [
      'not started yet',
      'owner.cap_hit',
      'owner',
      monday,
      [mute(null, '2026-11-23T11:00:00Z', '2026-11-24T00:00:00Z')],
      [],
      false,
    ],
    ['weekend timing on a Saturday', 'owner.cap_hit', 'owner', '2026-11-28T09:00:00Z', [], [weekends], true],
    ['weekend timing on Sunday 23:59', 'owner.cap_hit', 'owner', '2026-11-29T23:59:00Z', [], [weekends], true],
    ['weekend timing on a Monday', 'owner.cap_hit', 'owner', monday, [], [weekends], false],
    [
      'Paris 22:00-24:00 at 21:30 UTC (22:30 local)',
      'owner.cap_hit',
      'owner',
      '2026-11-23T21:30:00Z',
      [],
      [parisNights],
      true,
    ],
    [
      'Paris 22:00-24:00 at 20:30 UTC (21:30 local)',
      'owner.cap_hit',
      'owner',
      '2026-11-23T20:30:00Z',
      [],
      [parisNights],
      false,
    ],
    [
      'Paris weekday timing on Saturday 00:30 local (Friday UTC)',
      'owner.cap_hit',
      'owner',
      '2026-11-27T23:30:00Z',
      [],
      [parisNights],
      false,
    ],
  ])('%s', (_name, rule, audience, at, mutes, timings, muted) => {
    expect(muteVerdict(rule, audience, new Date(at), mutes, timings).muted).toBe(muted);
  });

  it('names what muted it', () => {
    expect(muteVerdict('owner.cap_hit', 'owner', new Date('2026-11-28T09:00:00Z'), [], [weekends])).toEqual({
      muted: true,
      by: 'timing:weekends',
    });
  });

  it('reads local weekday and minute across a daylight-saving change', () => {
    expect(localWeekMinute(new Date('2026-03-29T00:30:00Z'), 'Europe/Paris')).toEqual({ weekday: 0, minute: 90 });
    expect(localWeekMinute(new Date('2026-03-29T01:30:00Z'), 'Europe/Paris')).toEqual({ weekday: 0, minute: 210 });
  });
});
