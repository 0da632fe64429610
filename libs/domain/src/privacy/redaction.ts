/**
 * Removes secrets and personal data from event payloads and log values before anything is stored or
 * logged (docs/security.md "Redaction and pseudonymisation"). Pure and synchronous; it runs on every ingested event, so every pattern is
 * compiled once here and most strings leave through a fast path without touching a pattern at all.
 *
 * What goes:
 * - credentials recognisable by format (provider API keys, JWTs, AWS keys, PEM private keys, GitHub,
 *   Slack, Stripe... tokens, Slack/Discord webhook URLs) anywhere in any string;
 * - credentials recognisable by context: `Bearer x`, `Authorization: x`, `password=x`, `api_key: "x"`,
 *   the password of `scheme://user:password@host`, an AWS secret key after aws/secret wording;
 * - the whole value of a field whose name says it holds a secret (password, token, api_key, ...);
 * - e-mail addresses, phone numbers and payment card numbers (13 to 19 digits passing the Luhn check);
 * - coordinates and street-level detail of objects that describe a place (city/region/country stay).
 *
 * Each removal leaves a marker `[REDACTED:<kind>]`, so a reader still sees that something was there
 * and what it was; markers are never redacted again, which makes redaction idempotent.
 *
 * Identifier fields (user_id, actor, tenant_id, ... see classifyKey) are not erased when given a
 * pseudonymiser: a value holding any of the above is replaced whole by a stable keyed hash, so the same
 * user keeps one identity for attribution (docs/security.md "Redaction and pseudonymisation").
 */

export const REDACTION_KINDS = [
  'private_key',
  'jwt',
  'openai_key',
  'anthropic_key',
  'openrouter_key',
  'google_api_key',
  'google_oauth_token',
  'groq_key',
  'huggingface_token',
  'xai_key',
  'perplexity_key',
  'replicate_token',
  'cohere_key',
  'aws_access_key_id',
  'aws_secret_access_key',
  'github_token',
  'gitlab_token',
  'npm_token',
  'slack_token',
  'slack_webhook',
  'discord_webhook',
  'stripe_key',
  'sendgrid_key',
  'bearer_token',
  'basic_auth',
  'authorization_header',
  'url_password',
  'secret_assignment',
  'sensitive_field',
  'email',
  'phone',
  'payment_card',
  'location',
] as const;

export type RedactionKind = (typeof REDACTION_KINDS)[number];

const MARKERS = Object.fromEntries(REDACTION_KINDS.map((kind) => [kind, `[REDACTED:${kind}]`])) as Record<
  RedactionKind,
  string
>;

/** The text that replaces a redacted value of this kind. */
export function redactionMarker(kind: RedactionKind): string {
  return MARKERS[kind];
}

const MARKER_PREFIX = '[REDACTED';

// ---------------------------------------------------------------------------------------------------
// Credentials recognisable by their format. All of them go through one combined pattern (one scan per
// string); every alternative starts with a literal prefix, so the engine only stops where one could
// begin. Patterns use non-capturing groups only: capture group i is rule i.

interface FormatRule {
  kind: RedactionKind;
  pattern: string;
  /** A second look at a match the pattern alone cannot tell from ordinary text. */
  accept?: (match: string) => boolean;
}

