/**
 * The tenant's calendar day (docs/cost-cap.md "Caps and decisions": the daily $ cap counts the tenant's day in its configured time
 * zone, UTC by default). A day is written "YYYY-MM-DD"; it starts at the first instant whose local date is
 * that day, which is local midnight except on the few days where a DST jump skips midnight.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** True when the runtime knows the IANA zone name (validation of tenant settings). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The local date of an instant in a zone, as "YYYY-MM-DD". */
export function tenantDay(at: Date, timeZone: string): string {
  // Every zone's offset is a whole number of minutes since the 1970s, so a day never changes within a
  // minute: the answer is kept per zone and minute (admission asks for every request).
  const minute = Math.floor(at.getTime() / 60_000);
  const key = `${timeZone}\u0000${minute}`;
  const known = dayByMinute.get(key);
  if (known !== undefined) return known;
  const parts = localParts(at, timeZone);
  const day = `${parts.year}-${pad(parts.month)}-${pad(parts.day)}`;
  remember(dayByMinute, key, day);
  return day;
}

/** The first instant of a local day in a zone. */
export function dayStart(day: string, timeZone: string): Date {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  const wallMidnight = Date.UTC(year, month - 1, date);
  // Local midnight is wallMidnight - offset, with the offset in force at that instant. Two rounds settle
  // it (the first guess may sit on the other side of a DST change).
  let guess = wallMidnight - offsetMs(new Date(wallMidnight), timeZone);
  guess = wallMidnight - offsetMs(new Date(guess), timeZone);
  // Where a DST jump skips midnight the guess lands before the day (still the previous date): the day
  // then starts at the jump, found by stepping forward by the minute (jumps are whole minutes).
  let start = guess;
  while (tenantDay(new Date(start), timeZone) < day) start += 60_000;
  // Where the clock goes back over midnight, an earlier instant may also carry this date.
  while (tenantDay(new Date(start - 60_000), timeZone) === day) start -= 60_000;
  return new Date(start);
}

/** When the budget of a tenant-day resets: the start of the next local day. */
export function nextDayStart(day: string, timeZone: string): Date {
  const key = `${timeZone}\u0000${day}`;
  const known = nextStartByDay.get(key);
  if (known !== undefined) return new Date(known);
  const start = dayStart(addDays(day, 1), timeZone);
  remember(nextStartByDay, key, start.getTime());
  return start;
}

const CACHE_LIMIT = 10_000;
const dayByMinute = new Map<string, string>();
const nextStartByDay = new Map<string, number>();

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
}

/** Adds days to a "YYYY-MM-DD" date (calendar arithmetic, no zone). */
export function addDays(day: string, days: number): string {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(year, month - 1, date + days)).toISOString().slice(0, 10);
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function localParts(at: Date, timeZone: string): LocalParts {
  const values: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(at)) {
    if (part.type !== 'literal') values[part.type] = Number(part.value);
  }
  return values as unknown as LocalParts;
}

/** Local wall time minus UTC at an instant, in ms (whole seconds). */
function offsetMs(at: Date, timeZone: string): number {
  const p = localParts(at, timeZone);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(at.getTime() / 1000) * 1000;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}
