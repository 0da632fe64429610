/**
 * Ingest throughput and latency: the real ingest service against a raw baseline measured in the same run.
 *
 * Run (from the repository root, after `make install` and `make infra`):
 *
 *   bench/run.sh ingest
 *
 * which is exactly:
 *
 *   npx nest build ingest
 *   npx tsc -p dist/bench-ingest/tsconfig.json    # run.sh writes it: bench/tsconfig.json, this file only
 *   cp -r dist/ingest dist/bench-ingest/ingest   # the service measured; a rebuild cannot pull it away
 *   TS_NODE_PROJECT=tsconfig.json TS_NODE_BASEURL=dist/bench-ingest \
 *     node --enable-source-maps -r tsconfig-paths/register dist/bench-ingest/bench/ingest.bench.js
 *
 * (bench/ is outside the Nest builds; tsc emits dist/bench-ingest/{bench,libs,services}/… and
 * tsconfig-paths maps the @agentmeter/* aliases onto dist/bench-ingest/libs/<name>/src at run time.)
 *
 * What it does:
 *   - creates its own databases (am_bench_<id>_*) and topics (bench<id>.*, 3 partitions) and removes
 *     them at the end, whatever happens;
 *   - generates a seeded workload of ~200k events and publishes it to bench<id>.agent.events.v1
 *     before anything is measured;
 *   - baseline: a bare kafkajs consumer (eachBatch, autoCommit off, commit per batch, same fetch
 *     settings as BatchConsumer) that JSON.parses each message and COPYs each batch into a plain table,
 *     run as its own process (this script, re-executed with the argument `baseline-consumer`);
 *   - AgentMeter: the compiled ingest service (dist/ingest) as its own process, fresh consumer group
 *     and fresh migrated database per repetition, so every event is really inserted and projected;
 *   - throughput: both are timed the same way from outside, from the moment the group is Stable
 *     (partitions assigned, fetching starts) until the group has committed every partition up to its
 *     high watermark. Start-up of the process and the group join are excluded. Repeated BENCH_REPEAT
 *     (3) times, interleaved; medians and ingest/baseline are reported;
 *   - latency: each side again, on a fresh empty topic, while this process publishes at fixed rates
 *     (BENCH_LATENCY_RATES, 500 and 5,000 events/s, a chunk every 5 ms) for BENCH_LATENCY_SECONDS (20)
 *     after a warm-up. Probe events (about 250 a second) are looked up by key every 10 ms on a separate
 *     connection; latency is the time from `producer.send` to the first lookup that finds the row. On the
 *     ingest side the compiled query service also runs, and 20 probes a second (an llm_call of a run of
 *     its own) are awaited in GET /runs/{id}/metrics: freshness as a user sees it (see measureLatency);
 *   - reads, from ingest's /metrics after each run, the time of each stage of its batches (fetch wait,
 *     decode, redact, read, price + project, write transaction, offset commit) and the age of each batch's
 *     oldest record when fetched and when committed: where an event's time goes, at full speed and at the
 *     latency runs' rates;
 *   - then runs ingest once more with `--cpu-prof` (not counted) and sums the profile's samples in the
 *     measured window by code (bench/support/ingest-cpu-profile.ts), to show where its CPU goes. The
 *     benchmark uses no ingest internals: it sees the service through Kafka, its HTTP endpoints, the
 *     query API and SQL, as a user or an operator would;
 *   - prints markdown and rewrites the "Ingest throughput" and "Ingest latency" sections of
 *     docs/benchmarks.md (BENCH_WRITE_DOC=0 to leave it alone).
 *
 * Environment: DATABASE_URL (admin URL; databases are created beside it), KAFKA_BROKERS, BENCH_REPEAT,
 * BENCH_RUNS_PER_PROJECT (workload size), BENCH_LATENCY_SECONDS (0 skips the latency runs),
 * BENCH_LATENCY_RATES (comma-separated events/s, default 500,5000), BENCH_INGEST_OTEL=1 (run ingest
 * with its OpenTelemetry SDK on, as production does; off by default like the e2e tests), BENCH_PROFILE=0
 * (skip the profile), BENCH_INGEST_NODE_OPTIONS (NODE_OPTIONS of the ingest service, e.g. --cpu-prof),
 * BENCH_INGEST_MEMBERS (group members the ingest process runs, by default its partitions written at
 * once; 1 for an ingest build from before 2026-11-25), and DATABASE_POOL_SIZE /
 * INGEST_PARTITIONS_CONCURRENTLY, passed through to the ingest service.
 */
import { execSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { Kafka, logLevel, Partitioners, type Admin, type EachBatchPayload, type Message } from 'kafkajs';
import { Client, Pool, type PoolClient } from 'pg';
import { ALL_TOPICS, topicName, Topics } from '@agentmeter/contracts';
import { dropDatabase, ensureDatabase, listDatabases, migrate } from '@agentmeter/database';
import { MAX_BYTES_PER_PARTITION } from '@agentmeter/kafka';
import { eventually } from '../libs/testing/src/eventually';
import { publishEvents } from '../libs/testing/src/publish';
import { freePort } from '../libs/testing/src/services';
import { generateWorkload } from '../libs/testing/src/workload';
import { summariseCpuProfile, type CpuProfileSummary } from './support/ingest-cpu-profile';
import { compiledService, ConsumerProcess } from './support/ingest-processes';
import { histogramDelta, histogramQuantile, scrapeHistograms, type Histograms } from './support/ingest-service-metrics';
import { ADMIN_URL, databaseUrl, log } from './support/bench-env';

const env = process.env;
const ROOT = findRoot(__dirname);
const BROKERS = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
const REPEAT = Number(env.BENCH_REPEAT ?? 3);
const RUNS_PER_PROJECT = Number(env.BENCH_RUNS_PER_PROJECT ?? 47);
const WORKLOAD = { seed: 20261125, tenants: 10, projectsPerTenant: 12, runsPerProject: RUNS_PER_PROJECT };
const PARTITIONS = 3;
const POLL_MS = 20;
const TIMEOUT_MS = 15 * 60_000;
const INGEST_OTEL = env.BENCH_INGEST_OTEL === '1';
const PASS_THROUGH = ['DATABASE_POOL_SIZE', 'INGEST_PARTITIONS_CONCURRENTLY'];
/** Ingest runs a group member per partition it writes at once (INGEST_PARTITIONS_CONCURRENTLY). */
const INGEST_MEMBERS = Number(env.BENCH_INGEST_MEMBERS ?? env.INGEST_PARTITIONS_CONCURRENTLY ?? 3);
const CLK_TCK = clockTicks();
/** The fetch settings of BatchConsumer, which the baseline consumer copies. */
const FETCH = {
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
  maxWaitTimeInMs: 200,
};

const LATENCY_SECONDS = Number(env.BENCH_LATENCY_SECONDS ?? 20);
const LATENCY_WARMUP_SECONDS = 3;
/** Offered rates of the latency runs, events/s (each side runs once per rate). */
const LATENCY_RATES = (env.BENCH_LATENCY_RATES ?? '500,5000')
  .split(',')
  .map((rate) => Number(rate.trim()))
  .filter((rate) => rate > 0);
const PROBES_PER_SECOND = 250;
const VISIBILITY_POLL_MS = 10;
/** Freshness probes through the query API: runs whose first llm_call is awaited in GET /runs/{id}/metrics. */
const API_PROBES_PER_SECOND = 20;
const API_POLL_MS = 10;
const PRODUCE_TICK_MS = 5;
/** Signs the benchmark's query API tokens (the query service it starts trusts it). */
const JWT_SECRET = randomBytes(32).toString('hex');

const BASELINE_CONSUMER = 'baseline-consumer';
const id = randomBytes(3).toString('hex');
const DB_PREFIX = `am_bench_${id}`;
const TOPIC_PREFIX = `bench${id}.`;
const TOPIC = topicName(TOPIC_PREFIX, Topics.AgentEvents);
/** Topic prefixes of the latency runs: an empty topic each. */
const LATENCY_PREFIX = { baseline: `${TOPIC_PREFIX}lat-baseline.`, ingest: `${TOPIC_PREFIX}lat-ingest.` } as const;

/** CPU seconds used during a measurement window, by who used them. */
interface CpuUse {
  consumer: number;
  postgres: number;
  kafka: number | null;
  /** Everything else on the machine (other processes, other PostgreSQL processes, this process's polling). */
  other: number;
  /** The largest parts of `other`: command line -> CPU seconds. */
  others: Array<[string, number]>;
}

interface Measurement {
  events: number;
  seconds: number;
  rate: number;
  cpu: CpuUse;
  /** What the database's non-idle backends were doing, sampled every POLL_MS: label -> samples. */
  waits: { samples: number; states: Map<string, number> };
  /** Ingest only: from its /metrics. */
  batches?: { count: number; meanSize: number; secondsSum: number };
  /** Ingest only: its batch stage and record age histograms, from its /metrics. */
  stages?: Histograms;
  /** The measured window, CLOCK_MONOTONIC µs (the clock of a CPU profile's timestamps). */
  window: { from: number; to: number };
}

/** Bytes on disk per million events stored (tables, TOAST and indexes of the ingest database). */
interface Disk {
  /** As the migrations leave it: call facts stored once (migration 1765600000000). */
  after: number;
  /**
   * Before migration 1765600000000: the call rows also in the event log (built again, with the log's indexes,
   * from the same rows), and the call tables without their payload and log trace id columns.
   */
  before: number;
  /** Per table (day partitions summed), as the migrations leave it. */
  tables: Array<[string, number]>;
}

/** A CPU profile of the ingest process over a throughput run's measured window (not one of the counted runs). */
interface Profile {
  summary: CpuProfileSummary;
  /** That run, for CPU per event. */
  run: Measurement;
}

/** The histograms ingest exports about its batches (bench/support/ingest-service-metrics.ts). */
const STAGE_HISTOGRAMS = ['agentmeter_kafka_consumer_batch_stage_seconds', 'agentmeter_ingest_stage_seconds'] as const;
const AGE_HISTOGRAM = 'agentmeter_kafka_consumer_record_age_seconds';
/** Stages of a batch in order: libs/kafka's, with its "handle" split into ingest's own stages. */
const STAGES: Array<[key: string, label: string]> = [
  ['agentmeter_kafka_consumer_batch_stage_seconds{stage=fetch_wait}', 'fetch wait (fetch, or idle)'],
  ['agentmeter_kafka_consumer_batch_stage_seconds{stage=decode}', 'decode + validate'],
  ['agentmeter_ingest_stage_seconds{stage=redact}', 'redact'],
  ['agentmeter_ingest_stage_seconds{stage=read}', 'read (owners, users, spans, …)'],
  ['agentmeter_ingest_stage_seconds{stage=project}', 'price + project'],
  ['agentmeter_ingest_stage_seconds{stage=write}', 'write transaction'],
  ['agentmeter_kafka_consumer_batch_stage_seconds{stage=commit}', 'commit offsets'],
];

type Side = keyof typeof LATENCY_PREFIX;

interface LatencyRun {
  side: Side;
  /** Events per second asked of the producer, and what it published in the measured window. */
  offered: number;
  sent: number;
  seconds: number;
  /** Probe latencies in ms (publish -> first lookup that finds the row), sorted; warm-up excluded. */
  latencies: number[];
  /**
   * Ingest only: freshness probes in ms (publish -> first GET /runs/{id}/metrics of the query service that
   * shows the probe's llm_call), sorted; warm-up excluded.
   */
  fresh?: number[];
  /** Ingest only: 503 answers of the query service to freshness probes, by detail (retried at the next poll). */
  unavailable?: Map<string, number>;
  /** How far the producer fell behind its schedule at worst, ms. */
  behindMs: number;
  cpu: CpuUse;
  /** Ingest only, warm-up included. */
  batches?: Measurement['batches'];
  /** Ingest only, warm-up excluded. */
  stages?: Histograms;
}

type WorkloadEvent = ReturnType<typeof generateWorkload>['events'][number];

async function main(): Promise<void> {
  const kafka = new Kafka({ clientId: 'agentmeter-bench', brokers: BROKERS, logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const groups: string[] = [];
  const children = new Set<ChildProcess>();
  const prefixes = [
    TOPIC_PREFIX,
    ...Object.values(LATENCY_PREFIX).flatMap((prefix) => LATENCY_RATES.map((_, i) => `${prefix}${i}.`)),
  ];
  const cleanup = onceOnly(async () => {
    await admin
      .deleteTopics({ topics: prefixes.flatMap((prefix) => ALL_TOPICS.map((t) => topicName(prefix, t))) })
      .catch((e: unknown) => log(`could not delete topics: ${String(e)}`));
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.disconnect();
    for (const name of await listDatabases(ADMIN_URL, DB_PREFIX)) await dropDatabase(databaseUrl(name));
    log(`removed databases ${DB_PREFIX}_* and topics ${TOPIC_PREFIX}*`);
  });
  const interrupt = (signal: NodeJS.Signals) => {
    log(`${signal}: cleaning up`);
    for (const child of children) child.kill('SIGKILL');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  // Whatever ends this process, no consumer outlives it (databases and topics are left behind only on
  // a hard crash; their names start with am_bench_ and bench).
  process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

  try {
    // --- set-up, outside every measurement -------------------------------------------------------
    await admin.createTopics({
      waitForLeaders: true,
      topics: prefixes.flatMap((prefix) =>
        ALL_TOPICS.map((t) => ({ topic: topicName(prefix, t), numPartitions: PARTITIONS, replicationFactor: 1 })),
      ),
    });
    const template = `${DB_PREFIX}_tpl`;
    await ensureDatabase(databaseUrl(template));
    await migrate(databaseUrl(template));
    const rawDb = `${DB_PREFIX}_raw`;
    await ensureDatabase(databaseUrl(rawDb));
    // raw_events has no key at all; raw_latency has an index on event_id, so probes can be looked up.
    await withClient(databaseUrl(rawDb), async (c) => {
      for (const table of ['raw_events', 'raw_latency']) {
        await c.query(`CREATE TABLE ${table} (source text, event_id text, tenant_id text, type text,
                         time timestamptz, payload jsonb)`);
      }
      await c.query('CREATE INDEX ON raw_latency (event_id)');
    });

    // Dated yesterday (UTC): ingest's retention, which runs at its start, drops raw partitions older than
    // RETENTION_RAW_DAYS, so a fixed date would turn into failed batches a month later.
    const start = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000);
    const workload = generateWorkload({ ...WORKLOAD, start, prefix: 'bench' });
    const total = workload.events.length;
    const bytes = workload.events.reduce((sum, { key: _key, ...e }) => sum + JSON.stringify(e).length, 0);
    log(`workload: ${total} events (${(bytes / total).toFixed(0)} B mean), ${workload.truth.runs.length} runs`);
    const publishStarted = Date.now();
    await publishEvents(kafka, TOPIC, workload.events, 1000);
    const ends = await admin.fetchTopicOffsets(TOPIC);
    const published = ends.reduce((sum, p) => sum + Number(p.high), 0);
    if (published !== total) throw new Error(`published ${published} of ${total} events`);
    log(`published to ${TOPIC} in ${((Date.now() - publishStarted) / 1000).toFixed(1)} s`);

    // --- throughput, interleaved so drift hits both alike ----------------------------------------
    const baseline: Measurement[] = [];
    const ingest: Measurement[] = [];
    let disk: Disk | null = null;
    for (let i = 1; i <= REPEAT; i++) {
      const groupB = `${TOPIC_PREFIX}baseline-${i}`;
      groups.push(groupB);
      await withClient(databaseUrl(rawDb), (c) => c.query('TRUNCATE raw_events'));
      baseline.push(await measureBaseline(admin, groupB, rawDb, total, children));
      log(`baseline #${i}: ${describe(baseline.at(-1)!)}`);

      const groupI = `${TOPIC_PREFIX}ingest-${i}`;
      groups.push(groupI);
      const db = `${DB_PREFIX}_ingest${i}`;
      await ensureDatabase(databaseUrl(db), template);
      ingest.push(await measureIngest(admin, groupI, db, total, children));
      log(`ingest   #${i}: ${describe(ingest.at(-1)!)}`);
      if (i === REPEAT) {
        disk = await diskOf(db, total);
        log(`disk: ${(disk.after / 1e6).toFixed(0)} MB per million events`);
      }
      await dropDatabase(databaseUrl(db));
    }

    // --- latency at a fixed offered rate, the same for both ----------------------------------------
    const latency: LatencyRun[] = [];
    if (LATENCY_SECONDS > 0) {
      for (const [i, rate] of LATENCY_RATES.entries()) {
        for (const side of ['baseline', 'ingest'] as const) {
          const prefix = `${LATENCY_PREFIX[side]}${i}.`;
          const groupId = `${prefix}group`;
          groups.push(groupId);
          const db = side === 'baseline' ? rawDb : `${DB_PREFIX}_latency${i}`;
          if (side === 'ingest') await ensureDatabase(databaseUrl(db), template);
          else await withClient(databaseUrl(rawDb), (c) => c.query('TRUNCATE raw_latency'));
          latency.push(await measureLatency(kafka, admin, side, prefix, groupId, db, rate, workload.events, children));
          log(`latency ${side}: ${describeLatency(latency.at(-1)!)}`);
          if (side === 'ingest') await dropDatabase(databaseUrl(db));
        }
      }
    }

    // A CPU profile of ingest over one more throughput run (the profiler's cost kept out of the counted runs).
    let profile: Profile | null = null;
    if (env.BENCH_PROFILE !== '0' && REPEAT > 0) {
      const groupId = `${TOPIC_PREFIX}ingest-profile`;
      groups.push(groupId);
      const db = `${DB_PREFIX}_profile`;
      await ensureDatabase(databaseUrl(db), template);
      const dir = mkdtempSync(join(tmpdir(), 'agentmeter-bench-profile-'));
      try {
        const run = await measureIngest(admin, groupId, db, total, children, dir);
        const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
        if (!file) throw new Error(`ingest wrote no CPU profile into ${dir}`);
        profile = { summary: summariseCpuProfile(join(dir, file), run.window), run };
        log(`profiled ingest: ${describe(run)}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await dropDatabase(databaseUrl(db));
      }
    }

    // BENCH_REPEAT=0 measures latency only.
    const sections = REPEAT > 0 ? [report({ total, bytes, baseline, ingest, profile, disk })] : [];
    if (latency.length > 0) sections.push(reportLatency(latency));
    console.log(`\n${sections.join('\n')}`);
    if (env.BENCH_WRITE_DOC !== '0') {
      writeDoc(sections);
      log('updated docs/benchmarks.md');
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------
// The consumers under test, each in its own process.

/** This script again, as the baseline consumer of one topic into one table. */
function startBaseline(
  groupId: string,
  topic: string,
  database: string,
  table: string,
  children: Set<ChildProcess>,
): ConsumerProcess {
  return ConsumerProcess.start(
    'baseline consumer',
    [...process.execArgv, __filename, BASELINE_CONSUMER],
    {
      ...env,
      BENCH_BASELINE_URL: databaseUrl(database),
      BENCH_BASELINE_GROUP: groupId,
      BENCH_BASELINE_TOPIC: topic,
      BENCH_BASELINE_TABLE: table,
    },
    children,
  );
}

/** The compiled ingest service (startService's logic, with the entry resolved from this build). */
async function startIngest(
  groupId: string,
  database: string,
  topicPrefix: string,
  children: Set<ChildProcess>,
  profileDir?: string,
): Promise<{ consumer: ConsumerProcess; url: string }> {
  const entry = compiledService('ingest', __dirname, ROOT);
  const port = await freePort();
  const passed = Object.fromEntries(PASS_THROUGH.filter((k) => env[k]).map((k) => [k, env[k]!]));
  const consumer = ConsumerProcess.start(
    'ingest',
    ['--enable-source-maps', entry],
    {
      PATH: env.PATH ?? '',
      LOG_LEVEL: 'warn',
      ...(INGEST_OTEL ? {} : { OTEL_SDK_DISABLED: 'true' }),
      ...nodeOptions(profileDir),
      ...passed,
      DATABASE_URL: databaseUrl(database),
      KAFKA_BROKERS: BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: topicPrefix,
      INGEST_GROUP_ID: groupId,
      // Its own BullMQ queues (retention): never another ingest's jobs on the shared Redis.
      REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `${topicPrefix}${groupId}:`,
      PORT: String(port),
    },
    children,
  );
  return { consumer, url: `http://127.0.0.1:${port}` };
}

/** NODE_OPTIONS of the ingest process: BENCH_INGEST_NODE_OPTIONS, and a CPU profile into `profileDir`. */
function nodeOptions(profileDir?: string): { NODE_OPTIONS?: string } {
  const options = [env.BENCH_INGEST_NODE_OPTIONS ?? '', profileDir ? `--cpu-prof --cpu-prof-dir=${profileDir}` : '']
    .filter(Boolean)
    .join(' ');
  return options ? { NODE_OPTIONS: options } : {};
}

/** The compiled query service on the same database, trusting JWT_SECRET, without a rate limit to speak of. */
async function startQuery(
  database: string,
  children: Set<ChildProcess>,
): Promise<{ consumer: ConsumerProcess; url: string }> {
  const entry = compiledService('query', __dirname, ROOT);
  const port = await freePort();
  const query = ConsumerProcess.start(
    'query',
    ['--enable-source-maps', entry],
    {
      PATH: env.PATH ?? '',
      LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
      DATABASE_URL: databaseUrl(database),
      REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `${TOPIC_PREFIX}query:`,
      KAFKA_BROKERS: BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: TOPIC_PREFIX,
      AUTH_JWT_SECRET: JWT_SECRET,
      QUERY_RATE_LIMIT: '100000000',
      PORT: String(port),
    },
    children,
  );
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => {
    const error = query.failure();
    if (error) throw error;
    if (!(await fetch(`${url}/health/ready`)).ok) throw new Error('query not ready');
  }, 60_000);
  return { consumer: query, url };
}

/** A bearer token of an operator of `tenant` for the query service of startQuery. */
function apiToken(tenant: string): Promise<string> {
  return new SignJWT({ tenant_id: tenant, roles: ['op'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('bench')
    .setIssuer('agentmeter')
    .setAudience('agentmeter-api')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

// ---------------------------------------------------------------------------------------------------
// Baseline: bare kafkajs consumer + one COPY per batch into a plain table.

async function measureBaseline(
  admin: Admin,
  groupId: string,
  database: string,
  total: number,
  children: Set<ChildProcess>,
): Promise<Measurement> {
  const consumer = startBaseline(groupId, TOPIC, database, 'raw_events', children);
  try {
    const window = await watchGroup(admin, groupId, 1, new CpuProbe(consumer.pid, database), consumer.failure);
    const stored = await count(database, 'raw_events');
    if (stored !== total) throw new Error(`baseline stored ${stored} of ${total} events:\n${consumer.log}`);
    return window;
  } finally {
    await consumer.stop();
  }
}

/**
 * The baseline consumer process (`ingest.bench.js baseline-consumer`): eachBatch with the fetch settings
 * of BatchConsumer, JSON.parse of every message, one COPY … FROM STDIN per batch into a plain table,
 * then the offsets committed: the least a durable Kafka → PostgreSQL consumer does.
 */
async function runBaselineConsumer(): Promise<void> {
  const url = env.BENCH_BASELINE_URL;
  const groupId = env.BENCH_BASELINE_GROUP;
  const topic = env.BENCH_BASELINE_TOPIC;
  const table = env.BENCH_BASELINE_TABLE;
  if (!url || !groupId || !topic || !table) throw new Error('BENCH_BASELINE_* variables are missing');
  const pool = new Pool({ connectionString: url, max: PARTITIONS, application_name: 'agentmeter-bench-raw' });
  const kafka = new Kafka({ clientId: 'agentmeter-bench-raw', brokers: BROKERS, logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId, ...FETCH });
  const copy = `COPY ${table} (source, event_id, tenant_id, type, time, payload) FROM STDIN`;
  const onBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    let rows = '';
    for (const message of batch.messages) {
      const e = JSON.parse(message.value!.toString('utf8')) as {
        source: string;
        id: string;
        type: string;
        time: string;
        data: { tenant_id: string };
      };
      rows +=
        `${copyText(e.source)}\t${copyText(e.id)}\t${copyText(e.data.tenant_id)}\t${copyText(e.type)}\t` +
        `${copyText(e.time)}\t${copyText(JSON.stringify(e.data))}\n`;
    }
    await copyIn(pool, copy, rows);
    const last = batch.messages[batch.messages.length - 1]!;
    resolveOffset(last.offset);
    await consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
    ]);
    await heartbeat();
  };
  const fail = (error: unknown) => {
    console.error(error);
    process.exit(1);
  };
  consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
  process.once('SIGTERM', () => {
    void consumer
      .disconnect()
      .then(() => pool.end())
      .finally(() => process.exit(0));
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: PARTITIONS,
    eachBatch: (payload) => onBatch(payload).catch(fail),
  });
}

/** A value in COPY's text format (backslash, tab, newline and carriage return escaped). */
function copyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** The parts of pg's protocol connection that COPY FROM STDIN uses (not in pg's type definitions). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * COPY … FROM STDIN of one chunk, as a pg "submittable" (the protocol messages pg-copy-streams sends;
 * that package is not a dependency): PostgreSQL answers the query with CopyInResponse, gets the data
 * and CopyDone, and ends with CommandComplete (or an error) and ReadyForQuery.
 */
async function copyIn(pool: Pool, sql: string, data: string): Promise<void> {
  const client: PoolClient = await pool.connect();
  let broken: Error | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed: Error | undefined;
      const noop = () => undefined;
      client.query({
        submit: (connection) => (connection as unknown as CopyConnection).query(sql),
        handleCopyInResponse: (connection: CopyConnection) => {
          connection.sendCopyFromChunk(Buffer.from(data));
          connection.endCopyFrom();
        },
        handleError: (error: Error) => {
          failed = error;
        },
        handleReadyForQuery: () => (failed ? reject(failed) : resolve()),
        handleCommandComplete: noop,
        handleRowDescription: noop,
        handleDataRow: noop,
        handleEmptyQuery: noop,
        handleCopyData: noop,
        handlePortalSuspended: noop,
      });
    });
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
}

// ---------------------------------------------------------------------------------------------------
// AgentMeter: the compiled ingest service as its own process.

async function measureIngest(
  admin: Admin,
  groupId: string,
  database: string,
  total: number,
  children: Set<ChildProcess>,
  profileDir?: string,
): Promise<Measurement> {
  const { consumer, url } = await startIngest(groupId, database, TOPIC_PREFIX, children, profileDir);
  try {
    const window = await watchGroup(
      admin,
      groupId,
      INGEST_MEMBERS,
      new CpuProbe(consumer.pid, database),
      consumer.failure,
    );
    await eventually(async () => {
      if (!(await fetch(`${url}/health/ready`)).ok) throw new Error('ingest not ready');
    }, 30_000);
    window.batches = await batchesOf(url);
    window.stages = await stagesOf(url);
    const stored = await count(database, 'events');
    if (stored !== total) throw new Error(`ingest stored ${stored} of ${total} events:\n${consumer.log}`);
    const error = consumer.failure();
    if (error) throw error;
    return window;
  } finally {
    await consumer.stop();
  }
}

/**
 * Disk per million events of an ingest database after a throughput run (see Disk). "Before" builds the event
 * log rows of the calls again, as migration 1765600000000 found them, in a table like the log (its indexes
 * included, rows in time order as ingest appends them) and takes off the call tables' columns that migration added.
 */
async function diskOf(database: string, events: number): Promise<Disk> {
  return withClient(databaseUrl(database), async (c) => {
    const size = async (): Promise<Map<string, number>> => {
      const { rows } = await c.query<{ family: string; bytes: string }>(
        `SELECT regexp_replace(relname, '_p[0-9]{8}$', '') AS family, sum(pg_total_relation_size(oid))::text AS bytes
           FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace GROUP BY 1`,
      );
      return new Map(rows.map((row) => [row.family, Number(row.bytes)]));
    };
    const sum = (sizes: Map<string, number>) => [...sizes.values()].reduce((a, b) => a + b, 0);
    const perMillion = (bytes: number) => (bytes / events) * 1e6;
    await c.query('VACUUM ANALYZE');
    const after = await size();
    const [added] = (
      await c.query<{ bytes: string }>(
        `SELECT ((SELECT COALESCE(sum(pg_column_size(payload) + COALESCE(pg_column_size(log_trace_id), 0)), 0) FROM llm_calls)
               + (SELECT COALESCE(sum(pg_column_size(payload) + COALESCE(pg_column_size(log_trace_id), 0)), 0) FROM tool_calls)
               + (SELECT COALESCE(sum(pg_column_size(payload) + COALESCE(pg_column_size(trace_id), 0)), 0) FROM external_charges)
               )::text AS bytes`,
      )
    ).rows;
    await c.query(`CREATE TABLE bench_call_log (LIKE event_log INCLUDING DEFAULTS INCLUDING INDEXES)`);
    await c.query(
      `INSERT INTO bench_call_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
       SELECT source, event_id, tenant_id, run_id, type, time, payload, trace_id FROM events
        WHERE type IN ('llm_call', 'tool_call', 'external_charge') ORDER BY time`,
    );
    await c.query('VACUUM ANALYZE bench_call_log');
    const [log] = (await c.query<{ bytes: string }>(`SELECT pg_total_relation_size('bench_call_log')::text AS bytes`))
      .rows;
    await c.query('DROP TABLE bench_call_log');
    const before = sum(after) + Number(log!.bytes) - Number(added!.bytes);
    return {
      after: perMillion(sum(after)),
      before: perMillion(before),
      tables: [...after].sort((a, b) => b[1] - a[1]).map(([name, bytes]) => [name, perMillion(bytes)]),
    };
  });
}

/** The batch stage and record age histograms of ingest so far, from its /metrics. */
async function stagesOf(url: string): Promise<Histograms> {
  const [stages, ages] = await Promise.all([
    scrapeHistograms(url, STAGE_HISTOGRAMS, 'stage'),
    scrapeHistograms(url, [AGE_HISTOGRAM], 'point'),
  ]);
  return new Map([...stages, ...ages]);
}

/** Batches ingest has written so far, from its /metrics. */
async function batchesOf(url: string): Promise<NonNullable<Measurement['batches']>> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const sizeSum = metric(metrics, 'agentmeter_ingest_batch_size_sum');
  const count = metric(metrics, 'agentmeter_ingest_batch_size_count');
  return {
    count,
    meanSize: count ? sizeSum / count : 0,
    secondsSum: metric(metrics, 'agentmeter_ingest_batch_duration_seconds_sum'),
  };
}

// ---------------------------------------------------------------------------------------------------
// The one clock for both: group Stable -> every partition committed up to its high watermark.

/**
 * Waits until the group is Stable with all its members (start-up, the join and the rebalances while
 * members join are not measured).
 */
async function waitStable(
  admin: Admin,
  groupId: string,
  members: number,
  failed: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const error = failed();
    if (error) throw error;
    if (Date.now() > deadline) throw new Error(`group ${groupId} did not become stable in ${TIMEOUT_MS} ms`);
    const [group] = (await admin.describeGroups([groupId])).groups;
    if (group?.state === 'Stable' && group.members.length >= members) return;
    await delay(POLL_MS);
  }
}

/** Waits until the group has committed every partition of `topic` up to its high watermark now. */
async function waitCaughtUp(
  admin: Admin,
  groupId: string,
  topic: string,
  failed: () => Error | undefined,
): Promise<void> {
  const ends = await admin.fetchTopicOffsets(topic);
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const error = failed();
    if (error) throw error;
    if (Date.now() > deadline) throw new Error(`group ${groupId} did not catch up in ${TIMEOUT_MS} ms`);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const done = ends.every((end) => {
      const offset = BigInt(committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1');
      return BigInt(end.high) === 0n || offset >= BigInt(end.high);
    });
    if (done) return;
    await delay(POLL_MS);
  }
}

async function watchGroup(
  admin: Admin,
  groupId: string,
  members: number,
  cpu: CpuProbe,
  failed: () => Error | undefined,
): Promise<Measurement> {
  const ends = await admin.fetchTopicOffsets(TOPIC);
  const high = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const total = [...high.values()].reduce((a, b) => a + b, 0n);
  const deadline = Date.now() + TIMEOUT_MS;
  const check = () => {
    const error = failed();
    if (error) throw error;
    if (Date.now() > deadline) throw new Error(`group ${groupId} did not catch up in ${TIMEOUT_MS} ms`);
  };
  const committed = async (): Promise<bigint[]> => {
    const [topic] = await admin.fetchOffsets({ groupId, topics: [TOPIC] });
    return [...high.keys()].map((p) => {
      const offset = BigInt(topic?.partitions.find((x) => x.partition === p)?.offset ?? '-1');
      return offset < 0n ? 0n : offset;
    });
  };

  await waitStable(admin, groupId, members, failed);
  const started = process.hrtime.bigint();
  const before = cpu.sample();
  const sampler = new WaitSampler(cpu.database);
  const sampling = sampler.run();
  const atStart = (await committed()).reduce((a, b) => a + b, 0n);
  for (;;) {
    check();
    const offsets = await committed();
    if ([...high.values()].every((end, i) => offsets[i]! >= end)) break;
    await delay(POLL_MS);
  }
  const ended = process.hrtime.bigint();
  const seconds = Number(ended - started) / 1e9;
  const after = cpu.sample();
  sampler.stop();
  const events = Number(total - atStart);
  return {
    events,
    seconds,
    rate: events / seconds,
    cpu: cpu.difference(await before, await after),
    waits: await sampling,
    window: { from: Number(started / 1000n), to: Number(ended / 1000n) },
  };
}

/** Samples pg_stat_activity for one database: what its busy backends are doing (or waiting for). */
class WaitSampler {
  private stopped = false;

  constructor(private readonly database: string) {}

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<Measurement['waits']> {
    const states = new Map<string, number>();
    let samples = 0;
    await withClient(databaseUrl('postgres'), async (client) => {
      while (!this.stopped) {
        const { rows } = await client.query<{ state: string; wait: string | null; query: string }>(
          `SELECT state, wait_event_type || ':' || wait_event AS wait, left(query, 200) AS query
           FROM pg_stat_activity
           WHERE datname = $1 AND backend_type = 'client backend' AND state <> 'idle'`,
          [this.database],
        );
        samples += 1;
        for (const { state, wait, query } of rows) {
          // Lock waits and work are named after the statement; "idle in transaction" is the client's time.
          const label =
            state === 'active'
              ? wait
                ? `${statementName(query)}: waiting on ${wait}`
                : `${statementName(query)}: executing`
              : state === 'idle in transaction'
                ? 'idle in transaction (client busy between statements)'
                : state;
          states.set(label, (states.get(label) ?? 0) + 1);
        }
        await delay(POLL_MS);
      }
    });
    return { samples, states };
  }
}

/** CPU time of the consumer process, of the PostgreSQL backends of one database, and of the broker. */
class CpuProbe {
  private readonly brokerPid = kafkaPid();

  constructor(
    private readonly consumerPid: number,
    readonly database: string,
  ) {}

  async sample(): Promise<{
    consumer: number;
    backends: Map<number, number>;
    kafka: number | null;
    machine: number;
    processes: Map<number, number>;
  }> {
    const machine = machineCpu();
    const processes = allProcesses();
    const consumer = this.consumerPid === process.pid ? selfCpu() : procCpu(this.consumerPid);
    const kafka = this.brokerPid ? procCpu(this.brokerPid) : null;
    const pids = await withClient(databaseUrl('postgres'), (c) =>
      c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [this.database]),
    );
    const backends = new Map<number, number>();
    for (const { pid } of pids.rows) {
      const used = procCpu(pid);
      if (used !== null) backends.set(pid, used);
    }
    return { consumer: consumer ?? 0, backends, kafka, machine, processes };
  }

  difference(a: Awaited<ReturnType<CpuProbe['sample']>>, b: Awaited<ReturnType<CpuProbe['sample']>>): CpuUse {
    let postgres = 0;
    for (const [pid, used] of b.backends) postgres += used - (a.backends.get(pid) ?? 0);
    const consumer = b.consumer - a.consumer;
    const kafka = a.kafka !== null && b.kafka !== null ? b.kafka - a.kafka : null;
    const others = new Map<string, number>();
    for (const [pid, used] of b.processes) {
      if (b.backends.has(pid) || pid === this.brokerPid || pid === this.consumerPid) continue;
      const name = pid === process.pid ? 'this benchmark (polling)' : commandOf(pid);
      const delta = used - (a.processes.get(pid) ?? 0);
      if (delta > 0) others.set(name, (others.get(name) ?? 0) + delta);
    }
    return {
      consumer,
      postgres,
      kafka,
      other: Math.max(0, b.machine - a.machine - consumer - postgres - (kafka ?? 0)),
      others: [...others].sort((x, y) => y[1] - x[1]).slice(0, 4),
    };
  }
}

// ---------------------------------------------------------------------------------------------------
// Latency: event-to-queryable at a fixed offered rate.

/**
 * One side's latency run. The consumer starts on an empty topic and joins its group; then this process
 * publishes workload events (keyed by run, like the throughput workload; beyond its end the events are
 * reused with a new id suffix, so all are new) at `rate` events/s, a chunk every PRODUCE_TICK_MS, for
 * LATENCY_WARMUP_SECONDS + LATENCY_SECONDS. About PROBES_PER_SECOND of them are probes: the time just before `producer.send` of
 * their chunk is recorded, and a poller on its own connection looks all outstanding probes up by key
 * every VISIBILITY_POLL_MS. A probe's latency is the start of the first lookup that finds its row minus
 * its publish time: publish, broker, fetch, decode, write, commit and visibility to another session,
 * overstated by at most one poll interval. Probes of the warm-up (JIT, first partitions and tenants)
 * are not counted. The stored rows' `received_at` is not used: it is `now()`, the transaction's start,
 * which precedes the commit that makes the row queryable by the whole transaction.
 */
async function measureLatency(
  kafka: Kafka,
  admin: Admin,
  side: Side,
  topicPrefix: string,
  groupId: string,
  database: string,
  rate: number,
  events: readonly WorkloadEvent[],
  children: Set<ChildProcess>,
): Promise<LatencyRun> {
  const topic = topicName(topicPrefix, Topics.AgentEvents);
  const ingest = side === 'ingest' ? await startIngest(groupId, database, topicPrefix, children) : null;
  const query = side === 'ingest' ? await startQuery(database, children) : null;
  const consumer = ingest?.consumer ?? startBaseline(groupId, topic, database, 'raw_latency', children);
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  try {
    await producer.connect();
    await waitStable(admin, groupId, side === 'baseline' ? 1 : INGEST_MEMBERS, consumer.failure);
    // By key: the index on raw_latency (event_id), the primary key of events (source, event_id, time).
    const source = events[0]!.source;
    const lookUp = (ids: string[]) =>
      side === 'baseline'
        ? { text: 'SELECT event_id FROM raw_latency WHERE event_id = ANY($1::text[])', values: [ids] }
        : {
            text: 'SELECT event_id FROM events WHERE source = $1 AND event_id = ANY($2::text[])',
            values: [source, ids],
          };
    const every = Math.max(1, Math.round(rate / PROBES_PER_SECOND));
    const total = Math.round(rate * (LATENCY_WARMUP_SECONDS + LATENCY_SECONDS));
    const published = new Map<string, number>(); // probe id -> publish time (performance.now())
    const latencies: Array<{ at: number; ms: number }> = [];
    let producing = true;
    // Freshness probes (ingest only): an llm_call of a run of its own, published in place of a workload
    // event, awaited in GET /runs/{id}/metrics of the query service.
    const apiEvery = Math.max(1, Math.round(rate / API_PROBES_PER_SECOND));
    const template = events.find((event) => event.type === 'llm_call')!;
    const apiPublished = new Map<string, number>(); // probe run id -> publish time
    const fresh: Array<{ at: number; ms: number }> = [];
    const unavailable = new Map<string, number>(); // 503 answers of the query service by detail
    const apiPoll = query
      ? (async () => {
          const token = await apiToken(template.data.tenant_id);
          let deadline = Number.POSITIVE_INFINITY;
          while (producing || apiPublished.size > 0) {
            const error = consumer.failure() ?? query.consumer.failure();
            if (error) throw error;
            if (!producing && deadline === Number.POSITIVE_INFINITY) deadline = performance.now() + 60_000;
            if (performance.now() > deadline) throw new Error(`${apiPublished.size} runs never showed their call`);
            const started = performance.now();
            await Promise.all(
              [...apiPublished].map(async ([runId, at]) => {
                const response = await fetch(`${query.url}/runs/${runId}/metrics`, {
                  headers: { authorization: `Bearer ${token}` },
                });
                const body = (await response.json()) as { totals?: { llm_calls?: number }; detail?: string };
                if (response.status === 404) return;
                // Unavailable for a moment (a database pool exhausted on a saturated machine): the user retries,
                // and the probe's freshness includes the wait. Counted and reported.
                if (response.status === 503) {
                  unavailable.set(body.detail ?? 'no detail', (unavailable.get(body.detail ?? 'no detail') ?? 0) + 1);
                  return;
                }
                if (!response.ok) throw new Error(`GET /runs/${runId}/metrics: ${response.status}`);
                if ((body.totals?.llm_calls ?? 0) < 1) return;
                fresh.push({ at, ms: started - at });
                apiPublished.delete(runId);
              }),
            );
            await delay(Math.max(1, API_POLL_MS - (performance.now() - started)));
          }
        })()
      : Promise.resolve();

    const poll = withClient(databaseUrl(database), async (client) => {
      let deadline = Number.POSITIVE_INFINITY;
      while (producing || published.size > 0) {
        const error = consumer.failure();
        if (error) throw error;
        if (!producing && deadline === Number.POSITIVE_INFINITY) deadline = performance.now() + 60_000;
        if (performance.now() > deadline) {
          const missing = [...published.keys()];
          const types = events.filter((e) => missing.some((m) => m.startsWith(e.id))).map((e) => e.type);
          throw new Error(
            `${missing.length} probes never became visible: ${missing.slice(0, 5).join(', ')} (${types.join(', ')})\n` +
              consumer.log,
          );
        }
        const started = performance.now();
        if (published.size > 0) {
          const { rows } = await client.query<{ event_id: string }>(lookUp([...published.keys()]));
          for (const { event_id: probe } of rows) {
            const at = published.get(probe);
            if (at === undefined) continue;
            latencies.push({ at, ms: started - at });
            published.delete(probe);
          }
        }
        await delay(Math.max(1, VISIBILITY_POLL_MS - (performance.now() - started)));
      }
    });

    const cpu = new CpuProbe(consumer.pid, database);
    const start = performance.now();
    const measuredFrom = start + LATENCY_WARMUP_SECONDS * 1000;
    let before: ReturnType<CpuProbe['sample']> | undefined;
    let stagesBefore: Promise<Histograms> | undefined;
    let sent = 0;
    let behindMs = 0;
    try {
      while (sent < total) {
        const now = performance.now();
        if (!before && now >= measuredFrom) {
          before = cpu.sample();
          if (ingest) stagesBefore = stagesOf(ingest.url);
        }
        const due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
        if (due <= sent) {
          await delay(PRODUCE_TICK_MS);
          continue;
        }
        if (now >= measuredFrom) behindMs = Math.max(behindMs, now - (start + (sent / rate) * 1000));
        const messages: Message[] = [];
        for (let i = sent; i < Math.min(due, sent + 2000); i++) {
          const headers = { 'content-type': 'application/cloudevents+json; charset=UTF-8' };
          if (query && i % apiEvery === apiEvery - 1) {
            const { key: _key, ...probe } = template;
            const runId = `fresh-${id}-${i}`;
            apiPublished.set(runId, now);
            const data = { ...probe.data, run_id: runId };
            messages.push({ key: runId, value: JSON.stringify({ ...probe, id: runId, data }), headers });
            continue;
          }
          const { key, ...event } = events[i % events.length]!;
          const round = Math.floor(i / events.length);
          const eventId = round === 0 ? event.id : `${event.id}-r${round}`;
          if (i % every === 0) published.set(eventId, now);
          messages.push({ key, value: JSON.stringify({ ...event, id: eventId }), headers });
        }
        await producer.send({ topic, messages });
        sent += messages.length;
        // Chunks of a tick: a produce request per millisecond would cost this process more than the
        // consumers under test.
        await delay(Math.max(0, PRODUCE_TICK_MS - (performance.now() - now)));
      }
    } finally {
      producing = false;
    }
    const seconds = (performance.now() - measuredFrom) / 1000;
    const after = cpu.sample();
    const stagesAfter = ingest ? stagesOf(ingest.url) : undefined;
    await poll;
    await apiPoll;
    await waitCaughtUp(admin, groupId, topic, consumer.failure);
    const error = consumer.failure();
    if (error) throw error;
    const measured = (probes: Array<{ at: number; ms: number }>) =>
      probes
        .filter((probe) => probe.at >= measuredFrom)
        .map((probe) => probe.ms)
        .sort((a, b) => a - b);
    return {
      ...(ingest ? { batches: await batchesOf(ingest.url) } : {}),
      ...(stagesBefore && stagesAfter ? { stages: histogramDelta(await stagesBefore, await stagesAfter) } : {}),
      side,
      offered: rate,
      sent: Math.round(sent - rate * LATENCY_WARMUP_SECONDS),
      seconds,
      latencies: measured(latencies),
      ...(query ? { fresh: measured(fresh), unavailable } : {}),
      behindMs,
      cpu: cpu.difference(await before!, await after),
    };
  } finally {
    await producer.disconnect();
    await consumer.stop();
    await query?.consumer.stop();
  }
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function describeLatency(run: LatencyRun): string {
  const l = run.latencies;
  return (
    `${run.offered} events/s offered, ${run.sent} sent in ${run.seconds.toFixed(1)} s, ${l.length} probes: ` +
    `p50 ${percentile(l, 0.5).toFixed(0)} ms, p99 ${percentile(l, 0.99).toFixed(0)} ms, max ${(l.at(-1) ?? NaN).toFixed(0)} ms; ` +
    (run.fresh
      ? `run metrics: ${run.fresh.length} probes, p50 ${percentile(run.fresh, 0.5).toFixed(0)} ms, ` +
        `p99 ${percentile(run.fresh, 0.99).toFixed(0)} ms, max ${(run.fresh.at(-1) ?? NaN).toFixed(0)} ms; `
      : '') +
    `producer behind at most ${run.behindMs.toFixed(0)} ms; cpu s: consumer ${run.cpu.consumer.toFixed(1)}, ` +
    `postgres ${run.cpu.postgres.toFixed(1)}, rest ${run.cpu.other.toFixed(1)} ` +
    `[${run.cpu.others.map(([n, v]) => `${n}: ${v.toFixed(1)}`).join('; ')}]` +
    (run.batches
      ? `; ${run.batches.count} batches of ~${Math.round(run.batches.meanSize)}, ` +
        `${((run.batches.secondsSum / run.batches.count) * 1000).toFixed(0)} ms each`
      : '')
  );
}

// ---------------------------------------------------------------------------------------------------
// Report.

/** A statement's kind and table, for the wait samples. */
function statementName(sql: string): string {
  const text = sql.trim().replace(/\s+/g, ' ');
  const write = /^(INSERT INTO|UPDATE|DELETE FROM) (\w+)/i.exec(text);
  if (write) return `${write[1]!.split(' ')[0]!.toUpperCase()} ${write[2]}`;
  const partition = /^CREATE TABLE .*PARTITION OF (\w+)/i.exec(text);
  if (partition) return `CREATE TABLE … PARTITION OF ${partition[1]}`;
  if (/^SELECT /i.test(text)) {
    const from = /\bFROM (\w+)/i.exec(text);
    return from ? `SELECT … FROM ${from[1]}` : `SELECT ${/^SELECT ([\w.]+)/i.exec(text)?.[1] ?? '…'}`;
  }
  return text.split(' ').slice(0, 2).join(' ').toUpperCase();
}

function report(r: {
  total: number;
  bytes: number;
  baseline: Measurement[];
  ingest: Measurement[];
  profile: Profile | null;
  disk: Disk | null;
}): string {
  const mb = median(r.baseline.map((m) => m.rate));
  const mi = median(r.ingest.map((m) => m.rate));
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const runs = r.baseline.map((_, i) => `run ${i + 1}`);
  const rateRow = (name: string, ms: Measurement[], med: number) =>
    `| ${name} | ${ms.map((m) => `${fmt(m.rate)} (${m.seconds.toFixed(2)} s)`).join(' | ')} | **${fmt(med)}** |`;
  const cores = (m: Measurement[], pick: (c: CpuUse) => number | null) => {
    const values = m.map((x) => pick(x.cpu)).filter((v): v is number => v !== null);
    if (values.length === 0) return 'n/a';
    return median(values.map((v, i) => v / m[i]!.seconds)).toFixed(2);
  };
  const perEvent = (m: Measurement[], pick: (c: CpuUse) => number) =>
    median(m.map((x) => (pick(x.cpu) / x.events) * 1e6)).toFixed(0);
  const lines = [
    '## Ingest throughput',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at ${commit()}, Node ${process.version}, ` +
      `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}; Kafka, PostgreSQL and the consumer on the same machine.`,
    `Workload: ${fmt(r.total)} events (${WORKLOAD.tenants} tenants × ${WORKLOAD.projectsPerTenant} projects × ` +
      `${WORKLOAD.runsPerProject} runs, mean ${(r.bytes / r.total).toFixed(0)} B), one topic with ${PARTITIONS} ` +
      `partitions, published before the clock starts. Ingest ran with OpenTelemetry ${INGEST_OTEL ? 'on' : 'off'}` +
      ` and default pool/concurrency${PASS_THROUGH.filter((k) => env[k])
        .map((k) => `, ${k}=${env[k]}`)
        .join('')}.`,
    '',
    '- **baseline**: a bare kafkajs consumer in its own process (eachBatch, offsets committed per batch, the',
    '  fetch settings of `BatchConsumer`) that `JSON.parse`s each message and appends the batch to a plain table',
    '  (no keys) with one `COPY … FROM STDIN`: the least a durable Kafka → PostgreSQL consumer does.',
    '- **AgentMeter**: the compiled ingest service (`dist/ingest`) as its own process, with a fresh consumer group',
    '  and a fresh migrated database each run, so every event is validated, inserted and projected.',
    '- Both are timed from outside the same way: from the consumer group becoming Stable (process start-up and',
    '  group join excluded) until it has committed every partition up to the high watermark. Runs interleave',
    '  (baseline, ingest, baseline, …); the row counts are checked after each run.',
    '',
    `| events/s (time) | ${runs.join(' | ')} | median |`,
    `| --- | ${runs.map(() => '---:').join(' | ')} | ---: |`,
    rateRow('baseline (kafkajs + COPY, plain table)', r.baseline, mb),
    rateRow('AgentMeter ingest service', r.ingest, mi),
    '',
    `**ingest / baseline = ${(mi / mb).toFixed(2)}** (ratio of medians).`,
    '',
    'Where the CPU went during the measured window (median cores busy; µs of CPU per event):',
    '',
    '| | consumer process | PostgreSQL backends | Kafka broker | rest of the machine |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| baseline | ${cores(r.baseline, (c) => c.consumer)} (${perEvent(r.baseline, (c) => c.consumer)} µs) | ` +
      `${cores(r.baseline, (c) => c.postgres)} (${perEvent(r.baseline, (c) => c.postgres)} µs) | ` +
      `${cores(r.baseline, (c) => c.kafka)} | ${cores(r.baseline, (c) => c.other)} |`,
    `| ingest | ${cores(r.ingest, (c) => c.consumer)} (${perEvent(r.ingest, (c) => c.consumer)} µs) | ` +
      `${cores(r.ingest, (c) => c.postgres)} (${perEvent(r.ingest, (c) => c.postgres)} µs) | ` +
      `${cores(r.ingest, (c) => c.kafka)} | ${cores(r.ingest, (c) => c.other)} |`,
  ];
  const waitTable = (name: string, ms: Measurement[]) => {
    const samples = ms.reduce((sum, m) => sum + m.waits.samples, 0);
    const states = new Map<string, number>();
    for (const m of ms) for (const [k, v] of m.waits.states) states.set(k, (states.get(k) ?? 0) + v);
    if (samples === 0) return [];
    return [...states]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 8)
      .map(([label, n]) => `| ${name} | ${label} | ${(n / samples).toFixed(2)} |`);
  };
  lines.push(
    '',
    `PostgreSQL backends of the measured database, sampled every ${POLL_MS} ms: mean number of backends in`,
    'each state (idle connections left out; "executing" means on CPU or in an uninstrumented wait). Top 8:',
    '',
    '| | state | backends |',
    '| --- | --- | ---: |',
    ...waitTable('baseline', r.baseline),
    ...waitTable('ingest', r.ingest),
  );
  const b = r.ingest.map((m) => m.batches).filter((x) => x !== undefined);
  if (b.length > 0) {
    lines.push(
      '',
      `Ingest batches (median of runs): ${fmt(median(b.map((x) => x.count)))} batches of ` +
        `${fmt(median(b.map((x) => x.meanSize)))} events, ` +
        `${((median(b.map((x) => x.secondsSum / x.count)) || 0) * 1000).toFixed(0)} ms each ` +
        `(decode + store + commit); batches in flight on average ` +
        `${median(r.ingest.map((m) => (m.batches?.secondsSum ?? 0) / m.seconds)).toFixed(2)}.`,
    );
  }
  if (r.disk) {
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
    lines.push(
      '',
      'Disk per million events (the last ingest run: tables, TOAST and indexes after VACUUM ANALYZE):',
      '',
      '| storage | per million events |',
      '| --- | ---: |',
      `| before: call rows in the event log too (built again from the same rows) | ${mb(r.disk.before)} |`,
      `| after: call facts stored once (migration 1765600000000) | **${mb(r.disk.after)}** |`,
      '',
      `Largest tables after: ${r.disk.tables
        .slice(0, 6)
        .map(([name, bytes]) => `\`${name}\` ${mb(bytes)}`)
        .join(', ')}.`,
    );
  }
  const last = r.ingest.at(-1);
  if (last?.stages) {
    lines.push(
      '',
      `Stages of ingest's batches in the last run (its /metrics: \`agentmeter_kafka_consumer_batch_stage_seconds\`, ` +
        '`agentmeter_ingest_stage_seconds`; p99 is the histogram bucket it falls in):',
      '',
      stageTable([['ingest', last.stages]]),
    );
  }
  if (r.profile) {
    const { summary, run } = r.profile;
    const perEvent = (share: number) => ((share * run.cpu.consumer * 1e6) / run.events).toFixed(1);
    lines.push(
      '',
      `CPU profile of the ingest process (\`--cpu-prof\`) over one more run, not counted above (${fmt(run.rate)} ` +
        `events/s; ${((run.cpu.consumer * 1e6) / run.events).toFixed(0)} µs of CPU per event in the process, ` +
        `${fmt(summary.busy)} of ${fmt(summary.samples)} samples busy in the measured window), by code (self time):`,
      '',
      '| code | share | µs/event |',
      '| --- | ---: | ---: |',
      ...summary.groups
        .filter(([, share]) => share >= 0.005)
        .map(([group, share]) => `| ${group} | ${(share * 100).toFixed(1)} % | ${perEvent(share)} |`),
      '',
      'Functions with the most self time:',
      '',
      '| function | share | µs/event |',
      '| --- | ---: | ---: |',
      ...summary.functions
        .slice(0, 15)
        .map(([name, share]) => `| \`${name || '(native)'}\` | ${(share * 100).toFixed(1)} % | ${perEvent(share)} |`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Per-batch stage times (mean and bucketed p99, ms) and record ages of ingest runs, one column pair per run. */
function stageTable(runs: Array<[name: string, stages: Histograms]>): string {
  const ms = (seconds: number) =>
    !Number.isFinite(seconds) ? (seconds > 0 ? '> 2,500' : '–') : (seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0);
  const row = (label: string, pick: (stages: Histograms) => string) =>
    `| ${label} | ${runs.map(([, stages]) => pick(stages)).join(' | ')} |`;
  const stage = (key: string) => (stages: Histograms) => {
    const series = stages.get(key);
    if (!series || series.count === 0) return '– | –';
    return `${ms(series.sum / series.count)} | ${ms(histogramQuantile(series, 0.99))}`;
  };
  const age = (point: string) => (stages: Histograms) => {
    const series = stages.get(`${AGE_HISTOGRAM}{point=${point}}`);
    return `${ms(histogramQuantile(series, 0.5))} | ${ms(histogramQuantile(series, 0.99))}`;
  };
  const batches = (stages: Histograms) =>
    String(stages.get('agentmeter_kafka_consumer_batch_stage_seconds{stage=decode}')?.count ?? 0);
  return [
    `| per batch, ms | ${runs.map(([name]) => `${name} mean | ${name} p99`).join(' | ')} |`,
    `| --- | ${runs.map(() => '---: | ---:').join(' | ')} |`,
    row('batches', (stages) => `${batches(stages)} | –`),
    ...STAGES.map(([key, label]) => row(label, stage(key))),
    row("oldest record's age when fetched (p50, p99)", age('fetched')),
    row("oldest record's age when committed (p50, p99)", age('committed')),
  ].join('\n');
}

function reportLatency(runs: LatencyRun[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(0)} ms` : 'n/a');
  const cores = (seconds: number, run: LatencyRun) => (seconds / run.seconds).toFixed(2);
  const [load1, load5] = loadavg();
  const staged = runs.flatMap((run): Array<[string, Histograms]> =>
    run.stages ? [[`${fmt(run.offered)}/s`, run.stages]] : [],
  );
  return [
    '## Ingest latency',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at ${commit()}, in the same run as the ` +
      `throughput above (same machine, build and settings; load average when it ended ${load1!.toFixed(2)} over 1 min, ` +
      `${load5!.toFixed(2)} over 5).`,
    `Offered load: ${LATENCY_RATES.map(fmt).join(' and ')} events/s in a chunk every ${PRODUCE_TICK_MS} ms, ` +
      `published by the benchmark process for ${LATENCY_SECONDS} s after a ${LATENCY_WARMUP_SECONDS} s warm-up that is not ` +
      'counted, to an empty topic with 3 partitions; each side and rate has its own topic, consumer group and database.',
    '',
    '- **Rows**: about ' +
      `${PROBES_PER_SECOND} events a second are probes. A probe's publish time is taken just before the`,
    '  `producer.send` of its chunk; a poller on its own connection looks every outstanding probe up by key',
    `  every ${VISIBILITY_POLL_MS} ms (baseline: an index on \`event_id\` of its plain table; ingest: the primary key`,
    '  of `events`). Latency = start of the first lookup that finds the row − publish time, so it covers',
    '  publish, broker, fetch, decode, write, commit and visibility to another session, and overstates by up',
    `  to one poll interval. \`received_at\` is not used: it is \`now()\`, the start of the writing transaction,`,
    '  so it misses the transaction itself and the commit.',
    `- **Run metrics** (ingest only; what a user sees): ${API_PROBES_PER_SECOND} events a second are \`llm_call\`s of`,
    '  a run of their own; the compiled query service runs on the same database, and every outstanding probe',
    `  run is asked for with \`GET /runs/{id}/metrics\` (a signed operator token) every ${API_POLL_MS} ms until`,
    '  `totals.llm_calls` shows the call. Freshness = start of that request − publish time.',
    '- **baseline**: the consumer process of the throughput runs (COPY per batch), writing a plain table with',
    '  that one index.',
    '',
    '| | offered events/s | published | probes | rows p50 | rows p99 | rows max | run metrics p50 | run metrics p99 | run metrics max | consumer cores | PostgreSQL cores | rest of the machine |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.map((run) => {
      const fresh = run.fresh ?? [];
      const api = run.fresh
        ? `${ms(percentile(fresh, 0.5))} | **${ms(percentile(fresh, 0.99))}** | ${ms(fresh.at(-1) ?? Number.NaN)}`
        : '– | – | –';
      return (
        `| ${run.side} | ${fmt(run.offered)} | ${fmt(run.sent / run.seconds)}/s | ${fmt(run.latencies.length)}` +
        `${run.fresh ? ` + ${fmt(fresh.length)}` : ''} | ` +
        `${ms(percentile(run.latencies, 0.5))} | **${ms(percentile(run.latencies, 0.99))}** | ` +
        `${ms(run.latencies.at(-1) ?? Number.NaN)} | ${api} | ${cores(run.cpu.consumer, run)} | ` +
        `${cores(run.cpu.postgres, run)} | ${cores(run.cpu.other, run)} |`
      );
    }),
    '',
    `The producer fell behind its schedule by at most ${runs.map((r) => `${r.behindMs.toFixed(0)} ms (${r.side}, ${fmt(r.offered)}/s)`).join(', ')}.`,
    ...runs
      .filter((run) => (run.unavailable?.size ?? 0) > 0)
      .map(
        (run) =>
          `The query service answered 503 to ${fmt([...run.unavailable!.values()].reduce((a, b) => a + b, 0))} ` +
          `probe requests at ${fmt(run.offered)}/s (retried at the next poll): ` +
          `${[...run.unavailable!].map(([detail, n]) => `${n} × "${detail.slice(0, 80)}"`).join(', ')}.`,
      ),
    ...(staged.length > 0
      ? [
          '',
          "Where an event's time goes in ingest at each rate (its /metrics over the measured window; the age of a",
          "batch's oldest record is from its Kafka timestamp, so it covers publish → fetch and publish → commit):",
          '',
          stageTable(staged),
        ]
      : []),
    '',
  ].join('\n');
}

