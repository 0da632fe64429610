import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { AgentEvent } from './envelope';
import { jsonSchemas } from './json-schema';

/**
 * The agent event contract compiled by ajv from the JSON Schema that the zod contract generates (the
 * committed `libs/contracts/schemas/agent-event.schema.json`, which a unit test keeps equal to it): one
 * compiled function per event type, picked by `type` like zod's discriminated union. About four times
 * cheaper than zod per event on the ingest hot path (docs/benchmarks.md), and made to answer exactly as
 * zod does: unknown keys are dropped and defaults filled in (zod's output), string lengths are counted in
 * code points (as zod 4 counts them) and patterns are matched without the `u` flag (as zod's regular
 * expressions are), and non-finite numbers are refused. `event-validator.spec.ts` checks both against the same
 * corpus (documented examples, a workload and their mutations) and requires the same verdict and output.
 */
class CompiledContract {
  private readonly byType = new Map<string, ValidateFunction>();

  constructor() {
    const ajv = new Ajv2020({
      useDefaults: true,
      removeAdditional: 'all',
      unicodeRegExp: false,
      strictNumbers: true,
      // Every format of the schema (date, date-time) comes with the pattern zod checks it with.
      validateFormats: false,
      allErrors: false,
      strict: false,
    });
    const schema = jsonSchemas()['agent-event.schema.json'] as {
      oneOf: Array<{ properties: { type: { const: string } } }>;
    };
    for (const variant of schema.oneOf) this.byType.set(variant.properties.type.const, ajv.compile(variant));
  }

  /**
   * True when `value` is a valid agent event, which it then becomes in place (defaults filled in, unknown
   * keys dropped). False says nothing more: the caller asks zod for the reason.
   */
  validate(value: unknown): value is AgentEvent {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const type = (value as { type?: unknown }).type;
    const validate = typeof type === 'string' ? this.byType.get(type) : undefined;
    if (!validate?.(value)) return false;
    // zod's refinement of the union, which the JSON Schema cannot say.
    const event = value as { subject: string; data: { tenant_id: string } };
    return event.subject === event.data.tenant_id;
  }
}

let compiled: CompiledContract | undefined;

/**
 * The compiled contract's verdict alone (the unit test compares it with zod's): true when `value` is a
 * valid agent event, which it then is in place. The caller must own `value`.
 */
export function acceptsOwnedAgentEvent(value: unknown): value is AgentEvent {
  compiled ??= new CompiledContract();
  return compiled.validate(value);
}

/**
 * Validates a JSON value that the caller owns and never uses again (a value just parsed from a message):
 * a valid one is returned as the event, changed in place as zod's output would be; an invalid one goes
 * through zod, whose issues name the bad fields, exactly as `parseAgentEvent` reports them.
 */
export function parseOwnedAgentEvent(value: unknown): { ok: true; event: AgentEvent } | { ok: false; reason: string } {
  if (acceptsOwnedAgentEvent(value)) return { ok: true, event: value };
  const result = AgentEvent.safeParse(value);
  // Unreachable while both agree (the unit test's corpus); if they ever did not, zod decides.
  if (result.success) return { ok: true, event: result.data as AgentEvent };
  return { ok: false, reason: reasonOf(result.error.issues) };
}

/** The dead-letter reason of zod's issues: the first five, each as "path: message". */
export function reasonOf(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}
