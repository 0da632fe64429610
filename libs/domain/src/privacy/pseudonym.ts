import { createHmac } from 'node:crypto';
import { pseudonymiseIdentifier, redactText, redactValue, type Pseudonymiser, type RedactionKind } from './redaction';

/** The shortest accepted PSEUDONYM_KEY: 32 characters of a random string carry 192 bits and more. */
const MIN_PSEUDONYM_KEY_LENGTH = 32;

/**
 * The key outside production when PSEUDONYM_KEY is unset. It is public, so its pseudonyms protect nothing:
 * every service config refuses to start without PSEUDONYM_KEY when NODE_ENV=production.
 */
const DEVELOPMENT_PSEUDONYM_KEY = 'agentmeter-development-pseudonym-key-not-secret';

const WHOLE_EMAIL_RE = /^[^\s@]+@[^\s@]+$/;
const PHONE_LIKE_RE = /^\+?[\d\s().-]{8,}$/;

/**
 * Keyed pseudonyms: HMAC-SHA256 of an identifier under a deployment secret (PSEUDONYM_KEY), cut to 16 hex
 * characters (64 bits), e.g. `user:hmac:3f9c2a61d0b47e85`. The same identifier always gives the same
 * pseudonym, so per-user attribution survives; without the key nobody can test a guess ("is it
 * jane@example.com?"). E-mail addresses are compared case-insensitively and phone numbers by their digits,
 * so `Jane@Example.com` and `jane@example.com` are one user. Rotating the key gives every identifier a new
 * pseudonym: history keeps the old ones (docs/security.md).
 */
export class PseudonymKey {
  private readonly key: Buffer;

  constructor(key: string) {
    if (key.length < MIN_PSEUDONYM_KEY_LENGTH) {
      throw new Error(`PseudonymKey: the key must be at least ${MIN_PSEUDONYM_KEY_LENGTH} characters`);
    }
    this.key = Buffer.from(key, 'utf8');
  }

  pseudonym(value: string, prefix: string): string {
    const digest = createHmac('sha256', this.key).update(normalise(value), 'utf8').digest('hex');
    return `${prefix}:hmac:${digest.slice(0, 16)}`;
  }
}

function normalise(value: string): string {
  const trimmed = value.trim();
  if (WHOLE_EMAIL_RE.test(trimmed)) return trimmed.toLowerCase();
  if (PHONE_LIKE_RE.test(trimmed)) return (trimmed.startsWith('+') ? '+' : '') + trimmed.replace(/\D/g, '');
  return trimmed;
}

/** CloudEvents envelope attributes that hold free text (everything else is validated to a fixed form). */
interface EnvelopeLike {
  id: string;
  source: string;
  subject: string;
  dataschema?: string;
  traceparent?: string;
  data: unknown;
}

/**
 * The one redaction pass every boundary applies to outside text (events, OTLP spans, HTTP bodies): secrets
 * and personal data are removed (redaction.ts), identifiers are pseudonymised with the deployment key.
 * Deterministic, so every service that applies it to the same event stores the same ids.
 */
export class Redactor {
  private readonly pseudonymise: Pseudonymiser;

  constructor(key: PseudonymKey) {
    this.pseudonymise = (value, prefix) => key.pseudonym(value, prefix);
  }

  /** The service's redactor from its configuration (PSEUDONYM_KEY, validated by config.ts). */
  static withKey(key: string | undefined): Redactor {
    return new Redactor(new PseudonymKey(key ?? DEVELOPMENT_PSEUDONYM_KEY));
  }

  /** Free text: a reason, a name, a note, an error message. */
  text(text: string): { text: string; found: RedactionKind[] } {
    return redactText(text);
  }

  /** A JSON value (an event's data, a request body): text redacted, identifier fields pseudonymised. */
  value<T>(value: T): { value: T; found: RedactionKind[] } {
    return redactValue(value, { pseudonymise: this.pseudonymise });
  }

  /** One identifier on its own (a JWT subject acting, a path parameter); `prefix` says what it names. */
  identifier(value: string, prefix: 'user' | 'id' | 'source'): string {
    return pseudonymiseIdentifier(value, prefix, this.pseudonymise).value;
  }

  /**
   * A CloudEvent, envelope included: `id` and `source` stay distinct and stable (the event log is unique on
   * them), `subject` gets the pseudonym `data.tenant_id` gets, so the two still agree. Returns the same
   * object when nothing was found.
   */
  event<E extends EnvelopeLike>(event: E): { event: E; found: RedactionKind[] } {
    const found = new Set<RedactionKind>();
    const collect = <V>(result: { value: V; found: RedactionKind[] }): V => {
      for (const kind of result.found) found.add(kind);
      return result.value;
    };
    const id = collect(pseudonymiseIdentifier(event.id, 'id', this.pseudonymise));
    const source = collect(pseudonymiseIdentifier(event.source, 'source', this.pseudonymise));
    const subject = collect(pseudonymiseIdentifier(event.subject, 'id', this.pseudonymise));
    const dataschema = event.dataschema === undefined ? undefined : collect(redactValue(event.dataschema));
    const traceparent = event.traceparent === undefined ? undefined : collect(redactValue(event.traceparent));
    const data = collect(this.value(event.data));
    if (found.size === 0) return { event, found: [] };
    const out: E = { ...event, id, source, subject, data };
    if (dataschema !== undefined) out.dataschema = dataschema;
    if (traceparent !== undefined) out.traceparent = traceparent;
    return { event: out, found: [...found] };
  }
}