const INTRO = `# Benchmarks

Throughput of AgentMeter's hot paths, each measured against a **baseline measured in the same run** on
the same machine, so the number that matters is the ratio, not the absolute rate (which depends on the
machine; the recorded numbers come from a 2-core VM with Kafka, PostgreSQL and the consumer side by
side). Benchmarks are run by hand and never asserted in tests.

Run them with \`make bench\` (all) or \`make bench BENCH=ingest\` (one of ingest, admission, query): \`bench/run.sh\`
builds the service measured and the benchmark, after \`make install\` and \`make infra\`. Each benchmark creates its own databases
and topics, removes them afterwards, and rewrites its own section below. On a shared machine, look at
the "rest of the machine" column: CPU other processes took during the measured window skews both sides.
`;

/**
 * Replaces each section (its "## " heading up to the next heading); a missing one goes right after the
 * section before it in `sections`, or at the end.
 */
function writeDoc(sections: string[]): void {
  const path = join(ROOT, 'docs', 'benchmarks.md');
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : INTRO;
  let insertAt = doc.length;
  for (const section of sections) {
    const heading = section.slice(0, section.indexOf('\n'));
    const start = doc.indexOf(`${heading}\n`);
    const next = start < 0 ? -1 : doc.indexOf('\n## ', start);
    const from = start < 0 ? insertAt : start;
    const to = start < 0 ? insertAt : next < 0 ? doc.length : next + 1;
    const before = start < 0 && !doc.slice(0, from).endsWith('\n\n') ? '\n' : '';
    const text = `${before}${section}${to < doc.length ? '\n' : ''}`; // a blank line before the next heading
    doc = `${doc.slice(0, from)}${text}${doc.slice(to)}`;
    insertAt = from + text.length;
  }
  writeFileSync(path, doc);
}

