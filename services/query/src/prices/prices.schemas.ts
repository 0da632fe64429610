import { z } from 'zod';
import { Id, Limit, Time } from '../http/validation';

const reason = z.string().trim().min(1).max(2_000).describe('required: recorded in the audit log');

/** A rate: decimal USD per 1M tokens, at most 6 decimals (whole micro-USD), never negative. */
const Rate = z
  .string()
  .superRefine((value, ctx) => {
    if (value.trim().startsWith('-')) ctx.addIssue({ code: 'custom', message: 'a rate must not be negative' });
    else if (!/^\d{1,9}(\.\d{1,6})?$/.test(value))
      ctx.addIssue({
        code: 'custom',
        message: 'a decimal USD amount per 1M tokens such as "2.50" (6 decimals at most)',
      });
  })
  .describe('USD per 1M tokens, a decimal string such as "2.50"');

export const PriceBody = z.object({
  provider: Id.describe('as producers report it (openai, anthropic, google, azure, ...); matched exactly'),
  model: Id.describe('as producers report it; matched exactly (no aliases, no case folding)'),
  tenant_id: Id.optional().describe(
    "a tenant's override (beats every list price while in effect); absent: the list price",
  ),
  effective_from: Time.optional().describe(
    'when the price starts applying: now (the default) or later; a time in the past is refused (reprice instead)',
  ),
  input_usd_per_million: Rate,
  output_usd_per_million: Rate,
  cached_input_usd_per_million: Rate.optional().describe('absent: cached prompt tokens cost the input rate'),
  reasoning_usd_per_million: Rate.optional().describe('absent: reasoning tokens cost the output rate'),
  note: z.string().trim().min(1).max(500).optional().describe('where the price comes from'),
  reason,
});
export type PriceBody = z.output<typeof PriceBody>;

export const RetireBody = z.object({ reason });
export type RetireBody = z.output<typeof RetireBody>;

export const PriceStatuses = ['current', 'scheduled', 'superseded', 'retired'] as const;

export const PriceQuery = z.object({
  provider: Id.optional(),
  model: Id.optional(),
  tenant_id: Id.optional().describe("one tenant's overrides only"),
  history: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: superseded and retired prices too (default: current and scheduled only)'),
  limit: Limit.optional(),
});
export type PriceQuery = z.output<typeof PriceQuery>;

export const Price = z.object({
  id: z.string(),
  provider: z.string(),
  model: z.string(),
  tenant_id: z.string().nullable().describe("null: the list price; else the tenant's override"),
  effective_from: z.string(),
  retired_at: z.string().nullable(),
  status: z.enum(PriceStatuses),
  input_usd_per_million: z.string(),
  cached_input_usd_per_million: z.string().nullable(),
  output_usd_per_million: z.string(),
  reasoning_usd_per_million: z.string().nullable(),
  note: z.string().nullable(),
  created_at: z.string(),
});
export type Price = z.output<typeof Price>;

export const PriceList = z.object({ items: z.array(Price), limit: z.number() });
export type PriceList = z.output<typeof PriceList>;

export const PriceChange = z.object({ audit_id: z.string(), price: Price });
export type PriceChange = z.output<typeof PriceChange>;

export const RepriceBody = z.object({
  from: Time.describe('calls with from <= time < to'),
  to: Time,
  model: Id.optional().describe('only this model (any provider)'),
  tenant_id: Id.optional().describe('only this tenant'),
  reason,
});
export type RepriceBody = z.output<typeof RepriceBody>;

export const RepriceStatus = z.object({
  id: z.string().describe('the audit_log id of the request'),
  status: z.enum(['requested', 'succeeded', 'failed']).describe('requested: queued or running'),
  requested_at: z.string(),
  finished_at: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  model: z.string().nullable(),
  tenant_id: z.string().nullable(),
  detail: z.string().nullable(),
  result: z
    .object({
      reprice_audit_id: z.string(),
      calls_considered: z.number(),
      calls_affected: z.number(),
      old_total_usd: z.string(),
      new_total_usd: z.string(),
      old_unpriced_calls: z.number(),
      new_unpriced_calls: z.number(),
    })
    .nullable(),
});
export type RepriceStatus = z.output<typeof RepriceStatus>;

export const RepriceQuery = z.object({
  id: z
    .string()
    .regex(/^[1-9]\d{0,17}$/, 'a reprice request id')
    .optional()
    .describe('one request (the id POST /admin/reprices answered)'),
  limit: Limit.optional(),
});
export type RepriceQuery = z.output<typeof RepriceQuery>;

export const RepriceList = z.object({ items: z.array(RepriceStatus), limit: z.number() });
export type RepriceList = z.output<typeof RepriceList>;
