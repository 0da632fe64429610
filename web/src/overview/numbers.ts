/**
 * A decimal USD string as a float, only to size a bar or place a point on a line: the numbers shown are
 * always the server's exact strings (format.ts usd).
 */
export function usdNumber(value: string | null | undefined): number {
  return value ? Number(value) : 0;
}
