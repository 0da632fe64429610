import type { RedactionKind } from './redaction';

/**
 * Fake secrets and personal data that redaction must remove, shared by the redaction unit test and by
 * integration tests that push them through ingest and check that no table holds them.
 *
 * Every value is built at run time from pieces ('sk' + '_live_' + ...) with a deterministic body that
 * starts with FAKE, so the source holds no literal real-format token (secret scanners and GitHub push
 * protection stay quiet) while the built value has the exact shape of the real thing. E-mail addresses
 * use the reserved example.* domains; phone numbers use ranges reserved for fiction (NANP 555-01xx,
 * Ofcom 020 7946 0xxx).
 */

export type RedactionContext =
  /** the value on its own, as a whole field */
  | 'bare'
  /** inside an English sentence */
  | 'prose'
  /** inside a JSON document that is itself a string (a logged request body, a tool result) */
  | 'json'
  /** inside JSON that was escaped once more (\" and \n), as in a stringified error */
  | 'escaped-json'
  /** inside a URL */
  | 'url'
  /** an HTTP header line */
  | 'header'
  /** a shell/.env assignment */
  | 'env';

export interface RedactionSample {
  /** The kind redactText reports for this sample. */
  kind: RedactionKind;
  context: RedactionContext;
  /** Text as it could arrive in a string field of an event (error, reason, summary, description). */
  sample: string;
  /** The part that must not survive redaction (other parts, such as a URL's user name, may stay). */
  secret: string;
}

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const ALNUM = UPPER + LOWER + DIGITS;
const URL_SAFE = ALNUM + '-_';
const BASE64 = ALNUM + '+/';
const HEX = '0123456789abcdef';

/** `length` deterministic pseudo-random characters of `alphabet` (a linear congruential generator). */
function chars(length: number, seed: number, alphabet = ALNUM): string {
  let state = seed >>> 0;
  let out = '';
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    out += alphabet[(state >>> 16) % alphabet.length];
  }
  return out;
}

