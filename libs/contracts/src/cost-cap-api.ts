import { z } from 'zod';
import { RunCaps, UsdAmount } from './events';

/**
 * The request and response bodies of cost-cap's HTTP API: admission for the Coordinator, overrides for
 * operators (docs/cost-cap.md). Evolve only by adding optional fields; a breaking change is a new API
 * version path. The commands cost-cap publishes on agent.control.v1 are in control-commands.ts.
 */

const id = z.string().min(1).max(200);
const timestamp = z.iso.datetime({ offset: true });
const tokens = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

// ---------------------------------------------------------------------------------------------------
// Admission API (POST /v1/admission/...), called by the Coordinator before an LLM call or a charge.

export const ReservationKind = z.enum(['llm', 'charge']);

export const ReserveRequest = z
  .object({
    tenant_id: id,
    project_id: id,
    run_id: id,
    role: id,
    /** 1 for the first attempt of a phase; the model ladder applies from 2 on. */
    attempt: z.number().int().min(1).max(1000).default(1),
    /** llm: an LLM call (tokens and $); charge: an external charge ($ only). */
    kind: ReservationKind.default('llm'),
    /** The model asked for (llm), or the vendor (charge). */
    model: z.string().min(1).max(200),
    /** The model's provider: prices estimates given in tokens. */
    provider: z.string().min(1).max(100).optional(),
    /** The run's playbook: the Publisher of a frozen playbook is denied. */
    playbook: z.string().min(1).max(200).optional(),
    estimate: z.object({
      /** The call's cost, or the charge's amount. Without it an LLM call is priced from its tokens. */
      cost_usd: UsdAmount.optional(),
      prompt_tokens: tokens.optional(),
      completion_tokens: tokens.optional(),
    }),
    /** Caps the run carries (as in run_started); they can only tighten the tenant's defaults. */
    run_caps: RunCaps.optional(),
    /**
     * When the call is expected to be over. Past it the reservation is `expired` but its hold still counts
     * until it is committed or released (a late commit never overshoots a cap); extend it while the call runs.
     */
    ttl_s: z.number().int().min(1).max(86_400).optional(),
    /**
     * Makes a retried reserve safe: a request with a key the tenant already used for a reservation gets
     * that reservation back (same id, nothing held again) instead of a second one, also after a restart of
     * cost-cap. Use one key per intended reservation (e.g. run, phase, attempt and call). A denial holds
     * nothing and is not remembered. Reusing a key with a different body (estimate included) is a 409.
     */
    idempotency_key: z.string().min(1).max(200).optional(),
  })
  .superRefine((body, ctx) => {
    if (body.kind === 'charge' && body.estimate.cost_usd === undefined) {
      ctx.addIssue({ code: 'custom', path: ['estimate', 'cost_usd'], message: 'a charge needs its amount' });
    }
    const { cost_usd, prompt_tokens, completion_tokens } = body.estimate;
    if (
      body.kind === 'llm' &&
      cost_usd === undefined &&
      prompt_tokens === undefined &&
      completion_tokens === undefined
    ) {
      ctx.addIssue({ code: 'custom', path: ['estimate'], message: 'give cost_usd or prompt/completion tokens' });
    }
  });
export type ReserveRequest = z.output<typeof ReserveRequest>;

/** The override in force for a cap, as every decision shows it. */
export const OverrideInForce = z.object({
  override_id: z.string(),
  limit: z.string(),
  expires_at: timestamp,
  actor: z.string(),
  reason: z.string(),
});

/** One cap's state. Amounts are in the cap's unit: decimal USD for cost and external, tokens as an integer string. */
export const ScopeState = z.object({
  scope: z.enum(['run', 'tenant', 'playbook']),
  cap: z.enum(['tokens', 'wall_time', 'cost', 'external', 'paused', 'publisher_frozen', 'finished']),
  limit: z.string().nullable(),
  spent: z.string(),
  reserved: z.string(),
  remaining: z.string().nullable(),
  /** When this cap resets: the tenant's next local day; null for run caps (they never reset). */
  resets_at: timestamp.nullable(),
  override: OverrideInForce.nullable(),
});
export type ScopeState = z.output<typeof ScopeState>;

export const AdmissionDecision = z.enum(['allow', 'allow_cheaper_model', 'publish_partial', 'deny']);
export type AdmissionDecision = z.output<typeof AdmissionDecision>;

export const ReserveResponse = z.object({
  decision: AdmissionDecision,
  /** Present unless denied: commit or release it. */
  reservation_id: z.string().nullable(),
  expires_at: timestamp.nullable(),
  /** The model to call: the requested one, or a cheaper one from the tenant's ladder. */
  model: z.string(),
  requested_model: z.string(),
  /** The tenant-day the reservation counts toward. */
  day: z.iso.date(),
  requested: z.object({ cost_usd: z.string(), tokens: z.string() }),
  reserved: z.object({ cost_usd: z.string(), tokens: z.string() }),
  /** publish_partial: publish at most this much ($ left), then stop with a partial result. */
  partial: z.object({ left_usd: z.string(), instructions: z.string() }).nullable(),
  /** deny: the cap that refused, and why. */
  denied_by: ScopeState.extend({
    reason: z.enum(['cap_reached', 'insufficient', 'stopped', 'paused', 'frozen', 'finished', 'no_daily_cap']),
    /** The same, as a sentence (who paused and why, what is left, when it resets). */
    detail: z.string(),
  }).nullable(),
  /** Every cap checked, with its limit, spend, reserve, reset time and override in force. */
  scopes: z.array(ScopeState),
  /**
   * True when this answer repeats the reservation an earlier request with the same idempotency_key made
   * (it may since have been committed, released or expired: committing it says which).
   */
  replayed: z.boolean().optional(),
});
export type ReserveResponse = z.output<typeof ReserveResponse>;

