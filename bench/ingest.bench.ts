/**
 * Ingest throughput: the real ingest service against a raw baseline measured in the same run.
 *
 * Run (from the repository root, after `make install` and `make infra`):
 *
 *   bench/run.sh
 *
 * which is exactly:
 *
 *   npx nest build ingest && rm -rf dist/bench && npx tsc -p bench/tsconfig.json
 *   cp -r dist/ingest dist/bench/ingest      # the service measured; a rebuild cannot pull it away
 *   TS_NODE_PROJECT=tsconfig.json TS_NODE_BASEURL=dist/bench \
 *     node --enable-source-maps -r tsconfig-paths/register dist/bench/bench/ingest.bench.js
 *
 * (bench/ is outside the Nest builds; tsc emits dist/bench/{bench,libs,services}/… and tsconfig-paths
 * maps the @agentmeter/* aliases onto dist/bench/libs/<name>/src at run time.)
 *
 * What it does:
 *   - creates its own databases (am_bench_<id>_*) and topics (bench<id>.*, 3 partitions) and removes
 *     them at the end, whatever happens;
 *   - generates a seeded workload of ~100k events and publishes it to bench<id>.agent.events.v1
 *     before anything is measured;
 *   - baseline: a bare kafkajs consumer (eachBatch, autoCommit off, commit per batch, same fetch
 *     settings as BatchConsumer) that JSON.parses each message and writes each batch into a plain
 *     table with one INSERT … SELECT FROM unnest() (pg-copy-streams is not installed, so no COPY);
 *   - AgentMeter: the compiled ingest service (dist/ingest) as its own process, fresh consumer group
 *     and fresh migrated database per repetition, so every event is really inserted and projected;
 *   - both are timed the same way from outside: from the moment the group is Stable (partitions
 *     assigned, fetching starts) until the group has committed every partition up to its high
 *     watermark. Start-up of the process and the group join are excluded;
 *   - repeats each BENCH_REPEAT (3) times, interleaved, and reports medians and ingest/baseline;
 *   - then profiles the ingest code path in-process (decode, each SQL statement, the rest) on one
 *     connection, to show where the time goes;
 *   - prints markdown and rewrites the "Ingest throughput" section of docs/benchmarks.md
 *     (BENCH_WRITE_DOC=0 to leave it alone).
 *
 * Environment: DATABASE_URL (admin URL; databases are created beside it), KAFKA_BROKERS, BENCH_REPEAT,
 * BENCH_RUNS_PER_PROJECT (workload size), BENCH_INGEST_OTEL=1 (run ingest with its OpenTelemetry SDK
 * on, as production does; off by default like the e2e tests), BENCH_PROFILE=0 (skip the profile), and
 * DATABASE_POOL_SIZE / INGEST_PARTITIONS_CONCURRENTLY, passed through to the ingest service.
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Test } from '@nestjs/testing';
import { Kafka, logLevel, type Admin, type EachBatchPayload } from 'kafkajs';
import { Client, Pool } from 'pg';
import { ALL_TOPICS, decodeKafkaEvent, topicName, Topics, type AgentEvent } from '@agentmeter/contracts';
import { dropDatabase, ensureDatabase, listDatabases, migrate } from '@agentmeter/database';
import { eventually } from '../libs/testing/src/eventually';
import { publishEvents } from '../libs/testing/src/publish';
import { freePort } from '../libs/testing/src/services';
import { generateWorkload } from '../libs/testing/src/workload';
import { IngestModule } from '../services/ingest/src/app.module';
import { loadConfig } from '../services/ingest/src/config';
import { EventsConsumer } from '../services/ingest/src/events/events.consumer';
import { EventsService } from '../services/ingest/src/events/events.service';

const env = process.env;
const ROOT = findRoot(__dirname);
const ADMIN_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/agentmeter';
const BROKERS = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
const REPEAT = Number(env.BENCH_REPEAT ?? 3);
const RUNS_PER_PROJECT = Number(env.BENCH_RUNS_PER_PROJECT ?? 23);
const WORKLOAD = { seed: 20261125, tenants: 10, projectsPerTenant: 12, runsPerProject: RUNS_PER_PROJECT };
const PARTITIONS = 3;
const POLL_MS = 20;
const TIMEOUT_MS = 15 * 60_000;
const INGEST_OTEL = env.BENCH_INGEST_OTEL === '1';
const PASS_THROUGH = ['DATABASE_POOL_SIZE', 'INGEST_PARTITIONS_CONCURRENTLY'];
const CLK_TCK = clockTicks();

const id = randomBytes(3).toString('hex');
const DB_PREFIX = `am_bench_${id}`;
const TOPIC_PREFIX = `bench${id}.`;
const TOPIC = topicName(TOPIC_PREFIX, Topics.AgentEvents);

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
}

interface ProfileRow {
  step: string;
  ms: number;
}

async function main(): Promise<void> {
  const kafka = new Kafka({ clientId: 'agentmeter-bench', brokers: BROKERS, logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const groups: string[] = [];
  const children = new Set<ChildProcess>();
  const cleanup = onceOnly(async () => {
    await admin
      .deleteTopics({ topics: ALL_TOPICS.map((t) => topicName(TOPIC_PREFIX, t)) })
      .catch((e: unknown) => log(`could not delete topics: ${String(e)}`));
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.disconnect();
    for (const name of await listDatabases(ADMIN_URL, DB_PREFIX)) await dropDatabase(dbUrl(name));
    log(`removed databases ${DB_PREFIX}_* and topics ${TOPIC_PREFIX}*`);
  });
  const interrupt = (signal: NodeJS.Signals) => {
    log(`${signal}: cleaning up`);
    for (const child of children) child.kill('SIGKILL');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  // Whatever ends this process, no ingest service outlives it (databases and topics are left behind
  // only on a hard crash; their names start with am_bench_ and bench).
  process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

  try {
    // --- set-up, outside every measurement -------------------------------------------------------
    await admin.createTopics({
      waitForLeaders: true,
      topics: ALL_TOPICS.map((t) => ({
        topic: topicName(TOPIC_PREFIX, t),
        numPartitions: PARTITIONS,
        replicationFactor: 1,
      })),
    });
    const template = `${DB_PREFIX}_tpl`;
    await ensureDatabase(dbUrl(template));
    await migrate(dbUrl(template));
    const rawDb = `${DB_PREFIX}_raw`;
    await ensureDatabase(dbUrl(rawDb));
    await withClient(dbUrl(rawDb), (c) =>
      c.query(`CREATE TABLE raw_events (source text, event_id text, tenant_id text, type text,
                 time timestamptz, payload jsonb)`),
    );

    const workload = generateWorkload({ ...WORKLOAD, start: new Date('2026-11-01T00:00:00Z'), prefix: 'bench' });
    const total = workload.events.length;
    const bytes = workload.events.reduce((sum, { key: _key, ...e }) => sum + JSON.stringify(e).length, 0);
    log(`workload: ${total} events (${(bytes / total).toFixed(0)} B mean), ${workload.truth.runs.length} runs`);
    const publishStarted = Date.now();
    await publishEvents(kafka, TOPIC, workload.events, 1000);
    const ends = await admin.fetchTopicOffsets(TOPIC);
    const published = ends.reduce((sum, p) => sum + Number(p.high), 0);
    if (published !== total) throw new Error(`published ${published} of ${total} events`);
    log(`published to ${TOPIC} in ${((Date.now() - publishStarted) / 1000).toFixed(1)} s`);

    // --- measurements, interleaved so drift hits both alike --------------------------------------
    const baseline: Measurement[] = [];
    const ingest: Measurement[] = [];
    for (let i = 1; i <= REPEAT; i++) {
      const groupB = `${TOPIC_PREFIX}baseline-${i}`;
      groups.push(groupB);
      await withClient(dbUrl(rawDb), (c) => c.query('TRUNCATE raw_events'));
      baseline.push(await measureBaseline(kafka, admin, groupB, rawDb, total));
      log(`baseline #${i}: ${describe(baseline.at(-1)!)}`);

      const groupI = `${TOPIC_PREFIX}ingest-${i}`;
      groups.push(groupI);
      const db = `${DB_PREFIX}_ingest${i}`;
      await ensureDatabase(dbUrl(db), template);
      ingest.push(await measureIngest(admin, groupI, db, total, children));
      log(`ingest   #${i}: ${describe(ingest.at(-1)!)}`);
      await dropDatabase(dbUrl(db));
    }

    let profile: { rows: ProfileRow[]; events: number; batch: number } | null = null;
    if (env.BENCH_PROFILE !== '0') {
      const meanBatch = median(ingest.map((m) => m.batches?.meanSize ?? 0));
      const batch = Math.max(50, Math.round(meanBatch || 500));
      const db = `${DB_PREFIX}_profile`;
      await ensureDatabase(dbUrl(db), template);
      profile = { rows: await profileIngest(dbUrl(db), workload.events, batch), events: total, batch };
      await dropDatabase(dbUrl(db));
    }

    const section = report({ total, bytes, baseline, ingest, profile });
    console.log(`\n${section}`);
    if (env.BENCH_WRITE_DOC !== '0') {
      writeDoc(section);
      log('updated docs/benchmarks.md');
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------
// Baseline: bare kafkajs consumer + one INSERT … unnest per batch into a plain table.

async function measureBaseline(
  kafka: Kafka,
  admin: Admin,
  groupId: string,
  database: string,
  total: number,
): Promise<Measurement> {
  const pool = new Pool({ connectionString: dbUrl(database), max: 10, application_name: 'agentmeter-bench-raw' });
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxWaitTimeInMs: 200,
  });
  let failure: Error | undefined;
  const onBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const rows = batch.messages.map(
      (m) =>
        JSON.parse(m.value!.toString('utf8')) as { source: string; id: string; type: string; time: string } & {
          data: { tenant_id: string };
        },
    );
    await pool.query(
      `INSERT INTO raw_events (source, event_id, tenant_id, type, time, payload)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])`,
      [
        rows.map((r) => r.source),
        rows.map((r) => r.id),
        rows.map((r) => r.data.tenant_id),
        rows.map((r) => r.type),
        rows.map((r) => r.time),
        rows.map((r) => JSON.stringify(r.data)),
      ],
    );
    const last = batch.messages[batch.messages.length - 1]!;
    resolveOffset(last.offset);
    await consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
    ]);
    await heartbeat();
  };
  try {
    const cpu = new CpuProbe(process.pid, database);
    const watch = watchGroup(admin, groupId, cpu, () => failure);
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: PARTITIONS,
      eachBatch: (payload) =>
        onBatch(payload).catch((error: unknown) => {
          failure = error as Error;
          throw error;
        }),
    });
    const window = await watch;
    const stored = await count(database, 'raw_events');
    if (stored !== total) throw new Error(`baseline stored ${stored} of ${total} events`);
    return window;
  } finally {
    await consumer.disconnect();
    await pool.end();
  }
}

// ---------------------------------------------------------------------------------------------------
// AgentMeter: the compiled ingest service as its own process (startService's logic, with the entry
// resolved from the repository root rather than from libs/testing's compiled location).

async function measureIngest(
  admin: Admin,
  groupId: string,
  database: string,
  total: number,
  children: Set<ChildProcess>,
): Promise<Measurement> {
  // bench/run.sh copies the Nest build of ingest to dist/bench/ingest; dist/ingest when run otherwise.
  const copy = join(ROOT, 'dist', 'bench', 'ingest', 'services', 'ingest', 'src', 'main.js');
  const entry = existsSync(copy) ? copy : join(ROOT, 'dist', 'ingest', 'services', 'ingest', 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`make build\` first`);
  const port = await freePort();
  const passed = Object.fromEntries(PASS_THROUGH.filter((k) => env[k]).map((k) => [k, env[k]!]));
  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    env: {
      PATH: env.PATH ?? '',
      LOG_LEVEL: 'warn',
      ...(INGEST_OTEL ? {} : { OTEL_SDK_DISABLED: 'true' }),
      ...passed,
      DATABASE_URL: dbUrl(database),
      KAFKA_BROKERS: BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: TOPIC_PREFIX,
      INGEST_GROUP_ID: groupId,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  // Keeps the head of the output (the first error is the useful one) and whether anything failed.
  let output = '';
  let errored = false;
  const capture = (chunk: Buffer) => {
    const text = chunk.toString();
    if (/"level":(50|60)/.test(text)) errored = true;
    if (output.length < 64 * 1024) output += text.slice(0, 64 * 1024 - output.length);
  };
  child.stdout!.on('data', capture);
  child.stderr!.on('data', capture);
  const exited = once(child, 'exit');
  const failure = () =>
    child.exitCode !== null || child.signalCode !== null
      ? new Error(`ingest exited (${child.exitCode ?? child.signalCode}):\n${output}`)
      : errored
        ? new Error(`ingest logged an error (a failed batch makes the run meaningless):\n${output}`)
        : undefined;
  try {
    const window = await watchGroup(admin, groupId, new CpuProbe(child.pid!, database), failure);
    const url = `http://127.0.0.1:${port}`;
    await eventually(async () => {
      if (!(await fetch(`${url}/health/ready`)).ok) throw new Error('ingest not ready');
    }, 30_000);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const sizeSum = metric(metrics, 'agentmeter_ingest_batch_size_sum');
    const batches = metric(metrics, 'agentmeter_ingest_batch_size_count');
    window.batches = {
      count: batches,
      meanSize: batches ? sizeSum / batches : 0,
      secondsSum: metric(metrics, 'agentmeter_ingest_batch_duration_seconds_sum'),
    };
    const stored = await count(database, 'events');
    if (stored !== total) throw new Error(`ingest stored ${stored} of ${total} events:\n${output}`);
    const error = failure();
    if (error) throw error;
    return window;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, delay(15_000).then(() => child.kill('SIGKILL'))]);
    }
    children.delete(child);
  }
}

// ---------------------------------------------------------------------------------------------------
// The one clock for both: group Stable -> every partition committed up to its high watermark.

async function watchGroup(
  admin: Admin,
  groupId: string,
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

  for (;;) {
    check();
    const [group] = (await admin.describeGroups([groupId])).groups;
    if (group?.state === 'Stable' && group.members.length > 0) break;
    await delay(POLL_MS);
  }
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
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = cpu.sample();
  sampler.stop();
  const events = Number(total - atStart);
  return {
    events,
    seconds,
    rate: events / seconds,
    cpu: cpu.difference(await before, await after),
    waits: await sampling,
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
    await withClient(dbUrl('postgres'), async (client) => {
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
    const pids = await withClient(dbUrl('postgres'), (c) =>
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
// Profile: the ingest code path in-process, on one connection, statement by statement.

async function profileIngest(
  url: string,
  events: ReadonlyArray<{ key: string } & object>,
  batchSize: number,
): Promise<ProfileRow[]> {
  const messages = events.map(({ key: _key, ...event }) => Buffer.from(JSON.stringify(event)));
  const headers = { 'content-type': 'application/cloudevents+json; charset=UTF-8' };
  const spent = new Map<string, number>();
  const add = (step: string, ns: bigint) => spent.set(step, (spent.get(step) ?? 0) + Number(ns) / 1e6);

  let t = process.hrtime.bigint();
  for (const m of messages) JSON.parse(m.toString('utf8'));
  const jsonOnly = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  const decoded: AgentEvent[] = [];
  for (const m of messages) {
    const result = decodeKafkaEvent(m, headers);
    if (!result.ok) throw new Error(result.reason);
    decoded.push(result.event);
  }
  add('decode (JSON.parse + zod validation)', process.hrtime.bigint() - t);

  // The service's own EventsService, wired by its own module (Kafka consumer replaced by a stub and no
  // lifecycle hooks run), so this follows whatever ingest does today. Every statement it sends goes
  // through pg's Client#query, timed here from call to result (parameter serialisation included).
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'warn', KAFKA_TOPIC_PREFIX: TOPIC_PREFIX });
  const moduleRef = await Test.createTestingModule({ imports: [IngestModule.forRoot(config)] })
    .overrideProvider(EventsConsumer)
    .useValue({ assertRunning: () => undefined })
    .compile();
  const original = Client.prototype.query;
  let timing = false;
  Client.prototype.query = function (this: Client, ...args: unknown[]) {
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    if (timing && typeof args[0] === 'string' && result instanceof Promise) {
      const started = process.hrtime.bigint();
      const label = `SQL ${statementName(args[0])}`;
      return result.finally(() => add(label, process.hrtime.bigint() - started));
    }
    return result;
  } as typeof Client.prototype.query;
  try {
    const service = moduleRef.get(EventsService);
    timing = true;
    t = process.hrtime.bigint();
    for (let i = 0; i < decoded.length; i += batchSize) await service.ingest(decoded.slice(i, i + batchSize));
    const ingestTotal = Number(process.hrtime.bigint() - t) / 1e6;
    timing = false;
    const sql = [...spent].filter(([k]) => k.startsWith('SQL')).reduce((sum, [, ms]) => sum + ms, 0);
    spent.set('JS in EventsService.ingest (dedupe, projections, parameter arrays, metrics)', ingestTotal - sql);
  } finally {
    timing = false;
    Client.prototype.query = original;
    await moduleRef.close();
  }
  const stored = await count(new URL(url).pathname.slice(1), 'events');
  if (stored !== decoded.length) throw new Error(`profile stored ${stored} of ${decoded.length} events`);
  const rows = [...spent].map(([step, ms]) => ({ step, ms }));
  rows.push({ step: '(for comparison: JSON.parse alone)', ms: jsonOnly });
  return rows;
}

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

// ---------------------------------------------------------------------------------------------------
// Report.

function report(r: {
  total: number;
  bytes: number;
  baseline: Measurement[];
  ingest: Measurement[];
  profile: { rows: ProfileRow[]; events: number; batch: number } | null;
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
    '- **baseline**: a bare kafkajs consumer (eachBatch, offsets committed per batch, the fetch settings of',
    '  `BatchConsumer`) that `JSON.parse`s each message and appends the batch to a plain table (no keys) with one',
    '  `INSERT … SELECT FROM unnest(…)`: the least a durable Kafka → PostgreSQL consumer does.',
    '- **AgentMeter**: the compiled ingest service (`dist/ingest`) as its own process, with a fresh consumer group',
    '  and a fresh migrated database each run, so every event is validated, inserted and projected.',
    '- Both are timed from outside the same way: from the consumer group becoming Stable (process start-up and',
    '  group join excluded) until it has committed every partition up to the high watermark. Runs interleave',
    '  (baseline, ingest, baseline, …); the row counts are checked after each run.',
    '',
    `| events/s (time) | ${runs.join(' | ')} | median |`,
    `| --- | ${runs.map(() => '---:').join(' | ')} | ---: |`,
    rateRow('baseline (kafkajs + INSERT unnest, plain table)', r.baseline, mb),
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
  if (r.profile) {
    const sum = r.profile.rows.filter((x) => !x.step.startsWith('(')).reduce((s, x) => s + x.ms, 0);
    lines.push(
      '',
      `Profile of the ingest code path in one process on one connection (${fmt(r.profile.events)} events in ` +
        `batches of ${r.profile.batch}, serial, so ${fmt(r.profile.events / (sum / 1000))} events/s; no Kafka):`,
      '',
      '| step | ms | share | µs/event |',
      '| --- | ---: | ---: | ---: |',
      ...r.profile.rows
        .sort((x, y) => (x.step.startsWith('(') ? 1 : y.step.startsWith('(') ? -1 : y.ms - x.ms))
        .map(
          (x) =>
            `| ${x.step} | ${fmt(x.ms)} | ${x.step.startsWith('(') ? '' : `${((x.ms / sum) * 100).toFixed(0)} %`} | ` +
            `${((x.ms * 1000) / r.profile!.events).toFixed(1)} |`,
        ),
    );
  }
  return `${lines.join('\n')}\n`;
}

const INTRO = `# Benchmarks

Throughput of AgentMeter's hot paths, each measured against a **baseline measured in the same run** on
the same machine, so the number that matters is the ratio, not the absolute rate (which depends on the
machine; the recorded numbers come from a 2-core VM with Kafka, PostgreSQL and the consumer side by
side). Benchmarks are run by hand and never asserted in tests.

Run them with \`make bench\`, which runs \`bench/run.sh\` (needs \`make install\` and \`make infra\`; the
script builds the ingest service and the benchmark itself). Each benchmark creates its own databases
and topics, removes them afterwards, and rewrites its own section below. On a shared machine, look at
the "rest of the machine" column: CPU other processes took during the measured window skews both sides.
`;

function writeDoc(section: string): void {
  const path = join(ROOT, 'docs', 'benchmarks.md');
  const current = existsSync(path) ? readFileSync(path, 'utf8') : INTRO;
  const heading = '## Ingest throughput';
  const start = current.indexOf(heading);
  let next: string;
  if (start < 0) {
    next = `${current.trimEnd()}\n\n${section}`;
  } else {
    const after = current.indexOf('\n## ', start + heading.length);
    next = `${current.slice(0, start)}${section}${after < 0 ? '' : `\n${current.slice(after + 1)}`}`;
  }
  writeFileSync(path, next);
}

// ---------------------------------------------------------------------------------------------------
// Small helpers.

function dbUrl(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

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
  const result = await withClient(dbUrl(database), (c) => c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`));
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

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
