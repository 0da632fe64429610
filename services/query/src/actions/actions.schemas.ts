import { z } from 'zod';
import { OverrideTargetName } from '@agentmeter/contracts';
import { Id } from '../http/validation';

const reason = z.string().trim().min(1).max(2_000).describe('required: recorded in the audit log');

export const ReasonBody = z.object({ reason });
export type ReasonBody = z.output<typeof ReasonBody>;

export const RaiseCapBody = z
  .object({
    cap: OverrideTargetName,
    limit: z
      .string()
      .regex(/^\d{1,12}(\.\d{1,6})?$/, 'a non-negative number such as "25" or "25.50"')
      .describe('the new limit in the cap unit: decimal USD, or tokens, or seconds'),
    duration: z.enum(['permanent', '72h']).default('72h').describe('72h: a temporary raise that expires by itself'),
    run_id: Id.optional().describe('72h run caps only: raise this run only'),
    project_id: Id.optional().describe('permanent run caps only: the project default rather than the tenant one'),
    reason,
  })
  .superRefine((body, ctx) => {
    if (body.duration === 'permanent' && body.run_id !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['run_id'], message: 'a permanent change applies to a tenant or project' });
    }
    if (body.duration === '72h' && body.project_id !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['project_id'], message: 'a temporary raise applies to a tenant or run' });
    }
    if (
      body.cap !== 'tenant_daily_cost' &&
      body.cap !== 'run_cost' &&
      body.cap !== 'run_external' &&
      body.limit.includes('.')
    ) {
      ctx.addIssue({ code: 'custom', path: ['limit'], message: 'tokens and seconds are whole numbers' });
    }
  });
export type RaiseCapBody = z.output<typeof RaiseCapBody>;

export const ReopenPhaseBody = z.object({ phase: Id, reason });
export type ReopenPhaseBody = z.output<typeof ReopenPhaseBody>;

export const MuteBody = z
  .object({
    tenant_id: Id.optional().describe('Admin only (default: your tenant)'),
    rule: z.string().min(1).max(200).optional().describe('one alert rule; absent mutes every Owner rule'),
    ends_at: z.iso.datetime({ offset: true }).optional(),
    duration_hours: z
      .number()
      .positive()
      .max(24 * 90)
      .optional(),
    reason,
  })
  .refine((body) => (body.ends_at === undefined) !== (body.duration_hours === undefined), {
    path: ['ends_at'],
    message: 'give exactly one of ends_at and duration_hours',
  });
export type MuteBody = z.output<typeof MuteBody>;

export const UnmuteBody = z.object({ tenant_id: Id.optional().describe('Admin only'), reason });
export type UnmuteBody = z.output<typeof UnmuteBody>;

export const ActionResult = z.object({
  audit_id: z.string(),
  action: z.string(),
  executor: z.enum(['cost-cap', 'alert', 'coordinator']),
  outcome: z.literal('succeeded'),
  result: z.unknown().describe("the owning service's answer"),
});
export type ActionResult = z.output<typeof ActionResult>;
