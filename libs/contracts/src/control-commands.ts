import { z } from 'zod';
import { EventData } from './events';

/**
 * The commands on agent.control.v1 for the Coordinator (cost-cap's, and the query API's run actions).
 * Evolve only by adding optional fields; a breaking change is a new command type. cost-cap's HTTP API
 * bodies are in cost-cap-api.ts.
 */

const id = z.string().min(1).max(200);
const timestamp = z.iso.datetime({ offset: true });

/** Why a cap acted: the same explanation the cap_hit event carries. */
export const CapExplanation = EventData.cap_hit.pick({
  scope: true,
  cap: true,
  limit: true,
  observed: true,
  day: true,
  resets_at: true,
  override: true,
});
export type CapExplanation = z.output<typeof CapExplanation>;

// ---------------------------------------------------------------------------------------------------
// agent.control.v1. Keyed by tenant_id (publisher commands by "playbook:<name>"). Delivery is at least
// once: the Coordinator deduplicates on command_id, which is deterministic (a repeat has the same id).

export const CONTROL_COMMAND_TYPES = [
  'short_circuit_run',
  'block_tenant',
  'unblock_tenant',
  'freeze_publisher',
  'unfreeze_publisher',
  'reopen_phase',
  'rerun_last_step',
] as const;
export type ControlCommandType = (typeof CONTROL_COMMAND_TYPES)[number];

const CommandBase = z.object({
  version: z.literal(1),
  command_id: id,
  issued_at: timestamp,
  /** "cost-cap" for automatic commands; the actor of the override or of the query API's action otherwise. */
  issued_by: z.string().min(1).max(200),
  /** A sentence for humans (logs, the run summary). */
  reason: z.string().min(1).max(4000),
});

export const ShortCircuitRun = CommandBase.extend({
  type: z.literal('short_circuit_run'),
  tenant_id: id,
  project_id: id,
  run_id: id,
  /** What the Coordinator does: stop the run and publish a partial artifact and a summary (docs/cost-cap.md "Crossings, commands and alerts"). */
  instruction: z.literal('partial_artifact_and_summary'),
  cap: CapExplanation,
});

export const BlockTenant = CommandBase.extend({
  type: z.literal('block_tenant'),
  tenant_id: id,
  /** cap_hit: the daily cap was reached (until the next day or a raise); paused: until unpaused. */
  cause: z.enum(['cap_hit', 'paused']),
  /** When the block lifts by itself (the next local day); absent for a pause. */
  until: timestamp.optional(),
  cap: CapExplanation.optional(),
});

export const UnblockTenant = CommandBase.extend({
  type: z.literal('unblock_tenant'),
  tenant_id: id,
  cause: z.enum(['raise', 'unpaused']),
});

export const FreezePublisher = CommandBase.extend({
  type: z.literal('freeze_publisher'),
  playbook: id,
  /** Strict-mode Validator samples of the playbook that decided it. */
  samples: z.number().int().min(0),
  failures: z.number().int().min(0),
  failure_rate: z.number().min(0).max(1),
  threshold: z.number().min(0).max(1),
});

export const UnfreezePublisher = CommandBase.extend({
  type: z.literal('unfreeze_publisher'),
  playbook: id,
});

// The Admin Overview's run actions (docs/query.md "Actions"), sent by the query API. Their command_id is
// "query-audit-<audit id>": one per request, so a redelivery has the same id.

/** Reopen one phase of the run. */
export const ReopenPhase = CommandBase.extend({
  type: z.literal('reopen_phase'),
  tenant_id: id,
  project_id: id,
  run_id: id,
  phase: id,
});

/** Rerun the run's last step. */
export const RerunLastStep = CommandBase.extend({
  type: z.literal('rerun_last_step'),
  tenant_id: id,
  project_id: id,
  run_id: id,
  /** The run's current phase when the command was issued (the step to run again). */
  phase: id.nullable(),
});

export const ControlCommand = z.discriminatedUnion('type', [
  ShortCircuitRun,
  BlockTenant,
  UnblockTenant,
  FreezePublisher,
  UnfreezePublisher,
  ReopenPhase,
  RerunLastStep,
]);
export type ControlCommand = z.output<typeof ControlCommand>;
export type ControlCommandOf<T extends ControlCommandType> = ControlCommand & { type: T };

/** The content type header of every message on agent.control.v1. */
export const CONTROL_CONTENT_TYPE = 'application/json';

/** Kafka message key of a command: one tenant's (or playbook's) commands stay in order. */
export function controlCommandKey(command: ControlCommand): string {
  return 'playbook' in command ? `playbook:${command.playbook}` : command.tenant_id;
}
