/**
 * The price and reprice forms take times in UTC (the Admin pages span tenants, docs/console.md): a
 * `datetime-local` value read as UTC, and back.
 */
export function utcInput(value: string): string | undefined {
  if (!value) return undefined;
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value) ? `${value}:00Z` : `${value}Z`;
}

/** A `datetime-local` value (minutes) of a time, in UTC. */
export function utcLocalValue(date: Date): string {
  return date.toISOString().slice(0, 16);
}

/** Midnight UTC of the day `days` after today's. */
export function utcMidnight(days: number, now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + days));
}
