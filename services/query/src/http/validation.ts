import { z } from 'zod';
import { parseOrThrow, ValidQuery as StrictQuery } from '@agentmeter/http';

export { openApiSchema, parseOrThrow, ValidBody } from '@agentmeter/http';

/** Every query accepts `format=csv|json` (CSV export, see csv.interceptor.ts). */
const FORMAT = { format: z.enum(['json', 'csv']).optional() };

/**
 * The request's query string, validated by a zod object schema (unknown parameters are refused), and
 * documented in OpenAPI from the same schema; `format` is accepted everywhere.
 */
export function ValidQuery<T extends z.ZodObject>(schema: T) {
  return StrictQuery(schema, FORMAT);
}

// Shared parameter shapes ------------------------------------------------------------------------------

/** Identifiers in paths and filters: printable, bounded; anything else is refused before any SQL. */
export const Id = z
  .string()
  .min(1)
  .max(200)
  .refine((value) => ![...value].some((c) => c.charCodeAt(0) < 0x20), 'control characters are not allowed');

export const Limit = z.coerce.number().int().min(1).max(10_000).describe('page size (capped by QUERY_MAX_PAGE_SIZE)');
export const Cursor = z.string().max(1_000).describe('opaque cursor from the previous page');
export const Time = z.iso.datetime({ offset: true });
export const Period = z
  .string()
  .regex(/^[1-9]\d{0,3}d$/, 'a number of days such as 30d')
  .describe('whole UTC days ending today, e.g. 7d or 30d');
export const Interval = z.enum(['day', 'week', 'month']).describe('split the answer into time buckets');

export function parseId(value: string, name = 'id'): string {
  return parseOrThrow(Id.describe(name), value);
}