const FORMAT_RULES: readonly FormatRule[] = [
  {
    kind: 'private_key',
    // A truncated block (no END line, e.g. a cut-off error message) loses everything after BEGIN.
    pattern: String.raw`-----BEGIN[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)`,
  },
  {
    kind: 'slack_webhook',
    pattern: String.raw`https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+`,
  },
  {
    kind: 'discord_webhook',
    pattern: String.raw`https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+`,
  },
  { kind: 'jwt', pattern: String.raw`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*` },
  // Ordered: the specific sk- prefixes must win over the generic OpenAI one.
  { kind: 'anthropic_key', pattern: String.raw`sk-ant-[A-Za-z0-9_-]{20,}` },
  { kind: 'openrouter_key', pattern: String.raw`sk-or-[A-Za-z0-9_-]{20,}` },
  // sk-proj-, sk-svcacct-, sk-admin- and legacy sk- keys (DeepSeek and others copied the format).
  { kind: 'openai_key', pattern: String.raw`sk-[A-Za-z0-9_-]{20,}`, accept: hasRandomRun },
  { kind: 'google_api_key', pattern: String.raw`AIza[A-Za-z0-9_-]{30,}` },
  { kind: 'google_oauth_token', pattern: String.raw`(?:ya29\.[A-Za-z0-9_-]{20,}|GOCSPX-[A-Za-z0-9_-]{20,})` },
  { kind: 'groq_key', pattern: String.raw`gsk_[A-Za-z0-9]{20,}` },
  { kind: 'huggingface_token', pattern: String.raw`hf_[A-Za-z0-9]{30,}` },
  { kind: 'xai_key', pattern: String.raw`xai-[A-Za-z0-9]{20,}`, accept: hasRandomRun },
  { kind: 'perplexity_key', pattern: String.raw`pplx-[A-Za-z0-9]{20,}` },
  { kind: 'replicate_token', pattern: String.raw`r8_[A-Za-z0-9]{30,}` },
  { kind: 'aws_access_key_id', pattern: String.raw`(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])` },
  { kind: 'github_token', pattern: String.raw`(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})` },
  { kind: 'gitlab_token', pattern: String.raw`glpat-[A-Za-z0-9_-]{20,}` },
  { kind: 'npm_token', pattern: String.raw`npm_[A-Za-z0-9]{30,}` },
  { kind: 'slack_token', pattern: String.raw`(?:xox[abeoprs]-[A-Za-z0-9-]{15,}|xapp-\d-[A-Za-z0-9-]{15,})` },
  { kind: 'stripe_key', pattern: String.raw`(?:[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{20,})` },
  { kind: 'sendgrid_key', pattern: String.raw`SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}` },
];

const FORMAT_RE = new RegExp(
  String.raw`(?:(?<![A-Za-z0-9])|(?<=\\[nrt]))(?:${FORMAT_RULES.map((rule) => `(${rule.pattern})`).join('|')})`,
  'g',
);

/** Tells a random key body from a slug such as "sk-user-onboarding-checklist-v2". */
function hasRandomRun(match: string): boolean {
  return /[A-Za-z0-9]{16,}/.test(match) && /\d/.test(match);
}

// ---------------------------------------------------------------------------------------------------
// Credentials recognisable by context, and personal data. Each rule keeps the context (the key name,
// the URL user, the auth scheme) and replaces only the secret.

const KEY_SEP = String.raw`\\?["']?[ \t]*[:=][ \t]*`;
// A word boundary, or the end of an escape such as the \n in JSON-escaped text ("...\nBearer x").
const WORD_START = String.raw`(?:\b|(?<=\\[nrt]))`;

const URL_PASSWORD_RE =
  /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/?#@"'<>\\]*:)(?!\[REDACTED)([^\s/?#"'<>\\]+)@/g;

const AWS_SECRET_RE = new RegExp(
  String.raw`${WORD_START}((?:aws|secret)[\w. -]{0,40}?(?:${KEY_SEP}|[ \t]+is[ \t]+)\\?["']?)([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
  'gi',
);

// Cohere keys have no prefix: only a 40-character run close after the word "cohere" gives them away.
const COHERE_RE = /(cohere[^\n]{0,40}?)(?<![A-Za-z0-9])([A-Za-z0-9]{40})(?![A-Za-z0-9])/gi;

const BEARER_RE = new RegExp(String.raw`${WORD_START}(bearer[ \t]+)([A-Za-z0-9\-._~+/]+=*)`, 'gi');

const AUTHORIZATION_RE = new RegExp(
  String.raw`${WORD_START}((?:proxy-)?authorization${KEY_SEP}\\?["']?)(?:(bearer|basic|token|bot|apikey|digest|negotiate|ntlm)[ \t]+)?(?!\[REDACTED)([^\s"'\\,;]+)`,
  'gi',
);

// Password-like names redact any value; the others only a value that does not read as a word or a count
// ("token: expired", "max_token: 4096"). A bare "pass"/"pwd" is only a key as a suffix (db_pass, DB_PWD):
// "tests pass: 12" and "pwd: /home/app" are not secrets.
const PASSWORD_KEYS = String.raw`passw(?:or)?d|passphrase|(?<=[_-])(?:pass|pwd)`;
const OTHER_SECRET_KEYS = String.raw`secret|token|api[_-]?key|(?:access|private|secret|signing|encryption|master|client)[_-]?key|credentials?`;
// Groups: 1 the key and separator (kept), 2 an opening quote, 3 the quoted value, 4 an unquoted value.
const ASSIGNMENT_RE = new RegExp(
  String.raw`((?:${PASSWORD_KEYS}|${OTHER_SECRET_KEYS})(?![A-Za-z0-9])${KEY_SEP})(?!\\?["']?\[REDACTED)` +
    String.raw`(?:(\\?["'])((?:(?!\2)[^\\\r\n])*)(?:\2|$)|([^\s"'\\&,;<>()[\]{}]+))`,
  'gi',
);
const PASSWORD_KEY_RE = /pass|pwd/i;
const PLACEHOLDER_RE =
  /^(?:null|none|nil|undefined|true|false|n\/a|empty|redacted|hidden|masked|\*+|x{3,}|\.{3}|<[^>]*>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%[sd]|\{\{[^}]*\}\})$/i;

const EMAIL_RE =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])/g;

