/**
 * Admission latency: reserve + commit through the real cost-cap service (one replica, and two replicas
 * sharing one Redis and PostgreSQL), against two baselines measured in the same run on the same Redis: the
 * bare two-scope script (one Lua check-and-increment of a run and a tenant counter, ioredis) and the
 * service's own scripts called through its store code.
 *
 * Run (from the repository root, after `make install` and `make infra`):
 *
 *   bench/run.sh admission
 *
 * which builds dist/cost-cap, compiles this file alone into dist/bench-admission (with a private copy of
 * the service) and runs it with the @agentmeter/* aliases mapped by tsconfig-paths.
 *
 * What it does:
 *   - creates its own database (am_bench_<id>_cc), topics (bench<id>.*) and Redis prefix (bench-<id>:) and
 *     removes them at the end, whatever happens;
 *   - starts the compiled cost-cap as its own process (OpenTelemetry off, like the e2e tests) and gives the
 *     tenant a daily cap and run caps, so every reservation is really checked against both scopes;
 *   - AgentMeter: each operation is POST /v1/admission/reserve then POST .../commit with a new event id, over
 *     keep-alive HTTP (node:http), on 100 runs of one tenant (one hot tenant-day: the worst case for
 *     contention). The commit writes the spend ledger (synchronous commit), the reserve a reservation row
 *     (asynchronous commit, see services/cost-cap/src/db/database.ts);
 *   - baseline: the same two scripts (RESERVE, SETTLE with a ledger entry) called with ioredis from this
 *     process through CountersStore, on the same key shapes: what admission costs without HTTP, PostgreSQL
 *     and the service around it;
 *   - for 1 and 50 concurrent clients (closed loop: each client sends its next operation when the previous
 *     one answered), BENCH_SECONDS (10) per cell after a 2 s warm-up, BENCH_REPEAT (3) times interleaved;
 *     reports the medians of p50, p99 and throughput and rewrites the "Admission latency" section of
 *     docs/benchmarks.md (BENCH_WRITE_DOC=0 to leave it alone).
 *
 * Environment: DATABASE_URL (admin URL), REDIS_URL, KAFKA_BROKERS, BENCH_SECONDS, BENCH_REPEAT,
 * BENCH_WRITE_DOC.
 */
import { execSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { ALL_TOPICS, topicName, Topics } from '@agentmeter/contracts';
import type { Producer } from 'kafkajs';
import { Client } from 'pg';
import { dropDatabase, ensureDatabase, migrate } from '@agentmeter/database';
import { createLogger } from '@agentmeter/telemetry';
import { eventually } from '../libs/testing/src/eventually';
import { freePort } from '../libs/testing/src/services';
import { loadConfig } from '../services/cost-cap/src/config';
import { CountersStore } from '../services/cost-cap/src/counters/counters.store';

const env = process.env;
const ROOT = findRoot(__dirname);
const ADMIN_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/agentmeter';
const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BROKERS = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const REPEAT = Number(env.BENCH_REPEAT ?? 3);
const CONCURRENCY = [1, 50] as const;
const TOKEN = randomBytes(24).toString('hex');
const TENANT = 'bench-tenant';
const RUNS = 100;
const BASELINE_DAY = '2026-11-25';

interface Cell {
  ops: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
}

type Side = 'bare' | 'baseline' | 'fast' | 'fast x2' | 'cost-cap' | 'cost-cap x2';
const SIDES: readonly Side[] = ['bare', 'baseline', 'fast', 'fast x2', 'cost-cap', 'cost-cap x2'];
const SIDE_NAMES: Record<Side, string> = {
  bare: 'bare two-scope script (one Lua check-and-increment, ioredis)',
  baseline: 'same scripts (RESERVE + SETTLE, CountersStore)',
  fast: 'AgentMeter cost-cap, fast path: reserve, settled by its llm_call event (HTTP)',
  'fast x2': 'AgentMeter cost-cap, fast path, 2 replicas, one Redis (HTTP)',
  'cost-cap': 'AgentMeter cost-cap, reserve + explicit commit (HTTP)',
  'cost-cap x2': 'AgentMeter cost-cap, reserve + explicit commit, 2 replicas (HTTP)',
};

/**
 * The least an atomic two-scope admission does: check a run counter and a tenant counter against their
 * limits and add to both, in one script. The floor every side is compared with.
 */
const BARE_SCRIPT = `
local amount = tonumber(ARGV[1])
local run = tonumber(redis.call('GET', KEYS[1]) or '0')
local tenant = tonumber(redis.call('GET', KEYS[2]) or '0')
if run + amount > tonumber(ARGV[2]) or tenant + amount > tonumber(ARGV[3]) then return 0 end
redis.call('INCRBY', KEYS[1], amount)
redis.call('INCRBY', KEYS[2], amount)
return 1`;

async function main(): Promise<void> {
  const id = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const database = dbUrl(`am_bench_${id}_cc`);
  const topicPrefix = `bench${id}.`;
  const redisPrefix = `bench-${id}:`;
  const kafka = new Kafka({ clientId: 'agentmeter-bench', brokers: BROKERS, logLevel: logLevel.ERROR });
  const baseline = new CountersStore(
    loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: `${redisPrefix}baseline:`, COST_CAP_API_TOKEN: TOKEN }),
    createLogger('bench', 'silent'),
  );
  let stopService: () => Promise<void> = async () => undefined;
  let stopProducer: () => Promise<void> = async () => undefined;
  const cleanup = async () => {
    await stopProducer().catch(() => undefined);
    await stopService();
    await dropDatabase(database).catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(topicPrefix));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    const keys = await baseline.redis.keys(`${redisPrefix}*`);
    for (let i = 0; i < keys.length; i += 1000) await baseline.redis.del(...keys.slice(i, i + 1000));
    baseline.onApplicationShutdown();
  };
  try {
    await ensureDatabase(database);
    await migrate(database);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: ALL_TOPICS.map((topic) => ({
        topic: topicName(topicPrefix, topic),
        numPartitions: 3,
        replicationFactor: 1,
      })),
    });
    await admin.disconnect();
    const service = await startCostCap({
      DATABASE_URL: database,
      REDIS_URL,
      REDIS_KEY_PREFIX: `${redisPrefix}service:`,
      KAFKA_BROKERS: BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: topicPrefix,
      COST_CAP_GROUP_ID: `bench-${id}`,
      COST_CAP_API_TOKEN: TOKEN,
    });
    const second = await startCostCap({
      DATABASE_URL: database,
      REDIS_URL,
      REDIS_KEY_PREFIX: `${redisPrefix}service:`,
      KAFKA_BROKERS: BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: topicPrefix,
      COST_CAP_GROUP_ID: `bench-${id}`,
      COST_CAP_API_TOKEN: TOKEN,
    });
    stopService = async () => {
      await Promise.all([service.stop(), second.stop()]);
    };
    const http = new HttpClient(service.url);
    const http2 = new HttpClient(second.url);
    const caps = await http.send('PUT', `/v1/tenants/${TENANT}/caps`, {
      actor: 'bench',
      reason: 'admission benchmark',
      daily_cap_usd: '1000000',
      run: { max_cost_usd: '100000', max_tokens: 1_000_000_000 },
    });
    if (caps.status !== 200) throw new Error(`setting caps failed: ${caps.status} ${caps.body}`);
    // Every counter key the baseline uses exists before it runs (a missing key is loaded, never read as zero).
    await baseline.writeSnapshot({
      runs: Array.from({ length: RUNS }, (_, i) => ({
        tenantId: TENANT,
        runId: `run-${i}`,
        tokens: 0n,
        cost: 0n,
        external: 0n,
        heldTokens: 0n,
        heldCost: 0n,
        heldExternal: 0n,
        stop: null,
      })),
      days: [{ tenantId: TENANT, day: BASELINE_DAY, cost: 0n, heldCost: 0n }],
      reservations: [],
    });

    const results: Record<Side, Record<number, Cell[]>> = {
      bare: {},
      baseline: {},
      fast: {},
      'fast x2': {},
      'cost-cap': {},
      'cost-cap x2': {},
    };
    // The Coordinator's llm_call events, naming their reservations, published as it does (batched, outside the
    // timed operation: publishing is the Coordinator's work); cost-cap consumes them and settles the holds
    // while the load runs, on the same machine.
    const pg = new Client({ connectionString: database });
    await pg.connect();
    const producer = kafka.producer();
    await producer.connect();
    stopProducer = async () => {
      await producer.disconnect();
      await pg.end();
    };
    const events = new EventSink(producer, topicName(topicPrefix, Topics.AgentEvents));
    let sequence = 0;
    const reserveVia = async (client: number, http: HttpClient) => {
      const run = `run-${(client * 7 + sequence++) % RUNS}`;
      const reserved = await http.send('POST', '/v1/admission/reserve', {
        tenant_id: TENANT,
        project_id: 'bench',
        run_id: run,
        role: 'implementer',
        model: 'gpt-4.1',
        provider: 'openai',
        estimate: { cost_usd: '0.010000', prompt_tokens: 1_000, completion_tokens: 200 },
      });
      const reservation = JSON.parse(reserved.body) as { decision: string; reservation_id: string };
      if (reservation.decision !== 'allow') throw new Error(`unexpected decision: ${reserved.body}`);
      return { run, reservationId: reservation.reservation_id };
    };
    const viaEvent = async (client: number, http: HttpClient) => {
      const { run, reservationId } = await reserveVia(client, http);
      events.add(run, reservationId);
    };
    const viaService = async (client: number, http: HttpClient) => {
      const reservation = { reservation_id: (await reserveVia(client, http)).reservationId };
      const committed = await http.send('POST', `/v1/admission/reservations/${reservation.reservation_id}/commit`, {
        event: { source: 'bench', id: randomUUID() },
        actual: { cost_usd: '0.009000', prompt_tokens: 1_000, completion_tokens: 150 },
      });
      if (committed.status !== 200) throw new Error(`commit failed: ${committed.status} ${committed.body}`);
    };
    const operations: Record<Side, (client: number) => Promise<void>> = {
      bare: async (client) => {
        const run = `run-${(client * 7 + sequence++) % RUNS}`;
        const admitted = await baseline.redis.eval(
          BARE_SCRIPT,
          2,
          `${redisPrefix}bare:run:${run}`,
          `${redisPrefix}bare:tenant:${TENANT}`,
          '10000',
          '100000000000',
          '1000000000000',
        );
        if (admitted !== 1) throw new Error('unexpected denial');
      },
      fast: (client) => viaEvent(client, http),
      'fast x2': (client) => viaEvent(client, client % 2 === 0 ? http : http2),
      'cost-cap': (client) => viaService(client, http),
      'cost-cap x2': (client) => viaService(client, client % 2 === 0 ? http : http2),
      baseline: async (client) => {
        const runId = `run-${(client * 7 + sequence++) % RUNS}`;
        const reservationId = randomUUID();
        const limits = {
          run_tokens: 1_000_000_000n,
          run_cost: 100_000_000_000n,
          run_external: null,
          tenant_cost: 1_000_000_000_000n,
        };
        const reserved = await baseline.reserve({
          reservationId,
          tenantId: TENANT,
          runId,
          day: BASELINE_DAY,
          kind: 'llm',
          tokens: 1_200n,
          money: 10_000n,
          partial: false,
          limits,
          expiresAt: new Date(Date.now() + 300_000),
        });
        if (reserved.status !== 'ALLOW') throw new Error(`unexpected decision: ${reserved.status}`);
        await baseline.settle({
          tenantId: TENANT,
          runId,
          day: BASELINE_DAY,
          reservationId,
          apply: { entryKey: `event:bench\u001f${randomUUID()}`, tokens: 1_150n, cost: 9_000n, external: 0n },
        });
      },
    };

    for (let round = 1; round <= REPEAT; round++) {
      for (const concurrency of CONCURRENCY) {
        for (const side of SIDES) {
          await measure(operations[side], concurrency, WARMUP_SECONDS);
          const cell = await measure(operations[side], concurrency, SECONDS);
          // The events of this cell are settled before the next one starts (not counted in either).
          await events.flush();
          await eventually(async () => {
            const { rows } = await pg.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM reservations WHERE status IN ('open', 'expired')`,
            );
            if (rows[0]!.n > 0) throw new Error(`${rows[0]!.n} reservations still open`);
          }, 120_000);
          (results[side][concurrency] ??= []).push(cell);
          log(
            `round ${round} ${side} x${concurrency}: ${Math.round(cell.rate)} ops/s, p50 ${cell.p50.toFixed(2)} ms, p99 ${cell.p99.toFixed(2)} ms`,
          );
        }
      }
    }
    const section = report(results);
    console.log(`\n${section}`);
    if (env.BENCH_WRITE_DOC !== '0') {
      writeSection(section);
      log('updated docs/benchmarks.md');
    }
    http.close();
    http2.close();
  } finally {
    await cleanup();
  }
}

/** Closed loop: `concurrency` clients, each starting its next operation when the previous one answered. */
async function measure(
  operation: (client: number) => Promise<void>,
  concurrency: number,
  seconds: number,
): Promise<Cell> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await operation(client);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { ops: latencies.length, seconds: elapsed, rate: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) };
}

function report(results: Record<Side, Record<number, Cell[]>>): string {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const rows: string[] = [];
  const ratios: string[] = [];
  for (const concurrency of CONCURRENCY) {
    const cells = (side: Side) => results[side][concurrency]!;
    const m = (side: Side) => ({
      p50: median(cells(side).map((c) => c.p50)),
      p99: median(cells(side).map((c) => c.p99)),
      rate: median(cells(side).map((c) => c.rate)),
      runs: cells(side)
        .map((c) => Math.round(c.rate).toLocaleString('en-US'))
        .join(' / '),
    });
    for (const side of SIDES) {
      const v = m(side);
      const name = SIDE_NAMES[side];
      rows.push(
        `| ${concurrency} | ${name} | ${v.p50.toFixed(2)} | ${v.p99.toFixed(2)} | **${Math.round(v.rate).toLocaleString('en-US')}** | ${v.runs} |`,
      );
    }
    const ratio = (side: Side, base: Side) => (m(side).rate / m(base).rate).toFixed(3);
    ratios.push(
      `${concurrency} client${concurrency > 1 ? 's' : ''}: fast path / bare ${ratio('fast', 'bare')}, ` +
        `fast path 2 replicas / bare ${ratio('fast x2', 'bare')}, fast path / same scripts ${ratio('fast', 'baseline')}, ` +
        `reserve + commit / bare ${ratio('cost-cap', 'bare')}`,
    );
  }
  const cpu = cpus();
  return [
    '## Admission latency',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at ${commit()}, Node ${process.version}, ` +
      `${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}; PostgreSQL, Redis, Kafka, cost-cap and the load generator on the same machine.`,
    `One operation = the admission of one LLM call, for 100 runs of one tenant with a daily cap and run caps. ` +
      `Fast path: one reserve request; the load generator publishes the call's llm_call event naming the reservation ` +
      `(batched every 20 ms, outside the timed operation) and cost-cap settles it from the stream while the load runs; ` +
      `each cell waits until every hold is settled before the next starts. Reserve + commit: two requests, the commit ` +
      `with a new event id (every one writes the ledger). The bare side is one script call; the same-scripts side ` +
      `RESERVE + SETTLE through CountersStore. Closed loop, ${SECONDS} s per cell after a ` +
      `${WARMUP_SECONDS} s warm-up, ${REPEAT} rounds interleaved; medians (throughput of each round in the last column).`,
    '',
    '| clients | side | p50 ms | p99 ms | ops/s | ops/s per round |',
    '| ---: | --- | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `**Throughput ratios** (of medians): ${ratios.join('; ')}.`,
    `Load average when the run ended (1/5/15 min): ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} on ${cpus().length} cores, shared with other work.`,
    '',
    'What the fast path is made of, per call: one HTTP request on Fastify (JSON, the token check, redaction,',
    'zod validation), settings, run and prices from memory, the RESERVE script, the reservation row written by',
    'group commit (the rows of all reserves waiting at one moment in one statement, committed without waiting',
    'for the WAL flush) and a read of the counter generations; the answer waits for the row (the recovery rule,',
    'docs/cost-cap.md "The fast path"). Reserve + commit adds a second request whose ledger transaction waits',
    'for the WAL flush. The decision itself is the same single script call on every side.',
    '',
  ].join('\n');
}

/** Replaces the "## Admission latency" section (up to the next "## "), or appends it. */
function writeSection(section: string): void {
  const path = join(ROOT, 'docs', 'benchmarks.md');
  const doc = readFileSync(path, 'utf8');
  const heading = '## Admission latency\n';
  const start = doc.indexOf(heading);
  if (start < 0) {
    writeFileSync(path, `${doc.trimEnd()}\n\n${section}`);
    return;
  }
  const next = doc.indexOf('\n## ', start + heading.length);
  writeFileSync(path, `${doc.slice(0, start)}${section}${next < 0 ? '' : `\n${doc.slice(next + 1)}`}`);
}

/** llm_call events of the fast path, sent in batches every few milliseconds (as a Coordinator would). */
class EventSink {
  private pending: Array<{ key: string; value: string }> = [];
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {
    this.timer = setInterval(() => void this.flush(), 20);
    this.timer.unref();
  }

  add(runId: string, reservationId: string): void {
    const id = randomUUID();
    this.pending.push({
      key: runId,
      value: JSON.stringify({
        specversion: '1.0',
        id,
        source: 'bench',
        type: 'llm_call',
        time: new Date().toISOString(),
        subject: TENANT,
        datacontenttype: 'application/json',
        data: {
          tenant_id: TENANT,
          project_id: 'bench',
          run_id: runId,
          phase: 'implement',
          role: 'implementer',
          attempt: 1,
          model: 'gpt-4.1',
          provider: 'openai',
          prompt_tokens: 1_000,
          completion_tokens: 150,
          cost_usd: '0.009000',
          latency_ms: 100,
          reservation_id: reservationId,
        },
      }),
    });
  }

  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0)
      this.sending = this.sending.then(() =>
        this.producer.send({ topic: this.topic, messages: batch }).then(() => undefined),
      );
    return this.sending;
  }
}

class HttpClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly url: URL;

  constructor(base: string) {
    this.url = new URL(base);
  }

  send(method: string, path: string, body: unknown): Promise<{ status: number; body: string }> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            authorization: `Bearer ${TOKEN}`,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

async function startCostCap(extra: Record<string, string>): Promise<{ url: string; stop: () => Promise<void> }> {
  const entry = join(__dirname, '..', 'cost-cap', 'services', 'cost-cap', 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run bench/run.sh admission`);
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    env: { PATH: env.PATH ?? '', LOG_LEVEL: 'warn', OTEL_SDK_DISABLED: 'true', ...extra, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`cost-cap exited:\n${output}`);
    const response = await fetch(`${url}/health/ready`);
    if (!response.ok) throw new Error(`cost-cap not ready: ${response.status}`);
  }, 60_000);
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function dbUrl(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
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

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