/** A body that reads as fake at a glance: FAKE followed by random characters, `length` in total. */
function fake(length: number, seed: number, alphabet = ALNUM): string {
  return 'FAKE' + chars(length - 4, seed, alphabet);
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

const openaiProject = 'sk-' + 'proj-' + fake(40, 1, URL_SAFE) + chars(40, 2) + '_' + chars(20, 3);
const openaiLegacy = 'sk-' + fake(48, 4);
const openaiServiceAccount = 'sk-' + 'svcacct-' + fake(64, 5, URL_SAFE);
const anthropic = 'sk-' + 'ant-' + 'api03-' + fake(93, 6, URL_SAFE) + 'AA';
const openrouter = 'sk-' + 'or-' + 'v1-' + fake(64, 7, HEX);
const google = 'AI' + 'za' + 'Sy' + fake(33, 8, URL_SAFE);
const googleOauth = 'ya' + '29.' + fake(60, 9, URL_SAFE);
const groq = 'gs' + 'k_' + fake(52, 10);
const huggingface = 'hf' + '_' + fake(34, 11, UPPER + LOWER);
const xai = 'xa' + 'i-' + fake(80, 12);
const perplexity = 'pp' + 'lx-' + fake(48, 13);
const replicate = 'r8' + '_' + fake(37, 14);
const cohere = fake(40, 15);
const awsAccessKey = 'AK' + 'IA' + fake(16, 16, UPPER + DIGITS);
const awsSessionKey = 'AS' + 'IA' + fake(16, 17, UPPER + DIGITS);
const awsSecret = fake(40, 18, BASE64);
const githubClassic = 'gh' + 'p_' + fake(36, 19);
const githubOauth = 'gh' + 'o_' + fake(36, 20);
const githubFineGrained = 'github' + '_pat_' + fake(22, 21) + '_' + chars(59, 22);
const gitlab = 'gl' + 'pat-' + fake(20, 23, URL_SAFE);
const npm = 'np' + 'm_' + fake(36, 24);
const slackBot = 'xo' + 'xb-' + chars(12, 25, DIGITS) + '-' + chars(13, 26, DIGITS) + '-' + fake(24, 27);
const slackUser = 'xo' + 'xp-' + chars(12, 28, DIGITS) + '-' + chars(12, 29, DIGITS) + '-' + fake(32, 30, HEX);
const slackWebhookPath = 'T' + fake(10, 31, UPPER + DIGITS) + '/B' + fake(10, 32, UPPER + DIGITS) + '/' + fake(24, 33);
const slackWebhook = 'https://' + 'hooks.slack.com' + '/services/' + slackWebhookPath;
const discordWebhookPath = chars(18, 34, DIGITS) + '/' + fake(68, 35, URL_SAFE);
const discordWebhook = 'https://' + 'discord.com' + '/api/webhooks/' + discordWebhookPath;
const stripeSecret = 'sk' + '_live_' + fake(99, 36);
const stripeRestricted = 'rk' + '_live_' + fake(99, 37);
const stripeWebhook = 'wh' + 'sec_' + fake(32, 38);
const sendgrid = 'SG' + '.' + fake(22, 39, URL_SAFE) + '.' + chars(43, 40, URL_SAFE);
const jwt =
  base64url('{"alg":"HS256","typ":"JWT"}') +
  '.' +
  base64url('{"sub":"fake-user-42","name":"FAKE test token","iat":1764000000}') +
  '.' +
  fake(43, 41, URL_SAFE);
const bearer = fake(40, 42, URL_SAFE + '.~');
const basic = Buffer.from('fake-user:FAKE-' + chars(12, 43), 'utf8').toString('base64');
const apiToken = fake(40, 44, HEX);
const urlPassword = 'FAKE-' + chars(14, 45);
const kvPassword = 'Fake-Hunter2-' + chars(6, 46);
const kvSecret = fake(32, 47);

function pem(label: string, seed: number, newline: string): string {
  const lines = [0, 1, 2, 3].map((i) => (i === 0 ? 'MIIE' + fake(60, seed, BASE64) : chars(64, seed + i, BASE64)));
  return [`-----BEGIN ${label}-----`, ...lines, `-----END ${label}-----`].join(newline);
}
const rsaKey = pem('RSA ' + 'PRIVATE KEY', 48, '\n');
const pkcs8Key = pem('PRIVATE KEY', 49, '\n');
const opensshKey = pem('OPENSSH ' + 'PRIVATE KEY', 50, '\n');
const escapedKey = pem('EC ' + 'PRIVATE KEY', 51, '\\n');

// Card numbers published by the networks for testing (they pass the Luhn check, charge nothing).
const visa = ['4111', '1111', '1111', '1111'];
const mastercard = ['5555', '5555', '5555', '4444'];
const amex = ['3782', '822463', '10005'];
const discover = ['6011', '1111', '1111', '1117'];

const email = 'jane.doe.fake@example.com';
const email2 = 'ops+alerts@corp.example.org';

/** At least one sample of every kind redactText finds, in the contexts they turn up in. */
export const REDACTION_CORPUS: readonly RedactionSample[] = [
  { kind: 'openai_key', context: 'bare', sample: openaiProject, secret: openaiProject },
  { kind: 'openai_key', context: 'prose', sample: `my key is ${openaiProject} please`, secret: openaiProject },
  { kind: 'openai_key', context: 'env', sample: `OPENAI_API_KEY=${openaiLegacy}`, secret: openaiLegacy },
  {
    kind: 'openai_key',
    context: 'json',
    sample: `{"model":"gpt-4.1","api_key":"${openaiServiceAccount}"}`,
    secret: openaiServiceAccount,
  },
  { kind: 'anthropic_key', context: 'bare', sample: anthropic, secret: anthropic },
  { kind: 'anthropic_key', context: 'header', sample: `x-api-key: ${anthropic}`, secret: anthropic },
  { kind: 'openrouter_key', context: 'prose', sample: `router call failed for key ${openrouter}.`, secret: openrouter },
  {
    kind: 'google_api_key',
    context: 'url',
    sample: `https://generativelanguage.googleapis.com/v1/models?key=${google}`,
    secret: google,
  },
  { kind: 'google_api_key', context: 'bare', sample: google, secret: google },
  {
    kind: 'google_oauth_token',
    context: 'header',
    sample: `Authorization: Bearer ${googleOauth}`,
    secret: googleOauth,
  },
  { kind: 'groq_key', context: 'env', sample: `export GROQ_API_KEY="${groq}"`, secret: groq },
  {
    kind: 'huggingface_token',
    context: 'prose',
    sample: `use token ${huggingface} to pull the model`,
    secret: huggingface,
  },
  { kind: 'xai_key', context: 'bare', sample: xai, secret: xai },
  {
    kind: 'perplexity_key',
    context: 'json',
    sample: `{"provider":"perplexity","key":"${perplexity}"}`,
    secret: perplexity,
  },
  { kind: 'replicate_token', context: 'env', sample: `REPLICATE_API_TOKEN=${replicate}`, secret: replicate },
  { kind: 'cohere_key', context: 'prose', sample: `the cohere key ${cohere} was revoked`, secret: cohere },
  { kind: 'cohere_key', context: 'env', sample: `COHERE_API_KEY=${cohere}`, secret: cohere },
  { kind: 'aws_access_key_id', context: 'bare', sample: awsAccessKey, secret: awsAccessKey },
  {
    kind: 'aws_access_key_id',
    context: 'prose',
    sample: `STS returned ${awsSessionKey} for the session`,
    secret: awsSessionKey,
  },
  { kind: 'aws_secret_access_key', context: 'env', sample: `aws_secret_access_key = ${awsSecret}`, secret: awsSecret },
  {
    kind: 'aws_secret_access_key',
    context: 'json',
    sample: `{"AccessKeyId":"${awsAccessKey}","SecretAccessKey":"${awsSecret}"}`,
    secret: awsSecret,
  },
  { kind: 'private_key', context: 'bare', sample: rsaKey, secret: rsaKey },
  { kind: 'private_key', context: 'prose', sample: `deploy key:\n${pkcs8Key}\nend of key`, secret: pkcs8Key },
  { kind: 'private_key', context: 'bare', sample: opensshKey, secret: opensshKey },
  {
    kind: 'private_key',
    context: 'escaped-json',
    sample: `{\\"ssh_key\\":\\"${escapedKey}\\"}`,
    secret: escapedKey.slice(40, 200),
  },
  {
    kind: 'private_key',
    context: 'prose',
    sample: `truncated: -----BEGIN RSA ${'PRIVATE KEY'}-----\n${'MIIE' + fake(60, 52, BASE64)}`,
    secret: 'MIIE' + fake(60, 52, BASE64),
  },
  {
    kind: 'github_token',
    context: 'url',
    sample: `https://x-access-token:${githubClassic}@github.com/acme/site.git`,
    secret: githubClassic,
  },
  { kind: 'github_token', context: 'env', sample: `GH_TOKEN=${githubOauth}`, secret: githubOauth },
  { kind: 'github_token', context: 'prose', sample: `pat ${githubFineGrained} expired`, secret: githubFineGrained },
  { kind: 'gitlab_token', context: 'header', sample: `PRIVATE-TOKEN: ${gitlab}`, secret: gitlab },
  { kind: 'npm_token', context: 'env', sample: `//registry.npmjs.org/:_authToken=${npm}`, secret: npm },
  { kind: 'slack_token', context: 'bare', sample: slackBot, secret: slackBot },
  { kind: 'slack_token', context: 'json', sample: `{"token":"${slackUser}","channel":"C0FAKE"}`, secret: slackUser },
  {
    kind: 'slack_webhook',
    context: 'prose',
    sample: `posting to ${slackWebhook} failed: 404`,
    secret: slackWebhookPath,
  },
  { kind: 'discord_webhook', context: 'bare', sample: discordWebhook, secret: discordWebhookPath },
  { kind: 'stripe_key', context: 'env', sample: `STRIPE_SECRET_KEY=${stripeSecret}`, secret: stripeSecret },
  {
    kind: 'stripe_key',
    context: 'prose',
    sample: `restricted key ${stripeRestricted} lacks scope`,
    secret: stripeRestricted,
  },
  { kind: 'stripe_key', context: 'bare', sample: stripeWebhook, secret: stripeWebhook },
  { kind: 'sendgrid_key', context: 'bare', sample: sendgrid, secret: sendgrid },
  { kind: 'jwt', context: 'header', sample: `Authorization: Bearer ${jwt}`, secret: jwt },
  { kind: 'jwt', context: 'url', sample: `https://app.example.com/callback?id_token=${jwt}&state=1`, secret: jwt },
  { kind: 'jwt', context: 'escaped-json', sample: `{\\"error\\":\\"expired\\",\\"jwt\\":\\"${jwt}\\"}`, secret: jwt },
  { kind: 'bearer_token', context: 'header', sample: `Authorization: Bearer ${bearer}`, secret: bearer },
  { kind: 'bearer_token', context: 'prose', sample: `curl -H 'bearer ${bearer}' returned 401`, secret: bearer },
  {
    kind: 'bearer_token',
    context: 'escaped-json',
    sample: `headers: {\\"Authorization\\":\\"Bearer ${bearer}\\"}`,
    secret: bearer,
  },
  { kind: 'basic_auth', context: 'header', sample: `Authorization: Basic ${basic}`, secret: basic },
  { kind: 'authorization_header', context: 'header', sample: `authorization: Token ${apiToken}`, secret: apiToken },
  {
    kind: 'url_password',
    context: 'url',
    sample: `postgres://agentmeter:${urlPassword}@db.internal:5432/app`,
    secret: urlPassword,
  },
  {
    kind: 'url_password',
    context: 'prose',
    sample: `cannot reach redis://:${urlPassword}@cache:6379/0 (timeout)`,
    secret: urlPassword,
  },
  {
    kind: 'url_password',
    context: 'json',
    sample: `{"dsn":"amqp://bot:${urlPassword}@mq.example.net/vhost"}`,
    secret: urlPassword,
  },
  { kind: 'secret_assignment', context: 'env', sample: `DB_PASSWORD=${kvPassword}`, secret: kvPassword },
  {
    kind: 'secret_assignment',
    context: 'prose',
    sample: `login with password: ${kvPassword} failed`,
    secret: kvPassword,
  },
  {
    kind: 'secret_assignment',
    context: 'json',
    sample: `{"user":"svc","password":"${kvPassword} x"}`,
    secret: `${kvPassword} x`,
  },
  {
    kind: 'secret_assignment',
    context: 'escaped-json',
    sample: `{\\"client_secret\\":\\"${kvSecret}\\"}`,
    secret: kvSecret,
  },
  {
    kind: 'secret_assignment',
    context: 'url',
    sample: `https://api.example.com/v1/items?access_token=${kvSecret}&page=2`,
    secret: kvSecret,
  },
  { kind: 'secret_assignment', context: 'env', sample: `api_key: '${kvSecret}'`, secret: kvSecret },
  { kind: 'email', context: 'bare', sample: email, secret: email },
  { kind: 'email', context: 'prose', sample: `please notify ${email} and ${email2} when done`, secret: email2 },
  { kind: 'email', context: 'json', sample: `{"to":"${email}","subject":"cap hit"}`, secret: email },
  { kind: 'phone', context: 'bare', sample: '+1 415 555 0100', secret: '+1 415 555 0100' },
  { kind: 'phone', context: 'prose', sample: 'call (415) 555-0100 after 5pm', secret: '(415) 555-0100' },
  { kind: 'phone', context: 'prose', sample: 'the London office is on +44 20 7946 0958.', secret: '+44 20 7946 0958' },
  {
    kind: 'phone',
    context: 'json',
    sample: '{"phone":"+14155550123","tz":"America/Los_Angeles"}',
    secret: '+14155550123',
  },
  {
    kind: 'phone',
    context: 'prose',
    sample: 'SMS sent to 415-555-0199 and +33 6 12 34 56 78',
    secret: '+33 6 12 34 56 78',
  },
  { kind: 'phone', context: 'prose', sample: 'ring 020 7946 0321 for access', secret: '020 7946 0321' },
  { kind: 'phone', context: 'prose', sample: 'escalate to +1 (415) 555-0142 now', secret: '(415) 555-0142' },
  {
    kind: 'payment_card',
    context: 'prose',
    sample: `charge declined for card ${visa.join(' ')} (exp 12/29)`,
    secret: visa.join(' '),
  },
  { kind: 'payment_card', context: 'bare', sample: mastercard.join(''), secret: mastercard.join('') },
  {
    kind: 'payment_card',
    context: 'json',
    sample: `{"card_number":"${amex.join('-')}","brand":"amex"}`,
    secret: amex.join('-'),
  },
  {
    kind: 'payment_card',
    context: 'escaped-json',
    sample: `{\\"pan\\":\\"${discover.join('-')}\\"}`,
    secret: discover.join('-'),
  },
];

export interface RedactionValueSample {
  kind: RedactionKind;
  /** A JSON value as it could appear in an event payload or a log call. */
  value: unknown;
  /** Strings and numbers that must not survive redactValue (anywhere in the result). */
  secrets: readonly (string | number)[];
  /** Strings that must survive (context that is not sensitive). */
  kept: readonly string[];
}

/** Samples that only structure gives away: sensitive field names and precise places. */
export const REDACTION_VALUE_CORPUS: readonly RedactionValueSample[] = [
  {
    kind: 'sensitive_field',
    value: { service: 'search-api', apiKey: 'FAKEplainlookingvalue' },
    secrets: ['FAKEplainlookingvalue'],
    kept: ['search-api'],
  },
  {
    kind: 'sensitive_field',
    value: { headers: { Authorization: 'FAKE-opaque-credential', accept: 'application/json' } },
    secrets: ['FAKE-opaque-credential'],
    kept: ['application/json'],
  },
  {
    kind: 'sensitive_field',
    value: { db: { host: 'db.internal', user: 'app', password: 'FAKE pass phrase with spaces' } },
    secrets: ['FAKE pass phrase with spaces'],
    kept: ['db.internal', 'app'],
  },
  {
    kind: 'sensitive_field',
    value: { credentials: { client_id: 'FAKE-client-id', private_key_id: 'FAKEkeyid0001' } },
    secrets: ['FAKE-client-id', 'FAKEkeyid0001'],
    kept: [],
  },
  {
    kind: 'location',
    value: {
      name: 'HQ',
      address: '1 FAKE Street, San Francisco, CA 94107',
      lat: 37.78213,
      lon: -122.39184,
      city: 'San Francisco',
      region: 'CA',
      country: 'US',
    },
    secrets: ['1 FAKE Street', 37.78213, -122.39184],
    kept: ['HQ', 'San Francisco', 'CA', 'US'],
  },
  {
    kind: 'location',
    value: {
      pickup: {
        latitude: 51.50135,
        longitude: -0.14189,
        street: '99 FAKE Lane',
        postal_code: 'SW1A 1AA',
        city: 'London',
        country: 'GB',
      },
    },
    secrets: ['99 FAKE Lane', 'SW1A 1AA', 51.50135, -0.14189],
    kept: ['London', 'GB'],
  },
  {
    kind: 'location',
    value: { geometry: { type: 'Point', coordinates: [2.29448, 48.85824] }, city: 'Paris' },
    secrets: [2.29448, 48.85824],
    kept: ['Point', 'Paris'],
  },
];
