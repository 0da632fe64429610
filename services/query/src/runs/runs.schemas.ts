import { z } from 'zod';
import { EVENT_TYPES } from '@agentmeter/contracts';
import { Cursor, Id, Limit, Time } from '../http/validation';

/** Query parameters and answers of GET /runs and GET /runs/{run_id}/events (OpenAPI is generated from these). */

export const RunStatus = z.enum(['unknown', 'running', 'succeeded', 'failed']);

export const RunsQuery = z.object({
  tenant_id: Id.optional().describe('Admin and Support only: one tenant (others: must be their own or absent)'),
  project_id: Id.optional(),
  status: RunStatus.optional(),
  phase: Id.optional().describe("the run's current phase"),
  model: Id.optional().describe("the run's model (the latest model it called)"),
  from: Time.optional().describe('runs whose first event is at or after this time (default: to - 30 days)'),
  to: Time.optional().describe('runs whose first event is before this time (default: now)'),
  limit: Limit.optional(),
  cursor: Cursor.optional(),
});
export type RunsQuery = z.output<typeof RunsQuery>;

const usd = z.string().describe('decimal USD, exact to the micro-dollar');

export const RunSummary = z.object({
  run_id: z.string(),
  tenant_id: z.string(),
  project_id: z.string(),
  playbook: z.string().nullable(),
  status: RunStatus,
  phase: z.string().nullable(),
  role: z.string().nullable(),
  model: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  first_event_at: z.string(),
  last_event_at: z.string(),
  duration_ms: z.number().nullable().describe('finished_at - started_at; null while running'),
  prompt_tokens: z.number().optional().describe('absent when the tenant shows Owners only $ and time'),
  completion_tokens: z.number().optional(),
  total_tokens: z.number().optional(),
  cost_usd: usd.optional().describe('absent for Support (docs/security.md "Field policy")'),
  external_cost_usd: usd.optional(),
  llm_calls: z.number(),
  cached: z.boolean(),
  interventions: z.number(),
  error: z.string().nullable(),
});
export type RunSummary = z.output<typeof RunSummary>;

export const RunPage = z.object({
  items: z.array(RunSummary),
  next_cursor: z.string().nullable().describe('pass as cursor for the next page; null on the last page'),
  limit: z.number(),
});
export type RunPage = z.output<typeof RunPage>;

export const EventsQuery = z.object({
  types: z
    .string()
    .max(2_000)
    .transform((value) => value.split(',').map((type) => type.trim()))
    .pipe(z.array(z.enum(EVENT_TYPES as [string, ...string[]])).min(1))
    .optional()
    .describe('comma-separated event types'),
  limit: Limit.optional(),
  cursor: Cursor.optional(),
});
export type EventsQuery = z.output<typeof EventsQuery>;

export const TimelineEvent = z.object({
  time: z.string(),
  type: z.string(),
  source: z.string(),
  id: z.string(),
  phase: z.string().nullable(),
  role: z.string().nullable(),
  attempt: z.number().nullable(),
  data: z.record(z.string(), z.unknown()).describe('the event data; trace ids only for OP and Admin'),
  trace_id: z.string().nullable().optional().describe('only for OP and Admin'),
});
export type TimelineEvent = z.output<typeof TimelineEvent>;

export const EventPage = z.object({
  run_id: z.string(),
  tenant_id: z.string(),
  items: z.array(TimelineEvent),
  next_cursor: z.string().nullable(),
  limit: z.number(),
});
export type EventPage = z.output<typeof EventPage>;
