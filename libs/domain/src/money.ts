/**
 * Money is an integer number of micro-USD (1 USD = 1_000_000 micros) held in a bigint.
 * On the wire it is a decimal string ("0.012345"); floats never touch an amount.
 */
export type Micros = bigint;

const MICROS_PER_USD = 1_000_000n;

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

export class InvalidMoneyError extends Error {
  readonly code = 'INVALID_MONEY';
}

/** Parses a decimal USD string; digits beyond the sixth decimal are rounded half away from zero. */
export function parseUsd(value: string): Micros {
  const match = DECIMAL.exec(value.trim());
  if (!match) throw new InvalidMoneyError(`not a decimal amount: "${value}"`);
  const [, sign, whole = '0', fraction = ''] = match;
  const kept = fraction.slice(0, 6).padEnd(6, '0');
  let micros = BigInt(whole) * MICROS_PER_USD + BigInt(kept);
  const next = fraction.charCodeAt(6);
  if (next >= 53 /* '5' */ && next <= 57) micros += 1n;
  return sign ? -micros : micros;
}

/**
 * Parses a decimal USD string rounding up (toward +infinity) to the micro-dollar: what an estimate holds, so a
 * positive estimate never holds 0 and a held amount is never below the one asked.
 */
export function parseUsdUp(value: string): Micros {
  const match = DECIMAL.exec(value.trim());
  if (!match) throw new InvalidMoneyError(`not a decimal amount: "${value}"`);
  const [, sign, whole = '0', fraction = ''] = match;
  const micros = BigInt(whole) * MICROS_PER_USD + BigInt(fraction.slice(0, 6).padEnd(6, '0'));
  if (sign) return -micros; // toward +infinity: a negative amount's extra digits are dropped
  return /[1-9]/.test(fraction.slice(6)) ? micros + 1n : micros;
}

/** Formats micros as a decimal USD string with exactly six decimals. */
export function formatUsd(micros: Micros): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const whole = abs / MICROS_PER_USD;
  const fraction = (abs % MICROS_PER_USD).toString().padStart(6, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/** Cost of `tokens` at `microsPerMillion` micro-USD per 1M tokens, rounded half up to whole micros. */
export function tokenCost(tokens: bigint, microsPerMillion: bigint): Micros {
  return (tokens * microsPerMillion + 500_000n) / 1_000_000n;
}
