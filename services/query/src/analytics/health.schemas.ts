import { z } from 'zod';
import { Id, Interval, Period } from '../http/validation';

const Day = z.iso.date();

/** The health routes read raw calls: at most QUERY_MAX_RANGE_DAYS (docs/query.md "Health analytics"). */
export const HealthQuery = z.object({
  period: Period.optional().describe('default 30d; at most QUERY_MAX_RANGE_DAYS (90d); not with from/to'),
  from: Day.optional().describe('first UTC day included (YYYY-MM-DD); default 29 days before to'),
  to: Day.optional().describe('last UTC day included (YYYY-MM-DD); default today'),
  tenant_id: Id.optional().describe('Admin only: one tenant'),
});
export type HealthQuery = z.output<typeof HealthQuery>;

export const ErrorRatesQuery = HealthQuery.extend({
  interval: Interval.default('day'),
});
export type ErrorRatesQuery = z.output<typeof ErrorRatesQuery>;

const PeriodOut = z.object({ from_day: z.string(), to_day: z.string(), days: z.number() });
const rate = z.number().nullable();

export const ToolCallHoursAnswer = z.object({
  period: PeriodOut,
  tenant_id: z.string().nullable().describe('null: every tenant'),
  time_zone: z.literal('UTC'),
  rows: z
    .array(
      z.object({
        day_of_week: z.number().int().min(1).max(7).describe('ISO: 1 Monday … 7 Sunday (UTC)'),
        hour: z.number().int().min(0).max(23).describe('hour of the day (UTC)'),
        calls: z.number(),
        failures: z.number(),
        error_rate: rate,
      }),
    )
    .describe('cells with at least one call'),
  totals: z.object({ calls: z.number(), failures: z.number(), error_rate: rate }),
});
export type ToolCallHoursAnswer = z.output<typeof ToolCallHoursAnswer>;

export const McpHealthAnswer = z.object({
  period: PeriodOut,
  tenant_id: z.string().nullable(),
  rows: z
    .array(
      z.object({
        server: z.string(),
        hour: z.string().describe('start of the UTC hour (ISO 8601)'),
        calls: z.number(),
        failures: z.number(),
        error_rate: rate,
        state: z.enum(['up', 'degraded', 'down']).describe('up: no call failed; down: every call failed'),
      }),
    )
    .describe('per MCP server and hour with calls'),
  servers: z.array(
    z.object({
      server: z.string(),
      calls: z.number(),
      failures: z.number(),
      error_rate: rate,
      breaker_openings: z.number(),
    }),
  ),
});
export type McpHealthAnswer = z.output<typeof McpHealthAnswer>;

export const BreakerEventsAnswer = z.object({
  period: PeriodOut,
  tenant_id: z.string().nullable(),
  default_consecutive_errors: z.number().describe("the breaker rule's default streak (a tenant may set its own)"),
  rows: z.array(
    z.object({
      tenant_id: z.string(),
      server: z.string(),
      opened_at: z.string().describe('the call completing the streak of failed calls'),
      closed_at: z.string().nullable().describe('the next successful call; null: still open at the end'),
      open_ms: z.number().nullable(),
      failures: z.number().describe('failed calls in the streak'),
    }),
  ),
});
export type BreakerEventsAnswer = z.output<typeof BreakerEventsAnswer>;

export const ErrorRatesAnswer = z.object({
  period: PeriodOut,
  tenant_id: z.string().nullable(),
  interval: Interval,
  rows: z
    .array(
      z.object({
        bucket: z.string().describe('first UTC day of the bucket'),
        tool_calls: z.number(),
        tool_failures: z.number(),
        tool_error_rate: rate,
        webhook_attempts: z.number().describe('webhook delivery attempts'),
        webhook_failures: z.number().describe('attempts that failed (retried or given up)'),
        webhook_failure_rate: rate,
      }),
    )
    .describe('every bucket of the period, oldest first'),
  totals: z.object({
    tool_calls: z.number(),
    tool_failures: z.number(),
    tool_error_rate: rate,
    webhook_attempts: z.number(),
    webhook_failures: z.number(),
    webhook_failure_rate: rate,
  }),
});
export type ErrorRatesAnswer = z.output<typeof ErrorRatesAnswer>;
