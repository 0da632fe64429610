import type { INestApplication } from '@nestjs/common';
import { SignJWT } from 'jose';
import type { DataSource } from 'typeorm';
import { AgentEvent as AgentEventSchema, type AgentEvent, type AgentEventInput } from '@agentmeter/contracts';
import { createDataSource, PartitionManager, PricingRepository } from '@agentmeter/database';
import { createLogger } from '@agentmeter/telemetry';
import {
  createTestDatabase,
  generateWorkload,
  testEnvironment,
  type TestDatabase,
  type Workload,
  testRedactor,
} from '@agentmeter/testing';
import { EventsRepository } from '../../ingest/src/events/events.repository';
import { EventsService } from '../../ingest/src/events/events.service';
import { IngestMetrics } from '../../ingest/src/events/ingest.metrics';
import { PricingService } from '../../ingest/src/pricing/pricing.service';
import { bootstrap } from '../src/app.module';
import { loadConfig } from '../src/config';

/**
 * Test fixture of the query API: a fresh database filled through the real ingest path (EventsService, as
 * ingest's own integration test does) with a seeded workload and a few extra events (caps, proofs, queue
 * waits, cap hits, an override), and the query API running in this process on a free port.
 */

export const SECRET = 'query-test-secret-0123456789abcdefghijklmnopqrstuv';

type Input = AgentEventInput & { key?: string };

export interface Seeded {
  database: TestDatabase;
  db: DataSource;
  ingest: EventsService;
  /** The metrics of `ingest`, for another EventsService on the same registry. */
  metrics: IngestMetrics;
  /** The price table of `ingest`. */
  pricing: PricingService;
  workload: Workload;
  /** Every event stored (workload and extras), as producers sent them. */
  events: Input[];
  prefix: string;
  now: Date;
  cappedRunId: string;
}

export async function seed(prefix: string, now = new Date()): Promise<Seeded> {
  const database = await createTestDatabase();
  const db = await createDataSource({ url: database.url, poolSize: 4 }).initialize();
  const pricing = new PricingService(new PricingRepository(db), createLogger('query-test', 'silent'));
  await pricing.refresh();
  const metrics = new IngestMetrics();
  const ingest = new EventsService(
    new EventsRepository(db),
    new PartitionManager(db),
    metrics,
    pricing,
    testRedactor(),
  );
  const workload = generateWorkload({
    seed: 61,
    tenants: 2,
    projectsPerTenant: 2,
    runsPerProject: 4,
    start: new Date(now.getTime() - 6 * 3_600_000),
    prefix,
  });
  const cappedRunId = `${prefix}-capped-run`;
  const events: Input[] = [...workload.events, ...extraEvents(prefix, workload, cappedRunId, now)];
  await ingestAll(ingest, events);
  return { database, db, ingest, metrics, pricing, workload, events, prefix, now, cappedRunId };
}

export async function ingestAll(ingest: EventsService, events: Input[]): Promise<void> {
  const parsed = events.map(({ key: _key, ...event }) => AgentEventSchema.parse(event) as AgentEvent);
  for (let i = 0; i < parsed.length; i += 200) await ingest.ingest(parsed.slice(i, i + 200));
}

/** Events the workload generator does not make, so that every metric has something to count. */
function extraEvents(prefix: string, workload: Workload, runId: string, now: Date): Input[] {
  const tenant = `${prefix}-tenant-1`;
  const project = `${prefix}-t1-project-1`;
  const base = { tenant_id: tenant, project_id: project, run_id: runId };
  const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
  let n = 0;
  const event = <T extends Input['type']>(type: T, time: string, data: object): Input =>
    ({
      specversion: '1.0',
      id: `${runId}-x${++n}`,
      source: `query-test/${prefix}`,
      type,
      time,
      subject: tenant,
      data,
    }) as Input;
  const overridden = workload.truth.runs.find((r) => r.tenant_id === tenant)!;
  return [
    event('run_started', at(120), { ...base, caps: { max_cost_usd: '0.100000', max_tokens: 1_000_000 } }),
    event('phase_entered', at(119), { ...base, phase: 'plan', role: 'planner', attempt: 1 }),
    event('llm_call', at(118), {
      ...base,
      phase: 'plan',
      role: 'planner',
      attempt: 1,
      model: 'gpt-4.1',
      provider: 'openai',
      prompt_tokens: 40_000,
      completion_tokens: 1_000,
      cost_usd: '0.090000',
      latency_ms: 2_000,
      trace_id: 'abcdefabcdefabcdefabcdefabcdef12',
    }),
    event('proof_due', at(117), { ...base, proof_id: 'p1', due_at: at(10) }),
    event('proof_due', at(117), { ...base, proof_id: 'p2', due_at: at(10) }),
    event('proof_completed', at(116), { ...base, proof_id: 'p1', passed: true }),
    event('task_dequeued', at(115), { ...base, queue: 'planner', enqueued_at: at(115.5) }),
    event('task_dequeued', at(114), { ...base, queue: 'planner', enqueued_at: at(115.5) }),
    event('cap_hit', at(113), { ...base, scope: 'run', cap: 'cost', limit: '0.100000', observed: '0.100000' }),
    event('user_override', at(112), {
      tenant_id: tenant,
      project_id: overridden.project_id,
      run_id: overridden.run_id,
      user_id: 'owner-1',
      action: 'reopen_phase',
      reason: 'test',
    }),
  ];
}

export interface RunningQuery {
  app: INestApplication;
  url: string;
  stop(): Promise<void>;
}

export async function startQuery(databaseUrl: string, env: Record<string, string> = {}): Promise<RunningQuery> {
  const config = loadConfig({
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '4',
    AUTH_JWT_SECRET: SECRET,
    GRAFANA_URL: 'https://grafana.example.test',
    TEMPO_URL: 'https://tempo.example.test',
    ARTIFACT_URL_TEMPLATE: 'https://artifacts.example.test/{run_id}/{artifact_path}?v={artifact_version}',
    STREAM_POLL_MS: '100',
    REDIS_URL: testEnvironment().redisUrl,
    // A prefix of its own per instance unless the test shares one (several replicas of one deployment).
    REDIS_KEY_PREFIX: `${testEnvironment().redisPrefix}${Math.random().toString(36).slice(2, 8)}:`,
    ...env,
  });
  const app = await bootstrap(config);
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1').replace('0.0.0.0', '127.0.0.1');
  return { app, url, stop: () => app.close() };
}

export function token(tenant: string, roles: string[], subject = `user-${roles.join('-')}`): Promise<string> {
  return new SignJWT({ tenant_id: tenant, roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuer('agentmeter')
    .setAudience('agentmeter-api')
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function call(
  url: string,
  bearer: string | null,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await fetch(`${url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // CSV or empty
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** RFC 4180 CSV into objects keyed by the header row (values as strings; empty cells as ''). */
export function parseCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  const [header, ...body] = rows;
  return body.map((values) => Object.fromEntries(header!.map((name, i) => [name, values[i] ?? ''])));
}