// International (+44 20 7946 0958, +1 (415) 555-0100, +14155550100), North American ((415) 555-0100,
// 415-555-0100, 415.555.0100) and national trunk-prefix (020 7946 0958, 06 12 34 56 78) formats. Bare
// digit runs are never phones: they are counts, unix times and ids far more often.
const PHONE_RE =
  /(?:(?<![\w+./-])|(?<=\\[nrt]))(?:\+\d{1,3}(?:(?:[ .-]?\(\d{1,4}\))?(?:[ .-]\d{1,5}){1,6}|\d{7,14})|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}([.-])\d{3}\1\d{4}|0\d{1,4}(?: \d{2,8}){1,4})(?!\w|[./-]\d)/g;

// Payment card numbers (PAN): 13 to 19 digits starting 2-6 (Mastercard, Visa, Amex, Diners, JCB,
// Discover, UnionPay), bare or in groups of four (Amex 4-6-5) separated by one space or dash each; a match
// is a card only when its digits pass the Luhn check, which nine in ten random digit runs fail.
const CARD_RE =
  /(?:(?<![\w+./-])|(?<=\\[nrt]))(?:[2-6]\d{3}(?:([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|([ -]?)\d{6}\2\d{5})|[2-6]\d{12,18})(?![\w]|[./-]\d)/g;

/** The Luhn (mod 10) check of a payment card number, over its digits. */
function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let digit = digits.charCodeAt(i) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

function isCardNumber(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && passesLuhn(digits);
}

// ---------------------------------------------------------------------------------------------------
// Fast path: strings that cannot hold anything above. Every format rule needs 20+ characters, every
// context rule a space, '=', ':' or '@', and a phone 8+ digits, so a short run of identifier characters
// with few digits is safe; so are timestamps, UUIDs, trace/span ids and traceparents.

const SHORTEST_FORMAT_MATCH = 20;
const SHORT_SAFE_RE = /^[A-Za-z_./-]*(?:\d[A-Za-z_./-]*){0,7}$/;
const ID_LIKE_RE =
  /^(?:\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?(?:Z|[+-]\d\d:?\d\d)?|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-f]{16,64}|[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})$/;

function cannotHoldSecret(text: string): boolean {
  const length = text.length;
  if (length < 6) return true; // "a@b.co" is the shortest thing any rule matches
  if (length < SHORTEST_FORMAT_MATCH && SHORT_SAFE_RE.test(text)) return true;
  // A hex id made of digits only may be a card number.
  return length <= 64 && ID_LIKE_RE.test(text) && !(length <= 19 && ALL_DIGITS_RE.test(text));
}
const ALL_DIGITS_RE = /^\d+$/;

// ---------------------------------------------------------------------------------------------------

// The replace callbacks below report into the array of the redaction in progress. Redaction is
// synchronous and never re-entered, so one module-level slot is safe and saves a closure per rule and
// string on the hot path.
let sink: RedactionKind[] = [];

function hit(kind: RedactionKind): string {
  if (!sink.includes(kind)) sink.push(kind);
  return MARKERS[kind];
}

function replaceFormat(match: string, ...groups: unknown[]): string {
  for (let i = 0; i < FORMAT_RULES.length; i++) {
    if (groups[i] === undefined) continue;
    const rule = FORMAT_RULES[i]!;
    return !rule.accept || rule.accept(match) ? hit(rule.kind) : match;
  }
  return match;
}

function replaceUrlPassword(_match: string, prefix: string): string {
  return `${prefix}${hit('url_password')}@`;
}

function replaceAwsSecret(_match: string, prefix: string): string {
  return prefix + hit('aws_secret_access_key');
}

function replaceCohere(_match: string, prefix: string): string {
  return prefix + hit('cohere_key');
}

function replaceBearer(match: string, prefix: string, token: string): string {
  return looksLikeCredential(token, 8) ? prefix + hit('bearer_token') : match;
}

function replaceAuthorization(match: string, prefix: string, scheme: string | undefined, value: string): string {
  const schemeText = scheme ? match.slice(prefix.length, match.length - value.length) : '';
  const lower = scheme?.toLowerCase();
  if (lower === 'basic') return value.length >= 4 ? prefix + schemeText + hit('basic_auth') : match;
  if (!looksLikeCredential(value, 8)) return match;
  return prefix + schemeText + hit(lower === 'bearer' ? 'bearer_token' : 'authorization_header');
}

function replaceAssignment(
  match: string,
  prefix: string,
  quote: string | undefined,
  quoted: string | undefined,
  bare: string | undefined,
): string {
  const value = quoted ?? bare ?? '';
  if (value === '' || PLACEHOLDER_RE.test(value) || !/[A-Za-z0-9]/.test(value)) return match;
  if (!PASSWORD_KEY_RE.test(prefix) && !looksLikeCredential(value, 6)) return match;
  const marker = hit('secret_assignment');
  return quote === undefined ? prefix + marker : `${prefix}${quote}${marker}${quote}`;
}

function replaceEmail(): string {
  return hit('email');
}

function replaceCard(match: string): string {
  return isCardNumber(match.replace(/[ -]/g, '')) ? hit('payment_card') : match;
}

function replacePhone(match: string): string {
  let digits = 0;
  for (let i = 0; i < match.length; i++) {
    const code = match.charCodeAt(i);
    if (code >= 48 && code <= 57) digits++;
  }
  const international = match.charCodeAt(0) === 43; /* '+' */
  const trunk = match.charCodeAt(0) === 48; /* '0' */
  const ok = international ? digits >= 8 && digits <= 15 : trunk ? digits >= 9 && digits <= 12 : digits === 10;
  return ok ? hit('phone') : match;
}

const WORD_LIKE_RE = /^(?:[A-Z]?[a-z]+|[A-Z]+)(?:[ _.-](?:[A-Z]?[a-z]+|[A-Z]+))*$/;

/** A value that reads like a key or token, not like a word ("expired") or a count ("4096"). */
function looksLikeCredential(value: string, minLength: number): boolean {
  if (value.length < minLength || value.startsWith(MARKER_PREFIX)) return false;
  if (/^\d+$/.test(value)) return value.length >= 12;
  if (WORD_LIKE_RE.test(value)) return value.length >= 32;
  return true;
}

/** Runs every text rule over one string, reporting into `sink`. */
function redactString(text: string): string {
  if (cannotHoldSecret(text)) return text;
  let out = text.replace(FORMAT_RE, replaceFormat);
  const hasAt = out.includes('@');
  if (hasAt && out.includes('://')) out = out.replace(URL_PASSWORD_RE, replaceUrlPassword);
  out = out.replace(AWS_SECRET_RE, replaceAwsSecret);
  out = out.replace(COHERE_RE, replaceCohere);
  out = out.replace(BEARER_RE, replaceBearer);
  out = out.replace(AUTHORIZATION_RE, replaceAuthorization);
  out = out.replace(ASSIGNMENT_RE, replaceAssignment);
  if (hasAt) out = out.replace(EMAIL_RE, replaceEmail);
  out = out.replace(CARD_RE, replaceCard);
  return out.replace(PHONE_RE, replacePhone);
}

/**
 * Replaces every secret, e-mail address, phone number and payment card number in `text` with a
 * `[REDACTED:<kind>]` marker.
 */
export function redactText(text: string): { text: string; found: RedactionKind[] } {
  const found: RedactionKind[] = [];
  const outer = sink;
  sink = found;
  try {
    return { text: redactString(text), found };
  } finally {
    sink = outer;
  }
}

// ---------------------------------------------------------------------------------------------------
// Structured values.

const enum KeyClass {
  Plain,
  Sensitive,
  /** Its presence makes the object a place: lat, lon, address, street, postal_code, ... */
  PlaceTrigger,
  /** Dropped from an object that is a place, but harmless elsewhere (zip, line1, altitude, ...). */
  PlaceDetail,
  /** Names a person: user_id, actor, created_by, email, ... (pseudonymised as `user:hmac:...`). */
  UserIdentifier,
  /** Any other identifier: tenant_id, run_id, session_id, id, ... (pseudonymised as `id:hmac:...`). */
  Identifier,
}

// Names are compared lower-cased without separators, so apiKey, api_key, API-KEY and x-api-key agree.
const SENSITIVE_NAMES = new Set([
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'secret',
  'token',
  'auth',
  'authorization',
  'proxyauthorization',
  'credential',
  'credentials',
  'cookie',
  'setcookie',
]);
const SENSITIVE_SUFFIX_RE =
  /(?:password|passwd|passphrase|secret|token|apikey|accesskey|privatekey|secretkey|signingkey|encryptionkey|masterkey|clientkey|credentials?)$/;
const PLACE_TRIGGERS = new Set([
  'lat',
  'lng',
  'lon',
  'latitude',
  'longitude',
  'coordinates',
  'coords',
  'coord',
  'geolocation',
  'geohash',
  'address',
  'street',
  'streetaddress',
  'streetname',
  'postalcode',
  'postcode',
  'zipcode',
]);
const PLACE_DETAILS = new Set([
  'long',
  'zip',
  'altitude',
  'alt',
  'line1',
  'line2',
  'line3',
  'address1',
  'address2',
  'addressline1',
  'addressline2',
  'housenumber',
  'streetnumber',
  'building',
  'apartment',
  'suite',
  'unit',
  'neighborhood',
  'neighbourhood',
  'pluscode',
  'what3words',
]);

// Identifier names. A wrong guess costs nothing: a value that holds no secret or personal data is kept
// either way, and one that does is pseudonymised instead of masked.
const USER_IDENTIFIER_RE =
  /^(?:(?:enduser|targetuser|user|actor|owner|principal|member|customer|assignee)(?:id|name)?|[a-z]*by|sub|email|emailaddress)$/;
const IDENTIFIER_KEY_RE = /^(?:id|ID)$|[_.-](?:id|ID)$|[a-z0-9]Id$/;

// Field names repeat endlessly (the same twenty on every event), so each is classified once. The cap
// keeps payloads that use ids as keys from growing the cache without bound.
const KEY_CLASS_CACHE = new Map<string, KeyClass>();
const KEY_CLASS_CACHE_LIMIT = 10_000;

function classifyKey(key: string): KeyClass {
  const cached = KEY_CLASS_CACHE.get(key);
  if (cached !== undefined) return cached;
  const name = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  const keyClass =
    SENSITIVE_NAMES.has(name) || SENSITIVE_SUFFIX_RE.test(name)
      ? KeyClass.Sensitive
      : PLACE_TRIGGERS.has(name)
        ? KeyClass.PlaceTrigger
        : PLACE_DETAILS.has(name)
          ? KeyClass.PlaceDetail
          : USER_IDENTIFIER_RE.test(name)
            ? KeyClass.UserIdentifier
            : IDENTIFIER_KEY_RE.test(key)
              ? KeyClass.Identifier
              : KeyClass.Plain;
  if (KEY_CLASS_CACHE.size < KEY_CLASS_CACHE_LIMIT) KEY_CLASS_CACHE.set(key, keyClass);
  return keyClass;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Sets an own property, even one named "__proto__" (which JSON.parse can produce). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** Every string under a sensitive field becomes a marker; numbers, booleans and null keep their type. */
function maskAll(value: unknown): unknown {
  if (typeof value === 'string') {
    return value === '' || value.startsWith(MARKER_PREFIX) ? value : hit('sensitive_field');
  }
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return mapArray(value, maskAll);
  if (!isPlainObject(value)) return value;
  return mapObject(value, (_key, item) => maskAll(item));
}

function mapArray(source: readonly unknown[], fn: (item: unknown) => unknown): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < source.length; i++) {
    const item = source[i];
    const next = fn(item);
    if (next !== item) {
      out ??= source.slice();
      out[i] = next;
    }
  }
  return out ?? (source as unknown[]);
}