export const CommitRequest = z.object({
  /**
   * The CloudEvents identity of the llm_call or external_charge event the Coordinator publishes for this
   * spend. cost-cap accounts a spend once per event identity, so the event arriving from agent.events.v1
   * later (or earlier) does not count twice.
   */
  event: z.object({ source: z.string().min(1).max(500), id: id }),
  actual: z.object({
    /** The actual cost or charge. Without it the tokens are priced; unpriced, the estimate is kept. */
    cost_usd: UsdAmount.optional(),
    prompt_tokens: tokens.optional(),
    completion_tokens: tokens.optional(),
  }),
});
export type CommitRequest = z.output<typeof CommitRequest>;

export const CommitResponse = z.object({
  reservation_id: z.string(),
  status: z.literal('committed'),
  accounted: z.object({ cost_usd: z.string(), tokens: z.string() }),
  /** The event was already accounted from the stream (or by an earlier commit): nothing added. */
  duplicate: z.boolean(),
  /** The reservation had expired: the spend is accounted all the same. */
  late: z.boolean(),
  scopes: z.array(ScopeState),
});
export type CommitResponse = z.output<typeof CommitResponse>;

export const ReleaseResponse = z.object({
  reservation_id: z.string(),
  /** released (now or before), committed, or lapsed (expired before holds lasted until settled). */
  status: z.enum(['released', 'committed', 'expired', 'lapsed']),
});
export type ReleaseResponse = z.output<typeof ReleaseResponse>;

/** POST /v1/admission/reservations/{id}/extend: the call still runs; hold it ttl_s more from now. */
export const ExtendRequest = z.object({ ttl_s: z.number().int().min(1).max(86_400) });
export type ExtendRequest = z.output<typeof ExtendRequest>;

export const ExtendResponse = z.object({
  reservation_id: z.string(),
  status: z.literal('open'),
  expires_at: timestamp,
});
export type ExtendResponse = z.output<typeof ExtendResponse>;

// ---------------------------------------------------------------------------------------------------
// Overrides API (/v1/tenants/..., /v1/overrides/..., /v1/playbooks/...). Every change names its actor
// and reason and writes an audit row.

const Audited = {
  actor: z.string().trim().min(1).max(200),
  reason: z.string().trim().min(1).max(2000),
};
export const AuditedRequest = z.object(Audited);
export type AuditedRequest = z.output<typeof AuditedRequest>;

const nullableUsd = UsdAmount.nullable().optional();
const nullableCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional();

/** Permanent caps. An absent field is unchanged; null removes the cap. */
export const PutCapsRequest = z.object({
  ...Audited,
  /** Project defaults for runs; absent for the tenant's own caps. */
  project_id: id.optional(),
  time_zone: z.string().min(1).max(100).optional(),
  daily_cap_usd: nullableUsd,
  run: z
    .object({
      max_tokens: nullableCount,
      max_wall_time_s: nullableCount,
      max_cost_usd: nullableUsd,
      max_external_usd: nullableUsd,
    })
    .default({}),
});
export type PutCapsRequest = z.output<typeof PutCapsRequest>;

export const OverrideTargetName = z.enum([
  'tenant_daily_cost',
  'run_tokens',
  'run_wall_time',
  'run_cost',
  'run_external',
]);

/** A temporary raise: in force until it expires (72 h by default) or is revoked. */
export const RaiseRequest = z.object({
  ...Audited,
  cap: OverrideTargetName,
  /** Only this run (run caps); absent: every run of the tenant. */
  run_id: id.optional(),
  /** The raised limit in the cap's unit: decimal USD, or an integer for tokens and seconds. */
  limit: z.string().regex(/^\d{1,12}(\.\d{1,6})?$/, 'a non-negative number such as "25" or "25.50"'),
  duration_hours: z
    .number()
    .positive()
    .max(24 * 30)
    .default(72),
});
export type RaiseRequest = z.output<typeof RaiseRequest>;

export const LadderRequest = z.object({
  ...Audited,
  steps: z.array(z.object({ model: z.string().min(1).max(200), cheaper_model: z.string().min(1).max(200) })).max(200),
});
export type LadderRequest = z.output<typeof LadderRequest>;

export const ValidatorSamplesRequest = z.object({
  /** Results of the strict-mode Validator on sampled proofs; a repeated sample_id is ignored. */
  samples: z
    .array(z.object({ sample_id: id, passed: z.boolean(), tenant_id: id.optional(), run_id: id.optional() }))
    .min(1)
    .max(10_000),
});
export type ValidatorSamplesRequest = z.output<typeof ValidatorSamplesRequest>;
