import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { topicName, Topics } from '../../libs/contracts/src/topics';
import { waitForGroupCaughtUp } from '../../libs/testing/src/consumer-lag';
import { publishEvents } from '../../libs/testing/src/publish';
import { freePort, startService, type RunningService } from '../../libs/testing/src/services';
import { generateWorkload } from '../../libs/testing/src/workload';
import { OIDC_CLIENT_ID, OIDC_SCOPE, startOidcProvider } from './oidc';
import { runEvents, saveWorld, type SeededRun, type World } from './world';

const WEB = join(import.meta.dirname, '..');

/** `node -r register.cjs environment.cts …`: libs/testing's set-up and teardown (see register.cjs). */
function environment(command: 'setup' | 'teardown'): string {
  return execFileSync(process.execPath, ['-r', './e2e/register.cjs', './e2e/environment.cts', command], {
    cwd: WEB,
    env: process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/**
 * Once per run: this run's database, topics and key prefix (libs/testing), ingest, cost-cap, alert and
 * query started from dist/ (query serving web/dist), and a workload published through Kafka and stored by ingest, with a few
 * runs made for the run-detail scenarios (a capped one, running ones).
 */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const { env, databaseUrl } = JSON.parse(environment('setup')) as { env: string; databaseUrl: string };
  process.env.AGENTMETER_TEST_ENV = env;
  const test = JSON.parse(env) as { runId: string; kafkaBrokers: string[]; topicPrefix: string };
  const services: RunningService[] = [];
  const stops: Array<() => Promise<void>> = [];
  const teardown = async () => {
    await Promise.all([...services.map((service) => service.stop()), ...stops.map((stop) => stop())]);
    environment('teardown');
  };
  try {
    const secret = randomBytes(32).toString('hex');
    const groupId = `${test.runId}-ingest`;
    const eventsTopic = topicName(test.topicPrefix, Topics.AgentEvents);
    // cost-cap and alert behind the quick actions of the overviews (pause, caps, mutes): query calls them
    // as in production.
    const ownerToken = randomBytes(24).toString('hex');
    const [ingest, costCap, alert] = await Promise.all([
      startService('ingest', {
        DATABASE_URL: databaseUrl,
        INGEST_GROUP_ID: groupId,
        INGEST_SESSION_TIMEOUT_MS: '6000',
      }),
      startService('cost-cap', {
        DATABASE_URL: databaseUrl,
        COST_CAP_API_TOKEN: ownerToken,
        COST_CAP_GROUP_ID: `${test.runId}-cost-cap`,
        COST_CAP_SESSION_TIMEOUT_MS: '6000',
      }),
      startService('alert', {
        DATABASE_URL: databaseUrl,
        ALERT_API_TOKEN: ownerToken,
        ALERT_GROUP_ID: `${test.runId}-alert`,
        ALERT_SESSION_TIMEOUT_MS: '6000',
      }),
    ]);
    services.push(ingest, costCap, alert);
    const query = await startService('query', {
      DATABASE_URL: databaseUrl,
      AUTH_JWT_SECRET: secret,
      GRAFANA_URL: 'https://grafana.example.test',
      TEMPO_URL: 'https://tempo.example.test',
      STREAM_POLL_MS: '200',
      STREAM_HEARTBEAT_MS: '1000',
      COST_CAP_URL: costCap.url,
      COST_CAP_API_TOKEN: ownerToken,
      ALERT_URL: alert.url,
      ALERT_API_TOKEN: ownerToken,
    });
    services.push(query);

    // A second query process of the same database whose tokens come from an OpenID Connect provider.
    const oidcPort = await freePort();
    const issuer = `http://127.0.0.1:${oidcPort}`;
    const oidcQuery = await startService('query', {
      DATABASE_URL: databaseUrl,
      AUTH_JWKS_URL: `${issuer}/jwks`,
      AUTH_JWT_ISSUER: issuer,
      AUTH_JWT_AUDIENCE: 'agentmeter-api',
      CONSOLE_OIDC_ISSUER: issuer,
      CONSOLE_OIDC_CLIENT_ID: OIDC_CLIENT_ID,
      CONSOLE_OIDC_SCOPE: OIDC_SCOPE,
    });
    services.push(oidcQuery);

    const prefix = `cw${randomBytes(2).toString('hex')}`;
    const workload = generateWorkload({
      seed: 1300,
      tenants: 2,
      projectsPerTenant: 2,
      runsPerProject: 3,
      start: new Date(Date.now() - 6 * 3_600_000),
      prefix,
    });
    const truth = workload.truth.runs;
    const pick = (predicate: (run: (typeof truth)[number]) => boolean): SeededRun => {
      const run = truth.find(predicate);
      if (!run) throw new Error('the workload lacks a run the console tests need; change its seed');
      return { tenant_id: run.tenant_id, project_id: run.project_id, run_id: run.run_id };
    };
    const tenant = `${prefix}-tenant-1`;
    const project = `${prefix}-t1-project-1`;
    const made = (name: string): SeededRun => ({ tenant_id: tenant, project_id: project, run_id: `${prefix}-${name}` });
    const capped = made('capped-run');
    const live = [1, 2, 3].map((n) => made(`live-run-${n}`));
    const flaky = made('flaky-mcp-run');

    const events = [
      ...workload.events,
      ...cappedRun(capped),
      ...live.flatMap((run) => liveRun(run)),
      ...flakyMcpRun(flaky, `${prefix}-flaky-mcp`),
    ];
    const provider = await startOidcProvider({
      port: oidcPort,
      consoleUrl: oidcQuery.url,
      tenantId: tenant,
      roles: ['owner', 'op'],
    });
    stops.push(provider.stop);
    const kafka = new Kafka({ clientId: 'console-e2e', brokers: test.kafkaBrokers, logLevel: logLevel.ERROR });
    await publishEvents(kafka, eventsTopic, events);
    await waitForGroupCaughtUp(kafka, groupId, eventsTopic, 120_000);
    await webhookAttempts(databaseUrl, tenant, WEBHOOK_OUTCOMES);

    const world: World = {
      queryUrl: query.url,
      oidc: { consoleUrl: oidcQuery.url, issuer },
      secret,
      brokers: test.kafkaBrokers,
      eventsTopic,
      prefix,
      flakyMcpServer: `${prefix}-flaky-mcp`,
      runs: {
        succeeded: pick(
          (r) => r.status === 'succeeded' && r.tenant_id === tenant && r.stages.some((s) => s.attempts > 1),
        ),
        withMcp: pick((r) => r.mcp_cache !== null && r.status === 'succeeded' && r.tenant_id === tenant),
        withoutMcp: pick((r) => r.mcp_cache === null && r.tenant_id === tenant),
        capped,
        live,
      },
    };
    saveWorld(world);
    return teardown;
  } catch (error) {
    await teardown().catch(() => undefined);
    throw error;
  }
}

/** A run that spent its whole cost cap: run caps, LLM calls, the cap crossing and the failure it caused. */
function cappedRun(run: SeededRun) {
  const at = runEvents(run, 'console-e2e/capped');
  const stage = { phase: 'plan', role: 'planner', attempt: 1 };
  return [
    at('run_started', 900, {
      model: 'gpt-4.1',
      caps: { max_cost_usd: '0.100000', max_tokens: 1_000_000 },
      environment: { name: 'staging', region: 'eu-west-1', version: '2026.12.1' },
    }),
    at('phase_entered', 890, stage),
    at('llm_call', 880, {
      ...stage,
      model: 'gpt-4.1',
      provider: 'openai',
      prompt_tokens: 40_000,
      completion_tokens: 2_500,
      cost_usd: '0.100000',
      latency_ms: 4_000,
      trace_id: '0123456789abcdef0123456789abcdef',
    }),
    at('cap_hit', 870, { scope: 'run', cap: 'cost', limit: '0.100000', observed: '0.100000' }),
    at('run_failed', 860, { phase: 'plan', role: 'planner', error: 'stopped by cost-cap: run cost cap reached' }),
  ];
}

/** A running run: `plan` passed, `implement` entered a few seconds ago and still running. */
function liveRun(run: SeededRun) {
  const at = runEvents(run, 'console-e2e/live');
  const plan = { phase: 'plan', role: 'planner', attempt: 1 };
  return [
    at('run_started', 120, { model: 'claude-sonnet-4-5', environment: { name: 'demo', region: 'eu-west-1' } }),
    at('phase_entered', 110, plan),
    at('llm_call', 100, {
      ...plan,
      model: 'claude-sonnet-4-5',
      provider: 'anthropic',
      prompt_tokens: 3_000,
      completion_tokens: 500,
      latency_ms: 2_000,
      trace_id: 'abcdefabcdefabcdefabcdefabcdef01',
    }),
    at('phase_advanced', 90, { ...plan, next_phase: 'implement' }),
    at('phase_entered', 5, { phase: 'implement', role: 'implementer', attempt: 1 }),
  ];
}

/**
 * A run whose MCP server fails 6 calls in a row (the breaker rule opens at 5, docs/alert.md) and recovers:
 * one circuit-breaker opening, closed by the next successful call, about two hours ago.
 */
function flakyMcpRun(run: SeededRun, server: string) {
  const at = runEvents(run, 'console-e2e/flaky-mcp');
  const stage = { phase: 'implement', role: 'implementer', attempt: 1 };
  const statuses = ['ok', 'ok', 'error', 'error', 'error', 'error', 'error', 'error', 'ok', 'ok'] as const;
  return [
    at('run_started', 7_300, { model: 'gpt-4.1', environment: { name: 'demo', region: 'eu-west-1' } }),
    at('phase_entered', 7_290, stage),
    ...statuses.map((status, i) =>
      at('tool_call', 7_200 - i * 60, {
        ...stage,
        tool: 'search.query',
        mcp_server: server,
        latency_ms: status === 'ok' ? 120 : 3_000,
        status,
      }),
    ),
    at('phase_advanced', 6_500, { ...stage, next_phase: 'validate' }),
    at('run_finished', 6_490, { summary: 'published' }),
  ];
}

/** Webhook delivery attempts of tenant 1 (oldest first): two failures, then the delivery went through. */
const WEBHOOK_OUTCOMES = ['retry', 'retry', 'sent'] as const;

/**
 * Webhook delivery attempts as the alert worker records them (docs/alert.md): its contact (deleted, so the
 * alert service running in this set-up sends nothing more to it), a flushed group, a delivery and its attempts.
 */
async function webhookAttempts(databaseUrl: string, tenantId: string, outcomes: readonly string[]): Promise<void> {
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    const [contact, group, delivery] = [randomUUID(), randomUUID(), randomUUID()];
    await sql.query(
      `INSERT INTO alert_contacts (id, tenant_id, audience, channel, url_encrypted, url_host, secret_encrypted,
         created_by, deleted_at, deleted_by)
       VALUES ($1, $2, 'owner', 'webhook', '\\x00', 'hooks.example.test', '\\x00', 'console-e2e', now(), 'console-e2e')`,
      [contact, tenantId],
    );
    await sql.query(
      `INSERT INTO alert_groups (id, tenant_id, rule, audience, status, flush_at, flushed_at)
       VALUES ($1, $2, 'usage.mcp_breaker_open', 'owner', 'flushed', now(), now())`,
      [group, tenantId],
    );
    await sql.query(
      `INSERT INTO alert_deliveries (id, group_id, tenant_id, audience, rule, channel, contact_id, status, attempts,
         message, sent_at)
       VALUES ($1, $2, $3, 'owner', 'usage.mcp_breaker_open', 'webhook', $4, 'sent', $5, '{}', now())`,
      [delivery, group, tenantId, contact, outcomes.length],
    );
    for (const [i, outcome] of outcomes.entries()) {
      await sql.query(
        `INSERT INTO alert_delivery_attempts (delivery_id, tenant_id, channel, attempt, outcome, status_code, latency_ms,
           at)
         VALUES ($1, $2, 'webhook', $3, $4, $5, 40, now() - make_interval(mins => $6))`,
        [delivery, tenantId, i + 1, outcome, outcome === 'sent' ? 200 : 503, (outcomes.length - i) * 5],
      );
    }
  } finally {
    await sql.end();
  }
}
