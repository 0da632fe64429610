import { EXAMPLE_EVENTS } from '@agentmeter/contracts';
import { REDACTION_CORPUS, REDACTION_VALUE_CORPUS } from './redaction-corpus';
import { REDACTION_KINDS, type RedactionKind, redactText, redactValue, redactionMarker } from './redaction';

/** Any 8-character window of the secret still in the output counts as a leak, not just the whole. */
function leakedPart(output: string, secret: string): string | undefined {
  const width = Math.min(8, secret.length);
  for (let i = 0; i + width <= secret.length; i++) {
    const window = secret.slice(i, i + width);
    if (output.includes(window)) return window;
  }
  return undefined;
}

function collectLeaves(value: unknown, into: unknown[] = []): unknown[] {
  if (Array.isArray(value)) value.forEach((item) => collectLeaves(item, into));
  else if (typeof value === 'object' && value !== null)
    Object.values(value).forEach((item) => collectLeaves(item, into));
  else into.push(value);
  return into;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

const STRUCTURAL_KINDS: RedactionKind[] = ['sensitive_field', 'location'];

describe('redaction corpus', () => {
  it('has a text sample of every kind redactText finds, and a value sample of the others', () => {
    const textKinds = new Set(REDACTION_CORPUS.map((entry) => entry.kind));
    const valueKinds = new Set(REDACTION_VALUE_CORPUS.map((entry) => entry.kind));
    for (const kind of REDACTION_KINDS) {
      expect(STRUCTURAL_KINDS.includes(kind) ? valueKinds.has(kind) : textKinds.has(kind)).toBe(true);
    }
    expect(REDACTION_CORPUS.length).toBeGreaterThanOrEqual(40);
  });

  it.each(REDACTION_CORPUS.map((entry) => [`${entry.kind} (${entry.context})`, entry] as const))(
    'removes %s',
    (_name, entry) => {
      const { text, found } = redactText(entry.sample);
      expect(leakedPart(text, entry.secret)).toBeUndefined();
      expect(text).toContain(redactionMarker(entry.kind));
      expect(found).toContain(entry.kind);
    },
  );

  it.each(REDACTION_VALUE_CORPUS.map((entry) => [entry.kind, entry] as const))(
    'removes %s from values',
    (_k, entry) => {
      const { value, found } = redactValue(entry.value);
      const leaves = collectLeaves(value);
      for (const secret of entry.secrets) {
        if (typeof secret === 'number') expect(leaves).not.toContain(secret);
        else expect(JSON.stringify(value)).not.toContain(secret);
      }
      for (const kept of entry.kept) expect(leaves).toContain(kept);
      expect(found).toContain(entry.kind);
    },
  );

  it('is idempotent: redacting redacted text changes nothing more', () => {
    for (const entry of REDACTION_CORPUS) {
      const once = redactText(entry.sample).text;
      expect(redactText(once)).toEqual({ text: once, found: [] });
    }
  });
});

describe('redactText', () => {
  it.each([
    ['postgres://agentmeter:FAKE-pw-123@db:5432/app', 'postgres://agentmeter:[REDACTED:url_password]@db:5432/app'],
    ['redis://:FAKE-pw-123@cache:6379', 'redis://:[REDACTED:url_password]@cache:6379'],
    ['postgres://u:p@ss:w0rd@db/app', 'postgres://u:[REDACTED:url_password]@db/app'],
    ['Authorization: Bearer FAKEabc123def456', 'Authorization: Bearer [REDACTED:bearer_token]'],
    ['Authorization: Basic ZmFrZTpGQUtF', 'Authorization: Basic [REDACTED:basic_auth]'],
    ['password=Fake-pw-1&user=bob', 'password=[REDACTED:secret_assignment]&user=bob'],
    ['{"password":"two words"}', '{"password":"[REDACTED:secret_assignment]"}'],
    ['DB_PASS=changeme', 'DB_PASS=[REDACTED:secret_assignment]'],
    ['mail jane@example.com today', 'mail [REDACTED:email] today'],
    ['key jane@example.com-retry-2', 'key [REDACTED:email]-retry-2'],
    ['call +1 415 555 0100.', 'call [REDACTED:phone].'],
    ['line1\\n+1 415 555 0100', 'line1\\n[REDACTED:phone]'],
    ['card 4111-1111-1111-1111.', 'card [REDACTED:payment_card].'],
    ['amex 378282246310005', 'amex [REDACTED:payment_card]'],
    ['pan=4111111111111111&x=1', 'pan=[REDACTED:payment_card]&x=1'],
    ['19 digits 4000 0000 0000 0000 006', '19 digits [REDACTED:payment_card]'],
  ])('%s', (input, expected) => {
    expect(redactText(input).text).toBe(expected);
  });

  it('reports each kind once, in the order found', () => {
    const { found } = redactText('a@example.com b@example.com +1 415 555 0100 password=Fake-1234');
    expect(found).toEqual(['secret_assignment', 'email', 'phone']);
  });

  it.each([
    ['ISO timestamp', '2026-11-25T10:00:00Z'],
    ['ISO timestamp with offset', '2026-11-25T10:00:00.123+01:00'],
    ['date and time', 'retried at 2026-11-25 10:00:00 and 2026-11-25 10:05:00'],
    ['UUID', '550e8400-e29b-41d4-a716-446655440000'],
    ['trace id', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ['span id', '00f067aa0ba902b7'],
    ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['model', 'claude-sonnet-4-5'],
    ['model', 'gpt-4.1-mini'],
    ['model', 'meta-llama/Llama-3.3-70B-Instruct'],
    ['semver', '1.2.3-beta.4+build.5678'],
    ['calendar version', '2026.11.3'],
    ['path', 'artifacts/run-7f3a/implement.md'],
    ['amount', '0.027810'],
    ['token counts', 'prompt 5210, completion 812, cached 1024, total 1234567890'],
    ['token counts in a row', 'tokens: 512 256 1024 4096'],
    ['unix time', '1764064800123'],
    ['IP and port', 'connect ECONNREFUSED 10.0.12.7:5432'],
    ['localhost URL', 'GET http://localhost:3000/runs/run-7f3a/metrics'],
    ['npm scope', '@agentmeter/contracts@0.1.0'],
    ['cache key space', 'amtp:mcp:tree'],
    ['prose', 'validation failed: missing section "pricing" on every attempt'],
    ['prose about tokens', 'the token budget was exceeded; max_tokens: 4096, next token: expired'],
    ['prose about secrets', 'rotate the secret before the Bearer token expires; password is required'],
    ['prose about auth', 'authorization: denied for role implementer'],
    ['slug after sk-', 'sk-user-onboarding-checklist-v2'],
    ['words ending in sk', 'the task-runner and disk-usage-report-generator-tool'],
    ['placeholder', 'api_key=${OPENAI_API_KEY} password=<redacted> token: null'],
    ['tests pass', 'tests pass: 12 of 14, pwd: /home/app'],
    ['hex sha', 'commit 9fceb02d0ae598e95dc970b74767f19372d61af8'],
    ['short id', 'run-7f3a'],
    ['dashed date', 'due 2026-11-27'],
    ['card-like digits failing the Luhn check', 'order 4111 1111 1111 1112 and 5555555555554445'],
    ['long id starting with 1', 'invoice 1234567812345670'],
    ['20-digit run', 'ref 41111111111111110000'],
  ])('leaves %s alone: %s', (_name, input) => {
    expect(redactText(input)).toEqual({ text: input, found: [] });
  });
});

describe('redactValue', () => {
  it('leaves every example event untouched and returns the same objects', () => {
    for (const event of EXAMPLE_EVENTS) {
      const { value, found } = redactValue(event);
      expect(found).toEqual([]);
      expect(value).toBe(event);
    }
  });

  it('keeps the shape and types and never mutates the input', () => {
    const key = 'sk-' + 'proj-' + 'FAKE' + 'a1B2c3D4e5F6g7H8i9J0'.repeat(2);
    const input = deepFreeze({
      run_id: 'run-7f3a',
      tenant_id: 'acme',
      prompt_tokens: 5210,
      cached: false,
      cost: null,
      tags: ['ok', `key ${key}`, 3],
      nested: { error: `auth failed for jane@example.com using ${key}`, attempt: 2 },
    });
    const before = JSON.stringify(input);
    const { value, found } = redactValue(input);
    expect(JSON.stringify(input)).toBe(before);
    expect(value).toEqual({
      run_id: 'run-7f3a',
      tenant_id: 'acme',
      prompt_tokens: 5210,
      cached: false,
      cost: null,
      tags: ['ok', 'key [REDACTED:openai_key]', 3],
      nested: { error: 'auth failed for [REDACTED:email] using [REDACTED:openai_key]', attempt: 2 },
    });
    expect(found).toEqual(['openai_key', 'email']);
  });

  it.each([
    ['password', { password: 'x' }, { password: '[REDACTED:sensitive_field]' }],
    ['apiKey', { apiKey: 'plain' }, { apiKey: '[REDACTED:sensitive_field]' }],
    ['X-API-Key', { 'X-API-Key': 'plain' }, { 'X-API-Key': '[REDACTED:sensitive_field]' }],
    ['access_token', { access_token: 'plain' }, { access_token: '[REDACTED:sensitive_field]' }],
    ['private_key', { private_key: 'plain' }, { private_key: '[REDACTED:sensitive_field]' }],
    ['aws_secret_access_key', { aws_secret_access_key: 'p' }, { aws_secret_access_key: '[REDACTED:sensitive_field]' }],
    [
      'credentials object',
      { credentials: { user: 'u', n: 1 } },
      { credentials: { user: '[REDACTED:sensitive_field]', n: 1 } },
    ],
    ['numbers and empty strings', { token: 42, secret: '' }, { token: 42, secret: '' }],
    ['token counts', { max_tokens: 400, prompt_tokens: 5 }, { max_tokens: 400, prompt_tokens: 5 }],
    ['key names that are not secrets', { cache_key_space: 'a:b', key: 'k', token_type: 'x' }, null],
  ])('masks sensitive field %s', (_name, input, expected) => {
    expect(redactValue(input).value).toEqual(expected ?? input);
  });

  it('reduces a place to city, region and country', () => {
    const { value, found } = redactValue({
      kind: 'pickup',
      location: {
        lat: 37.78,
        lng: -122.39,
        address: { street: '1 FAKE St', line2: 'Apt 4', zip: '94107', city: 'San Francisco' },
        region: 'CA',
        country: 'US',
      },
      zip: 'not a place',
    });
    expect(value).toEqual({
      kind: 'pickup',
      location: { address: { city: 'San Francisco' }, region: 'CA', country: 'US' },
      zip: 'not a place',
    });
    expect(found).toEqual(['location']);
  });

  it('treats a "__proto__" key from JSON as data', () => {
    const input = JSON.parse('{"__proto__":{"password":"x"},"a":"jane@example.com"}') as Record<string, unknown>;
    const { value } = redactValue(input);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(JSON.stringify(value)).toBe(
      '{"__proto__":{"password":"[REDACTED:sensitive_field]"},"a":"[REDACTED:email]"}',
    );
  });

  it('redacts a card number sent as a JSON number, and no other number', () => {
    const { value, found } = redactValue({ card: 4111111111111111, tokens: 5210, at: 1764064800123 });
    expect(value).toEqual({ card: '[REDACTED:payment_card]', tokens: 5210, at: 1764064800123 });
    expect(found).toEqual(['payment_card']);
  });

  it('pseudonymises identifier fields only when given a pseudonymiser', () => {
    const pseudonymise = (value: string, prefix: string) => `${prefix}:hmac:${value.length}`;
    const input = {
      user_id: 'jane@example.com',
      actor: '+1 415 555 0100',
      tenant_id: 'acme',
      run_id: 'run for jane@example.com',
      nested: { targetUserId: 'bob@example.com', reason: 'asked by bob@example.com' },
    };
    expect(redactValue(input, { pseudonymise }).value).toEqual({
      user_id: 'user:hmac:16',
      actor: 'user:hmac:15',
      tenant_id: 'acme',
      run_id: 'id:hmac:24',
      nested: { targetUserId: 'user:hmac:15', reason: 'asked by [REDACTED:email]' },
    });
    expect(redactValue(input).value).toMatchObject({ user_id: '[REDACTED:email]', actor: '[REDACTED:phone]' });
  });

  it('passes strings, numbers and non-JSON objects through', () => {
    const date = new Date(0);
    expect(redactValue('mail jane@example.com').value).toBe('mail [REDACTED:email]');
    expect(redactValue(7).value).toBe(7);
    expect(redactValue(date).value).toBe(date);
  });
});
