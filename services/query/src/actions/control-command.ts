import { z } from 'zod';

/**
 * Coordinator commands the query API sends on agent.control.v1 for the Admin Overview's quick actions.
 * They follow libs/contracts control.ts (same base fields, same key: the tenant id); the two types below
 * are not in that contract yet (it covers cost-cap's commands), and belong there as an additive change
 * (docs/query.md "Actions"). The Coordinator deduplicates on command_id (here the audit row's id).
 */
const id = z.string().min(1).max(200);

const Base = z.object({
  version: z.literal(1),
  command_id: id,
  issued_at: z.iso.datetime({ offset: true }),
  issued_by: z.string().min(1).max(200),
  reason: z.string().min(1).max(4000),
  tenant_id: id,
  project_id: id,
  run_id: id,
});

export const ReopenPhase = Base.extend({ type: z.literal('reopen_phase'), phase: id });
export const RerunLastStep = Base.extend({
  type: z.literal('rerun_last_step'),
  /** The run's current phase when the command was issued (the step to run again). */
  phase: id.nullable(),
});

export const ControlCommand = z.discriminatedUnion('type', [ReopenPhase, RerunLastStep]);
export type ControlCommand = z.output<typeof ControlCommand>;
