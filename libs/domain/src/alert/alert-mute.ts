/**
 * Muting (docs/alert.md "Grouping, muting, routing": tenant mutes and mute timings). A muted alert is still
 * recorded; only its delivery is suppressed.
 *
 * - A mute silences one tenant from starts_at until ends_at, for one rule or, when it names none, for every
 *   rule whose audience is the tenant's Owners (an Owner-facing mute never silences Admin alerts; an Admin
 *   rule is muted only by a mute that names it).
 * - A mute timing is recurring: on the listed weekdays, between start and end local time in its zone
 *   (e.g. Saturday and Sunday 00:00 to 24:00, UTC).
 */

export interface AlertMute {
  id: string;
  rule: string | null;
  startsAt: Date;
  endsAt: Date;
}

export interface AlertMuteTiming {
  id: string;
  name: string;
  rule: string | null;
  /** 0 = Sunday ... 6 = Saturday. */
  weekdays: number[];
  /** Minutes after local midnight, start inclusive, end exclusive; 0..1440. */
  startMinute: number;
  endMinute: number;
  timeZone: string;
}

export type MuteVerdict = { muted: false } | { muted: true; by: string };

export function muteVerdict(
  rule: string,
  audience: 'owner' | 'admin',
  now: Date,
  mutes: readonly AlertMute[],
  timings: readonly AlertMuteTiming[],
): MuteVerdict {
  const applies = (muteRule: string | null) => muteRule === rule || (muteRule === null && audience === 'owner');
  for (const mute of mutes) {
    if (!applies(mute.rule)) continue;
    if (mute.startsAt.getTime() <= now.getTime() && now.getTime() < mute.endsAt.getTime()) {
      return { muted: true, by: `mute:${mute.id}` };
    }
  }
  for (const timing of timings) {
    if (!applies(timing.rule)) continue;
    const local = localWeekMinute(now, timing.timeZone);
    if (
      timing.weekdays.includes(local.weekday) &&
      timing.startMinute <= local.minute &&
      local.minute < timing.endMinute
    ) {
      return { muted: true, by: `timing:${timing.name}` };
    }
  }
  return { muted: false };
}

const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The weekday (0 = Sunday) and minute of the day of an instant in a time zone. */
export function localWeekMinute(at: Date, timeZone: string): { weekday: number; minute: number } {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((part) => [part.type, part.value]));
  return {
    weekday: WEEKDAY_INDEX[parts.weekday ?? ''] ?? 0,
    minute: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

/** "HH:MM" to minutes after midnight ("24:00" is 1440). */
export function clockMinutes(clock: string): number {
  const [hours, minutes] = clock.split(':').map(Number);
  return (hours ?? 0) * 60 + (minutes ?? 0);
}