/** Copy-on-write map over own enumerable properties; OMIT drops the property. */
const OMIT = Symbol('omit');
function mapObject(
  source: Record<string, unknown>,
  fn: (key: string, item: unknown) => unknown,
): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  const keys = Object.keys(source);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const item = source[key];
    const next = fn(key, item);
    if (!out) {
      if (next === item) continue;
      // First change: copy the properties before this one; later ones are copied as the loop goes on.
      out = {};
      for (let j = 0; j < i; j++) setOwn(out, keys[j]!, source[keys[j]!]);
    }
    if (next !== OMIT) setOwn(out, key, next);
  }
  return out ?? source;
}

function walk(value: unknown): unknown {
  if (typeof value === 'string') return redactString(value);
  if (typeof value === 'number') return redactNumber(value);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return mapArray(value, walk);
  // Dates, Buffers, Maps and class instances are not JSON; they pass through untouched.
  if (!isPlainObject(value)) return value;
  let isPlace = false;
  for (const key in value) {
    if (Object.hasOwn(value, key) && classifyKey(key) === KeyClass.PlaceTrigger) {
      isPlace = true;
      break;
    }
  }
  return mapObject(value, (key, item) => {
    const keyClass = classifyKey(key);
    if (keyClass === KeyClass.Sensitive) return maskAll(item);
    if (pseudonymiser && typeof item === 'string') {
      if (keyClass === KeyClass.UserIdentifier) return pseudonymiseIfSensitive(item, 'user');
      if (keyClass === KeyClass.Identifier) return pseudonymiseIfSensitive(item, 'id');
    }
    if (isPlace && (keyClass === KeyClass.PlaceTrigger || keyClass === KeyClass.PlaceDetail)) {
      // A nested address object is reduced on its own (its street goes, its city stays).
      if (typeof item === 'object' && item !== null && !Array.isArray(item)) return walk(item);
      hit('location');
      return OMIT;
    }
    return walk(item);
  });
}

