import { z } from 'zod';
import { kafkaEnv, parseEnv, pseudonymEnv, requirePseudonymKey, serviceEnv } from '@agentmeter/http';

const optionalUrl = z.preprocess((value) => (value === '' ? undefined : value), z.url().optional());
const optionalString = z.preprocess((value) => (value === '' ? undefined : value), z.string().optional());

/** The Run dashboard of deploy/observability/grafana/dashboards/run.json. */
const RUN_DASHBOARD_TEMPLATE = '{grafana_url}/d/agentmeter-run/agentmeter-run?var-run_id={run_id}';

/** Grafana Explore, one pane on the provisioned `tempo` datasource, looking the trace id up (the last 7 days). */
const EXPLORE_TRACE_TEMPLATE =
  '{grafana_url}/explore?schemaVersion=1&orgId=1&panes=' +
  encodeURIComponent(
    JSON.stringify({
      t: {
        datasource: 'tempo',
        queries: [
          { refId: 'A', datasource: { type: 'tempo', uid: 'tempo' }, queryType: 'traceql', query: '{trace_id}' },
        ],
        range: { from: 'now-7d', to: 'now' },
      },
    }),
  ).replace('%7Btrace_id%7D', '{trace_id}');

/** The query service's configuration; the only place that reads the environment. */
const Schema = z
  .object({
    ...serviceEnv({ port: 3000, pool: { min: 1, max: 100, default: 10 } }),
    ...kafkaEnv,
    ...pseudonymEnv,

    /** HS256 secret that signs bearer JWTs (at least 32 characters). This or AUTH_JWKS_URL is required. */
    AUTH_JWT_SECRET: z.preprocess(
      (value) => (value === '' ? undefined : value),
      z.string().min(32, 'AUTH_JWT_SECRET must be at least 32 characters').optional(),
    ),
    /** JWKS of an identity provider (RS256/ES256/PS256/EdDSA tokens); keys are fetched and cached by jose. */
    AUTH_JWKS_URL: optionalUrl,
    AUTH_JWT_ISSUER: z.string().default('agentmeter'),
    AUTH_JWT_AUDIENCE: z.string().default('agentmeter-api'),
    /** Longest lifetime a JWT may have (exp - iat, or exp - now without iat); longer ones are refused. */
    AUTH_JWT_MAX_LIFETIME_S: z.coerce.number().int().min(60).max(2_592_000).default(86_400),
    /** Clock skew allowed between the token issuer and this service, for exp, iat and nbf. */
    AUTH_JWT_CLOCK_SKEW_S: z.coerce.number().int().min(0).max(300).default(30),
    /** How long a verified API key is trusted before its row is read again (revocation delay). */
    AUTH_API_KEY_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),

    /**
     * Observability links (docs/query.md "Links"), served by GET /config to OP and Admin only. GRAFANA_URL is
     * Grafana's address as a browser reaches it (`make up` sets the local observability stack's); the templates'
     * defaults open the dashboards shipped in deploy/observability and Grafana Explore on the `tempo` datasource.
     */
    GRAFANA_URL: optionalUrl,
    /** Only for a TEMPO_TRACE_TEMPLATE that names {tempo_url} (Tempo has no trace page of its own). */
    TEMPO_URL: optionalUrl,
    /** {grafana_url} and {run_id} are replaced. */
    GRAFANA_RUN_DASHBOARD_TEMPLATE: z.string().default(RUN_DASHBOARD_TEMPLATE),
    /** {tempo_url}, {grafana_url} and {trace_id} are replaced. */
    TEMPO_TRACE_TEMPLATE: z.string().default(EXPLORE_TRACE_TEMPLATE),
    /**
     * Link to an artifact ({artifact_path}, {artifact_version}, {run_id}, {grafana_url}); the default opens the
     * run dashboard's Failures panel, which lists every failing artifact of the run with its version.
     */
    ARTIFACT_URL_TEMPLATE: z.preprocess(
      (value) => (value === '' ? undefined : value),
      z.string().default(`${RUN_DASHBOARD_TEMPLATE}&viewPanel=6`),
    ),

    /** Limits (docs/security.md "Limits"). */
    QUERY_MAX_PAGE_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    QUERY_MAX_EXPORT_ROWS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
    QUERY_MAX_RANGE_DAYS: z.coerce.number().int().min(1).max(400).default(90),
    /** Longest period or from/to range of the analytics routes, which read the daily and monthly rollups (13 months). */
    QUERY_MAX_AGGREGATE_RANGE_DAYS: z.coerce.number().int().min(1).max(1_000).default(397),
    QUERY_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
    QUERY_BODY_LIMIT_BYTES: z.coerce.number().int().min(256).max(10_485_760).default(16_384),
    /** Requests per credential per window (429 with Retry-After above it), counted across replicas in Redis. */
    QUERY_RATE_LIMIT: z.coerce.number().int().min(1).default(600),
    QUERY_RATE_WINDOW_MS: z.coerce.number().int().min(100).default(60_000),
    /** A running run silent this long counts as stuck. */
    QUERY_STUCK_AFTER_MINUTES: z.coerce.number().int().min(1).default(60),
    /** How often the run stream checks watched runs for changes (one query for all of them). */
    STREAM_POLL_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
    STREAM_HEARTBEAT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
    STREAM_MAX_SECONDS: z.coerce.number().int().min(1).max(86_400).default(3_600),
    /** Live streams one credential may hold open at once on one replica (429 beyond it). */
    STREAM_MAX_PER_CREDENTIAL: z.coerce.number().int().min(1).max(1_000).default(10),

    /**
     * The console (docs/console.md): the built pages (web/dist) served on this port; unset: found next to
     * the build (web/dist from the repository root), and no pages when that folder is missing.
     */
    CONSOLE_DIR: optionalString,
    /** Lifetime of the session a one-click sign-in link or the key form gives the console. */
    CONSOLE_SESSION_MINUTES: z.coerce.number().int().min(1).max(1_440).default(60),
    /** OpenID Connect issuer and client id of the console's sign-in (Authorization Code + PKCE); unset: key sign-in. */
    CONSOLE_OIDC_ISSUER: optionalUrl,
    CONSOLE_OIDC_CLIENT_ID: optionalString,
    CONSOLE_OIDC_SCOPE: z.string().default('openid profile'),

    /** Owning services that carry out actions. */
    COST_CAP_URL: optionalUrl,
    COST_CAP_API_TOKEN: optionalString,
    ALERT_URL: optionalUrl,
    ALERT_API_TOKEN: optionalString,
    ACTION_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
  })
  .superRefine((config, ctx) => {
    requirePseudonymKey(config, ctx);
    if (!config.AUTH_JWT_SECRET && !config.AUTH_JWKS_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_JWT_SECRET'],
        message: 'set AUTH_JWT_SECRET or AUTH_JWKS_URL: there is no open mode',
      });
    }
  });

/** Injection token of the frozen configuration. */
export const QueryConfig = Symbol('QueryConfig');
export type QueryConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): QueryConfig {
  return parseEnv('query', Schema, env);
}

/** The database URL with the request timeout as a server-side statement timeout on every connection. */
export function databaseUrlOf(config: QueryConfig): string {
  const url = new URL(config.DATABASE_URL);
  url.searchParams.set('options', `-c statement_timeout=${config.QUERY_REQUEST_TIMEOUT_MS}`);
  return url.toString();
}
