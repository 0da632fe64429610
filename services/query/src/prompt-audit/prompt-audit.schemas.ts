import { z } from 'zod';
import { Cursor, Id, Limit, Time } from '../http/validation';

export const PromptAuditBody = z.object({
  enabled: z.boolean().describe('true: ingest stores the redacted prompt and completion texts of llm_calls'),
  retention_days: z
    .number()
    .int()
    .min(1)
    .max(365)
    .optional()
    .describe('days a text is kept (default 30; unchanged when absent)'),
  reason: z.string().trim().min(1).max(2_000).describe('required: recorded in the audit log'),
});
export type PromptAuditBody = z.output<typeof PromptAuditBody>;

const Setting = {
  tenant_id: z.string(),
  enabled: z.boolean(),
  retention_days: z.number(),
};

export const PromptAuditSettingAnswer = z.object({ ...Setting, audit_id: z.string() });
export type PromptAuditSettingAnswer = z.output<typeof PromptAuditSettingAnswer>;

export const PromptAuditQuery = z.object({
  run_id: Id.optional(),
  from: Time.optional(),
  to: Time.optional(),
  limit: Limit.optional(),
  cursor: Cursor.optional(),
});
export type PromptAuditQuery = z.output<typeof PromptAuditQuery>;

export const PromptAuditItem = z.object({
  time: z.string(),
  source: z.string(),
  event_id: z.string(),
  project_id: z.string(),
  run_id: z.string(),
  phase: z.string().nullable(),
  role: z.string().nullable(),
  model: z.string(),
  provider: z.string(),
  prompt: z.string().nullable().describe('redacted: secrets and personal data replaced by [REDACTED:kind]'),
  completion: z.string().nullable(),
});

export const PromptAuditPage = z.object({
  ...Setting,
  items: z.array(PromptAuditItem),
  next_cursor: z.string().nullable(),
  limit: z.number(),
});
export type PromptAuditPage = z.output<typeof PromptAuditPage>;
