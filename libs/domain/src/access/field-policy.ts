import type { Role } from './query-access';

/**
 * Which fields of an answer each role sees (docs/security.md "Field policy"). The one declaration that the
 * query API applies to every answer it gives, JSON, CSV and event streams alike, and that its test walks.
 *
 * A field belongs to a class by its key, wherever it is in the answer (run lists, run metrics, timeline
 * payloads, stream events). A principal sees a class when any of its roles does (the widest view wins).
 */
export type FieldClass = 'money' | 'traces' | 'tokens';

export interface FieldClassRule {
  /** What it is, for the documentation. */
  description: string;
  /** Keys of this class, by exact name. */
  keys: readonly string[];
  /** Keys of this class, by pattern (money amounts are named *_usd or *_micros everywhere). */
  pattern?: RegExp;
  /** Roles that see this class. */
  roles: readonly Role[];
}

export const FIELD_POLICY: Readonly<Record<FieldClass, FieldClassRule>> = {
  money: {
    description: 'dollar amounts: costs, charges, cap limits and crossings in USD',
    keys: ['cost_usd', 'external_cost_usd', 'amount_usd', 'max_cost_usd', 'max_external_usd'],
    pattern: /(?:^|_)(?:usd|micros)$/,
    // Support troubleshoots runs and sees nothing about money.
    roles: ['admin', 'owner', 'op', 'bu', 'auditor', 'finance'],
  },
  traces: {
    description: 'trace ids and Grafana/Tempo links',
    keys: ['trace_id', 'span_id', 'ancestor_span_ids', 'traceparent', 'trace_url', 'grafana_url'],
    roles: ['admin', 'op'],
  },
  tokens: {
    description: "raw token counts (an Owner alone sees them only while the tenant's owner_sees_tokens is on)",
    keys: [
      'prompt_tokens',
      'completion_tokens',
      'cached_tokens',
      'reasoning_tokens',
      'total_tokens',
      'input_tokens',
      'output_tokens',
    ],
    roles: ['admin', 'op', 'bu', 'auditor', 'support', 'finance'],
  },
};

const FIELD_CLASSES = Object.keys(FIELD_POLICY) as FieldClass[];

/**
 * Cap crossings (cap_hit, cap_warning payloads) carry `limit` and `observed` in the cap's unit: dollars for
 * the cost and external caps, so those are money too there (and the limit of the raise in force).
 */
const MONEY_CAPS = new Set(['cost', 'external']);

/** Whether a principal with these roles sees a class; `ownerSeesTokens` is the tenant's setting. */
export function seesClass(roles: Iterable<Role>, fieldClass: FieldClass, ownerSeesTokens = true): boolean {
  const allowed = FIELD_POLICY[fieldClass].roles;
  for (const role of roles) {
    if (allowed.includes(role)) return true;
    if (fieldClass === 'tokens' && role === 'owner' && ownerSeesTokens) return true;
  }
  return false;
}

/** The classes hidden from a principal. */
export function hiddenClasses(roles: Iterable<Role>, ownerSeesTokens = true): Set<FieldClass> {
  const list = [...roles];
  return new Set(FIELD_CLASSES.filter((fieldClass) => !seesClass(list, fieldClass, ownerSeesTokens)));
}

/** The class of a key, or null when every role may see it. */
export function classOfKey(key: string): FieldClass | null {
  for (const fieldClass of FIELD_CLASSES) {
    const rule = FIELD_POLICY[fieldClass];
    if (rule.keys.includes(key) || rule.pattern?.test(key)) return fieldClass;
  }
  return null;
}

/** A copy of an answer without the fields of the hidden classes, at any depth. */
export function withoutHidden<T>(value: T, hidden: ReadonlySet<FieldClass>): T {
  if (hidden.size === 0) return value;
  return strip(value, hidden) as T;
}

function strip(value: unknown, hidden: ReadonlySet<FieldClass>): unknown {
  if (Array.isArray(value)) return value.map((item) => strip(item, hidden));
  if (value === null || typeof value !== 'object') return value;
  const prototype = Object.getPrototypeOf(value) as unknown;
  // Only data is rewritten: a file or stream answer (CSV) passes as it is.
  if (prototype !== Object.prototype && prototype !== null) return value;
  const record = value as Record<string, unknown>;
  const moneyCrossing = hidden.has('money') && typeof record.cap === 'string' && MONEY_CAPS.has(record.cap);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) {
    const fieldClass = classOfKey(key);
    if (fieldClass && hidden.has(fieldClass)) continue;
    if (moneyCrossing && (key === 'limit' || key === 'observed')) continue;
    if (moneyCrossing && key === 'override' && item && typeof item === 'object') {
      const { limit: _limit, ...override } = item as Record<string, unknown>;
      out[key] = strip(override, hidden);
      continue;
    }
    out[key] = strip(item, hidden);
  }
  return out;
}