// ---------------------------------------------------------------------------------------------------
// Small helpers.

async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'agentmeter-bench' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function count(database: string, table: string): Promise<number> {
  const result = await withClient(databaseUrl(database), (c) =>
    c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`),
  );
  return Number(result.rows[0]!.n);
}

function metric(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

function procCpu(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** CPU seconds of every process on the machine, by pid. */
function allProcesses(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const used = procCpu(Number(entry));
    if (used !== null) out.set(Number(entry), used);
  }
  return out;
}

function commandOf(pid: number): string {
  try {
    const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return (line || readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).replace(/^\S*\//, '').slice(0, 60);
  } catch {
    return `pid ${pid}`;
  }
}

/** Busy CPU seconds of the whole machine since boot (all cores). */
function machineCpu(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const values = ticks.map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return (values.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / CLK_TCK;
}

function selfCpu(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

function clockTicks(): number {
  try {
    return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

function kafkaPid(): number | null {
  const file = join(ROOT, '.local', 'kafka', 'kafka.pid');
  const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : NaN;
  return Number.isInteger(pid) && procCpu(pid) !== null ? pid : null;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function describe(m: Measurement): string {
  const c = m.cpu;
  return (
    `${Math.round(m.rate)} events/s (${m.events} in ${m.seconds.toFixed(2)} s; cpu s: consumer ` +
    `${c.consumer.toFixed(1)}, postgres ${c.postgres.toFixed(1)}, kafka ${c.kafka?.toFixed(1) ?? 'n/a'}, ` +
    `rest ${c.other.toFixed(1)} [${c.others.map(([n, v]) => `${n}: ${v.toFixed(1)}`).join('; ')}]` +
    `${m.batches ? `; ${m.batches.count} batches of ~${Math.round(m.batches.meanSize)}` : ''})`
  );
}

function commit(): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: ROOT, encoding: 'utf8' }).trim();
    return `commit ${sha}${dirty ? ' (with local changes)' : ''}`;
  } catch {
    return 'an unknown commit';
  }
}

function findRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'nest-cli.json'))) return dir;
  }
  throw new Error(`repository root not found above ${from}`);
}

function onceOnly(work: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= work());
}

if (process.argv[2] === BASELINE_CONSUMER) {
  runBaselineConsumer().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
