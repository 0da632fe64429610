import { z } from 'zod';
import { parseOwnedAgentEvent } from './event-validator';
import { EVENT_TYPES, EventData, type EventDataOf, type EventType } from './events';
import { UndecodableBatchHeaders } from './topics';

/**
 * CloudEvents 1.0 envelope (structured JSON mode). (source, id) identifies an event: a repeat is a
 * duplicate. `subject` carries the tenant and must equal data.tenant_id. `time` is the event time that
 * projections order by; arrival order means nothing.
 */
const EnvelopeBase = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(200),
  source: z.string().min(1).max(500),
  type: z.enum(EVENT_TYPES as [EventType, ...EventType[]]),
  time: z.iso.datetime({ offset: true }),
  subject: z.string().min(1).max(200),
  datacontenttype: z.literal('application/json').optional(),
  dataschema: z.string().max(500).optional(),
  /** W3C trace context extension (CloudEvents distributed tracing). */
  traceparent: z.string().max(100).optional(),
});

function envelopeOf<T extends EventType>(type: T) {
  return EnvelopeBase.extend({ type: z.literal(type), data: EventData[type] });
}

const variants = EVENT_TYPES.map((type) => envelopeOf(type));

export const AgentEvent = z
  .discriminatedUnion('type', variants as unknown as [ReturnType<typeof envelopeOf<EventType>>])
  .superRefine((event, ctx) => {
    if (event.subject !== event.data.tenant_id) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: 'subject must equal data.tenant_id' });
    }
  });

export type AgentEventOf<T extends EventType> = z.output<typeof EnvelopeBase> & {
  type: T;
  data: EventDataOf<T>;
};
export type AgentEvent = { [T in EventType]: AgentEventOf<T> }[EventType];

/** Input shape (before defaults) for producers building events. */
export type AgentEventInput<T extends EventType = EventType> = Omit<z.input<typeof EnvelopeBase>, 'type'> & {
  type: T;
  data: z.input<(typeof EventData)[T]>;
};

export type ParseResult = { ok: true; event: AgentEvent } | { ok: false; reason: string };

/** Validates an already-decoded JSON value as an agent event; the reason names each bad field. */
export function parseAgentEvent(value: unknown): ParseResult {
  const result = AgentEvent.safeParse(value);
  if (result.success) return { ok: true, event: result.data as AgentEvent };
  const reason = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
  return { ok: false, reason };
}

const CE_HEADER_PREFIX = 'ce_';

/** Largest event accepted (value bytes). Bigger ones are dead-lettered: they are not agent events. */
export const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * Decodes a Kafka message in either CloudEvents mode: structured (the whole envelope in the value) or
 * binary (attributes in ce_* headers, data in the value).
 */
export function decodeKafkaEvent(value: Buffer | null, headers: KafkaHeaders): ParseResult {
  if (!value || value.length === 0) return { ok: false, reason: 'empty message value' };
  if (value.length > MAX_EVENT_BYTES) {
    return { ok: false, reason: `message too large: ${value.length} bytes > ${MAX_EVENT_BYTES}` };
  }
  const text = value.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `value is not JSON: ${(error as Error).message}` };
  }
  // Raw NUL bytes cannot reach here (JSON refuses them) and decodeKafkaMessage refuses invalid UTF-8:
  // only JSON escapes can, so the text says whether the value needs a look.
  if (UNSTORABLE_ESCAPE.test(text)) body = storable(body);
  const attributes: Record<string, string> = {};
  for (const [key, raw] of Object.entries(headers)) {
    if (!key.startsWith(CE_HEADER_PREFIX) || raw === undefined) continue;
    const first = Array.isArray(raw) ? raw[0] : raw;
    if (first !== undefined) attributes[key.slice(CE_HEADER_PREFIX.length)] = storable(first.toString());
  }
  // The value was parsed here and is used for nothing else: the compiled contract may complete it in place.
  if (attributes.specversion) return parseOwnedAgentEvent({ ...attributes, data: body });
  return parseOwnedAgentEvent(body);
}

type KafkaHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The decode rules every consumer of agent.events.v1 shares, so that ingest (which dead-letters what
 * fails them, with the reason) and cost-cap and alert (which skip it) agree on what an event is:
 * - a record standing for a batch the Kafka library could not decode: "undecodable_batch: <why>";
 * - a value that is not valid UTF-8: "invalid_utf8" (never repaired into U+FFFD);
 * - the envelope and data rules of decodeKafkaEvent;
 * - the Kafka key must be the event's data.run_id when it has one: "key_mismatch" (the key decides the
 *   partition, and so the order of a run's events).
 */
export function decodeKafkaMessage(message: {
  key: Buffer | null;
  value: Buffer | null;
  headers?: KafkaHeaders;
}): ParseResult {
  const headers = message.headers ?? {};
  const undecodable = headers[UndecodableBatchHeaders.Reason];
  if (undecodable !== undefined) {
    const reason = (Array.isArray(undecodable) ? undecodable[0] : undecodable)?.toString() ?? '';
    return { ok: false, reason: `undecodable_batch: ${reason}` };
  }
  if (message.value && message.value.length <= MAX_EVENT_BYTES) {
    try {
      UTF8.decode(message.value);
    } catch {
      return { ok: false, reason: 'invalid_utf8: the value is not valid UTF-8' };
    }
  }
  const result = decodeKafkaEvent(message.value, headers);
  if (!result.ok) return result;
  const runId = (result.event.data as { run_id?: string }).run_id;
  const key = message.key?.toString('utf8') ?? null;
  if (runId !== undefined && key !== runId) {
    return {
      ok: false,
      reason: `key_mismatch: the Kafka key ${JSON.stringify(key?.slice(0, 200) ?? null)} is not data.run_id`,
    };
  }
  return result;
}

/** A JSON escape of NUL or of a UTF-16 surrogate (a pair is fine, a lone one is not: looked at further). */
const UNSTORABLE_ESCAPE = /\\u(?:0000|d[89a-f])/i;
// In a /u pattern a surrogate pair is one code point, so the class matches lone surrogates only.
// eslint-disable-next-line no-control-regex -- NUL is what this pattern is for
const UNSTORABLE = /[\u0000\uD800-\uDFFF]/gu;

/**
 * Replaces what valid JSON can carry but PostgreSQL (text and jsonb) cannot store, NUL and lone UTF-16
 * surrogates, with U+FFFD in every string and key, as a UTF-8 encoder does with a lone surrogate. The
 * event is kept (its tokens and cost count) instead of failing every write of its batch.
 */
export function storable<T>(value: T): T {
  if (typeof value === 'string') return value.replace(UNSTORABLE, '\uFFFD') as T;
  if (Array.isArray(value)) return value.map((item: unknown) => storable(item)) as T;
  if (value === null || typeof value !== 'object') return value;
  // fromEntries defines own properties: a "__proto__" key stays a key.
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [storable(key), storable(item)])) as T;
}

/** The identity of an event: CloudEvents (source, id). A repeat of the same pair is a duplicate. */
export function eventKey(event: { source: string; id: string }): string {
  return `${event.source}\u0000${event.id}`;
}