/** A number with the digits of a payment card (JSON producers sometimes send one unquoted). */
function redactNumber(value: number): unknown {
  if (value < 1e12 || !Number.isSafeInteger(value)) return value;
  const digits = String(value);
  return digits.charCodeAt(0) >= 50 && digits.charCodeAt(0) <= 54 && isCardNumber(digits) ? hit('payment_card') : value;
}

/**
 * Turns an identifier into a stable pseudonym. `prefix` says what it names ("user", "id", "source"); the
 * result must hold nothing redaction would remove, e.g. `user:hmac:<16 hex>`.
 */
export type Pseudonymiser = (value: string, prefix: string) => string;

// The pseudonymiser of the redaction in progress, like `sink` below.
let pseudonymiser: Pseudonymiser | undefined;

/**
 * An identifier that holds nothing to redact is kept; one that does becomes its pseudonym, whole. Path-like
 * identifiers ("otlp/<service name>") are also read segment by segment: in free text a phone or card
 * number right after a slash is a path or URL part, in an identifier it is the identifier.
 */
function pseudonymiseIfSensitive(value: string, prefix: string): string {
  if (cannotHoldSecret(value)) return value;
  const segments = value.includes('/') ? value.replaceAll('/', ' ') : value;
  if (redactString(value) === value && (segments === value || redactString(segments) === segments)) return value;
  return pseudonymiser!(value, prefix);
}

