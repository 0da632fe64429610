import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { Kafka, logLevel } from 'kafkajs';
import { publishEvents } from '../../libs/testing/src/publish';

/**
 * What the global set-up started and seeded, shared with every test through the environment (Playwright
 * workers inherit it): the query URL, the token secret, the topic to publish more events to, and the runs
 * each scenario looks at.
 */
export interface World {
  queryUrl: string;
  /** The console of a query process signing in with OpenID Connect, and its provider. */
  oidc: { consoleUrl: string; issuer: string };
  secret: string;
  brokers: string[];
  eventsTopic: string;
  prefix: string;
  /** The MCP server whose calls fail 6 in a row (one circuit-breaker opening). */
  flakyMcpServer: string;
  runs: {
    succeeded: SeededRun;
    withMcp: SeededRun;
    withoutMcp: SeededRun;
    capped: SeededRun;
    /** Running, its `implement` stage started just before the tests; each test that ends it gets its own. */
    live: SeededRun[];
  };
}

export interface SeededRun {
  tenant_id: string;
  project_id: string;
  run_id: string;
}

const KEY = 'AGENTMETER_CONSOLE_WORLD';

export function saveWorld(world: World): void {
  process.env[KEY] = JSON.stringify(world);
}

export function world(): World {
  const raw = process.env[KEY];
  if (!raw) throw new Error('the console world is missing: run through playwright.config.ts (global set-up)');
  return JSON.parse(raw) as World;
}

/** A bearer token as the identity provider would issue it (HS256 with the query service's secret). */
export function token(tenantId: string, roles: string[], expiresIn: string | number = '10m'): Promise<string> {
  return new SignJWT({ tenant_id: tenantId, roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(`console-${roles.join('-')}`)
    .setIssuer('agentmeter')
    .setAudience('agentmeter-api')
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(world().secret));
}

type Event = Record<string, unknown> & { key: string };

/** CloudEvents of one run, in the shape producers send, timed relative to now. */
export function runEvents(run: SeededRun, source = `console-e2e/${randomBytes(3).toString('hex')}`) {
  let n = 0;
  const base = { tenant_id: run.tenant_id, project_id: run.project_id, run_id: run.run_id };
  return (type: string, secondsAgo: number, data: Record<string, unknown> = {}): Event => ({
    key: run.run_id,
    specversion: '1.0',
    id: `${run.run_id}-${source}-${++n}`,
    source,
    type,
    time: new Date(Date.now() - secondsAgo * 1000).toISOString(),
    subject: run.tenant_id,
    data: { ...base, ...data },
  });
}

/** Publishes events to the run's topic, for ingest (started from dist/) to store. */
export async function publish(events: Event[]): Promise<void> {
  const w = world();
  const kafka = new Kafka({ clientId: 'console-e2e', brokers: w.brokers, logLevel: logLevel.ERROR });
  await publishEvents(kafka, w.eventsTopic, events);
}

export async function api<T>(credential: string, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(`${world().queryUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json', ...init.headers },
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