export interface RedactOptions {
  /** Pseudonymise identifier fields instead of redacting inside them. */
  pseudonymise?: Pseudonymiser;
}

/**
 * Redacts a JSON value deeply: sensitive field names mask their whole value, places lose coordinates and
 * street-level detail, numbers that are card numbers become a marker, and every other string goes through
 * redactText; with a pseudonymiser, identifier fields that hold anything redactText would remove become a
 * pseudonym instead. Numbers, booleans and the shape of everything else are kept. The input is never
 * mutated; unchanged subtrees are shared with the result (copy-on-write), so a caller that wants to mutate
 * the result must copy it first.
 */
export function redactValue<T>(value: T, options: RedactOptions = {}): { value: T; found: RedactionKind[] } {
  const found: RedactionKind[] = [];
  const outerSink = sink;
  const outerPseudonymiser = pseudonymiser;
  sink = found;
  pseudonymiser = options.pseudonymise;
  try {
    return { value: walk(value) as T, found };
  } finally {
    sink = outerSink;
    pseudonymiser = outerPseudonymiser;
  }
}

/**
 * One identifier (an envelope's source or subject, a JWT subject used as an actor): kept when it holds
 * nothing to redact, else its pseudonym.
 */
export function pseudonymiseIdentifier(
  value: string,
  prefix: string,
  pseudonymise: Pseudonymiser,
): { value: string; found: RedactionKind[] } {
  const found: RedactionKind[] = [];
  const outerSink = sink;
  const outerPseudonymiser = pseudonymiser;
  sink = found;
  pseudonymiser = pseudonymise;
  try {
    return { value: pseudonymiseIfSensitive(value, prefix), found };
  } finally {
    sink = outerSink;
    pseudonymiser = outerPseudonymiser;
  }
}
