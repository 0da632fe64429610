/**
 * Admission latency: reserve (+ commit) through the real cost-cap service (one replica, and two replicas
 * sharing one Redis and PostgreSQL), against the barest thing that does the same job, measured in the same
 * run on the same Redis: one Lua script that checks a run and a tenant counter against their limits and adds
 * to both, called with ioredis.
 *
 * Run (from the repository root, after `make install` and `make infra`):
 *
 *   bench/run.sh admission
 *
 * which builds dist/cost-cap, compiles this file alone into dist/bench-admission (with a private copy of
 * the service) and runs it with the @agentmeter/* aliases mapped by tsconfig-paths.
 *
 * cost-cap runs as a user runs it: the compiled service as its own process, configured by its environment
 * (startService of libs/testing, as the e2e tests start it; OpenTelemetry off), driven and observed through
 * its HTTP API only. Nothing of the service's code is loaded here.
 *
 * What it does:
 *   - creates its own database (am_bench_<id>_cc, migrated), topics (bench<id>.*) and a Redis server of its
 *     own (redis-server on a free port, no persistence, like the shared one), and removes them at the end,
 *     whatever happens: nothing is left on, or searched for in, the shared servers;
 *   - gives the tenant a daily cap and run caps (PUT /v1/tenants/{id}/caps), so every reservation is really
 *     checked against both scopes;
 *   - AgentMeter, fast path: POST /v1/admission/reserve; the bench then publishes the call's llm_call event
 *     naming the reservation (batched, outside the timed operation, as the Coordinator would) and cost-cap
 *     settles it from the stream. Reserve + commit: POST .../reserve then POST .../commit with a new event id.
 *     Over keep-alive HTTP (node:http), on 100 runs of one tenant (one hot tenant-day: the worst case for
 *     contention). Each cell ends when GET /v1/tenants/{id}/caps shows nothing reserved;
 *   - bare: the two-scope script (BARE_SCRIPT below) with ioredis, on keys of the same shape;
 *   - for 1 and 50 concurrent clients (closed loop), BENCH_SECONDS (10) per cell after a 2 s warm-up,
 *     BENCH_REPEAT (3) times interleaved; reports the medians of p50, p99 and throughput and rewrites the
 *     "Admission latency" section of docs/benchmarks.md (BENCH_WRITE_DOC=0 to leave it alone).
 *
 * Environment: DATABASE_URL (admin URL), KAFKA_BROKERS, BENCH_SECONDS, BENCH_REPEAT, BENCH_WRITE_DOC.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { topicName, Topics } from '@agentmeter/contracts';
import { dropDatabase, ensureDatabase, migrate } from '@agentmeter/database';
import {
  eventually,
  saveTestEnvironment,
  startPrivateRedis,
  startService,
  type RunningService,
} from '@agentmeter/testing';
import { measuredCommit, repositoryRoot, writeBenchmarkSection } from './support/benchmarks-doc';
import { type Cell, measureClosedLoop, median } from './support/closed-loop';
import { createPrefixedTopics, deletePrefixedTopics } from './support/kafka-topics';
import { ServiceHttpClient } from './support/service-http';
import { ADMIN_URL, databaseUrl, log } from './support/bench-env';

const env = process.env;
const ROOT = repositoryRoot(__dirname);
const BROKERS = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 2;
const REPEAT = Number(env.BENCH_REPEAT ?? 3);
const CONCURRENCY = [1, 50] as const;
const TOKEN = randomBytes(24).toString('hex');
const TENANT = 'bench-tenant';
const RUNS = 100;
/** bench/run.sh copies the compiled service beside this build (dist/bench-admission/cost-cap). */
const SERVICES_BUILD = join(__dirname, '..');

type Side = 'bare' | 'fast' | 'fast x2' | 'cost-cap' | 'cost-cap x2';
const SIDES: readonly Side[] = ['bare', 'fast', 'fast x2', 'cost-cap', 'cost-cap x2'];
const SIDE_NAMES: Record<Side, string> = {
  bare: 'bare two-scope script (one Lua check-and-increment, ioredis)',
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
  const database = databaseUrl(`am_bench_${id}_cc`);
  const topicPrefix = `bench${id}.`;
  const kafka = new Kafka({ clientId: 'agentmeter-bench', brokers: BROKERS, logLevel: logLevel.ERROR });
  const redisServer = await startPrivateRedis();
  const redis = new Redis(redisServer.url);
  const services: RunningService[] = [];
  let producer: Producer | undefined;
  const cleanup = async () => {
    await producer?.disconnect().catch(() => undefined);
    await Promise.all(services.map((service) => service.stop()));
    await dropDatabase(database).catch(() => undefined);
    await deletePrefixedTopics(kafka, topicPrefix).catch(() => undefined);
    redis.disconnect();
    await redisServer.destroy();
  };
  try {
    await ensureDatabase(database);
    await migrate(database);
    await createPrefixedTopics(kafka, topicPrefix);
    // startService reads the run's isolation where the e2e tests keep it: here, this benchmark's names.
    saveTestEnvironment({
      runId: id,
      databaseUrl: ADMIN_URL,
      templateDatabase: database,
      redisUrl: redisServer.url,
      redisPrefix: 'bench:',
      kafkaBrokers: BROKERS,
      topicPrefix,
    });
    const costCapEnv = { DATABASE_URL: database, COST_CAP_GROUP_ID: `bench-${id}`, COST_CAP_API_TOKEN: TOKEN };
    for (let replica = 0; replica < 2; replica++) {
      services.push(await startService('cost-cap', costCapEnv, { dist: SERVICES_BUILD }));
    }
    const [http, http2] = services.map((service) => new ServiceHttpClient(service.url, TOKEN)) as [
      ServiceHttpClient,
      ServiceHttpClient,
    ];
    const caps = await http.send('PUT', `/v1/tenants/${TENANT}/caps`, {
      actor: 'bench',
      reason: 'admission benchmark',
      daily_cap_usd: '1000000',
      run: { max_cost_usd: '100000', max_tokens: 1_000_000_000 },
    });
    if (caps.status !== 200) throw new Error(`setting caps failed: ${caps.status} ${caps.body}`);

    const results: Record<Side, Record<number, Cell[]>> = {
      bare: {},
      fast: {},
      'fast x2': {},
      'cost-cap': {},
      'cost-cap x2': {},
    };
    // The Coordinator's llm_call events, naming their reservations, published as it does (batched, outside the
    // timed operation: publishing is the Coordinator's work); cost-cap consumes them and settles the holds
    // while the load runs, on the same machine.
    producer = kafka.producer();
    await producer.connect();
    const events = new EventSink(producer, topicName(topicPrefix, Topics.AgentEvents));
    let sequence = 0;
    const nextRun = (client: number) => `run-${(client * 7 + sequence++) % RUNS}`;
    const reserveVia = async (client: number, http: ServiceHttpClient) => {
      const run = nextRun(client);
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
    const viaEvent = async (client: number, http: ServiceHttpClient) => {
      const { run, reservationId } = await reserveVia(client, http);
      events.add(run, reservationId);
    };
    const viaCommit = async (client: number, http: ServiceHttpClient) => {
      const { reservationId } = await reserveVia(client, http);
      const committed = await http.send('POST', `/v1/admission/reservations/${reservationId}/commit`, {
        event: { source: 'bench', id: randomUUID() },
        actual: { cost_usd: '0.009000', prompt_tokens: 1_000, completion_tokens: 150 },
      });
      if (committed.status !== 200) throw new Error(`commit failed: ${committed.status} ${committed.body}`);
    };
    const operations: Record<Side, (client: number) => Promise<void>> = {
      bare: async (client) => {
        const admitted = await redis.eval(
          BARE_SCRIPT,
          2,
          `bare:run:${TENANT}:${nextRun(client)}`,
          `bare:tenant:${TENANT}`,
          '10000',
          '100000000000',
          '1000000000000',
        );
        if (admitted !== 1) throw new Error('unexpected denial');
      },
      fast: (client) => viaEvent(client, http),
      'fast x2': (client) => viaEvent(client, client % 2 === 0 ? http : http2),
      'cost-cap': (client) => viaCommit(client, http),
      'cost-cap x2': (client) => viaCommit(client, client % 2 === 0 ? http : http2),
    };
    // Every hold of a cell is settled before the next one starts (not counted in either): the tenant's day,
    // as an operator reads it, has nothing reserved.
    const settled = async () => {
      await events.flush();
      await eventually(async () => {
        const state = await http.send('GET', `/v1/tenants/${TENANT}/caps`);
        const reserved = (JSON.parse(state.body) as { daily?: { reserved?: string } }).daily?.reserved;
        if (state.status !== 200 || !/^0(\.0+)?$/.test(reserved ?? '')) {
          throw new Error(`still reserved: ${state.status} ${reserved ?? state.body}`);
        }
      }, 120_000);
    };

    for (let round = 1; round <= REPEAT; round++) {
      for (const concurrency of CONCURRENCY) {
        for (const side of SIDES) {
          await measureClosedLoop(operations[side], concurrency, WARMUP_SECONDS);
          const cell = await measureClosedLoop(operations[side], concurrency, SECONDS);
          await settled();
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
      writeBenchmarkSection(ROOT, section);
      log('updated docs/benchmarks.md');
    }
    http.close();
    http2.close();
  } finally {
    await cleanup();
  }
}

function report(results: Record<Side, Record<number, Cell[]>>): string {
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
      rows.push(
        `| ${concurrency} | ${SIDE_NAMES[side]} | ${v.p50.toFixed(2)} | ${v.p99.toFixed(2)} | **${Math.round(v.rate).toLocaleString('en-US')}** | ${v.runs} |`,
      );
    }
    const ratio = (side: Side) => (m(side).rate / m('bare').rate).toFixed(3);
    ratios.push(
      `${concurrency} client${concurrency > 1 ? 's' : ''}: fast path / bare ${ratio('fast')}, ` +
        `fast path 2 replicas / bare ${ratio('fast x2')}, reserve + commit / bare ${ratio('cost-cap')}, ` +
        `reserve + commit 2 replicas / bare ${ratio('cost-cap x2')}`,
    );
  }
  const cpu = cpus();
  return [
    '## Admission latency',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at ${measuredCommit(ROOT)}, Node ${process.version}, ` +
      `${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}; PostgreSQL, Redis, Kafka, cost-cap and the load generator on the same machine.`,
    `One operation = the admission of one LLM call, for 100 runs of one tenant with a daily cap and run caps. ` +
      `cost-cap is the compiled service in its own process, configured by its environment and driven over HTTP ` +
      `only; the bare side runs on the same Redis server (the benchmark's own). ` +
      `Fast path: one reserve request; the load generator publishes the call's llm_call event naming the reservation ` +
      `(batched every 20 ms, outside the timed operation) and cost-cap settles it from the stream while the load runs; ` +
      `each cell waits until the tenant's day shows nothing reserved before the next starts. Reserve + commit: two ` +
      `requests, the commit with a new event id (every one writes the ledger). The bare side is one script call. ` +
      `Closed loop, ${SECONDS} s per cell after a ${WARMUP_SECONDS} s warm-up, ${REPEAT} rounds interleaved; medians ` +
      `(throughput of each round in the last column).`,
    '',
    '| clients | side | p50 ms | p99 ms | ops/s | ops/s per round |',
    '| ---: | --- | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `**Throughput ratios** (of medians): ${ratios.join('; ')}.`,
    `Load average when the run ended (1/5/15 min): ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} on ${cpu.length} cores, shared with other work.`,
    '',
    'What the fast path is made of, per call: one HTTP request on Fastify (JSON, the token check, redaction,',
    'zod validation), settings, run and prices from memory, the RESERVE script, the reservation row written by',
    'group commit (the rows of all reserves waiting at one moment in one statement, committed without waiting',
    'for the WAL flush) and a read of the counter generations; the answer waits for the row (the recovery rule,',
    'docs/cost-cap.md "The fast path"). Reserve + commit adds a second request whose ledger transaction waits',
    'for the WAL flush. The decision itself is one script call on every side.',
    '',
  ].join('\n');
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
    this.pending.push({
      key: runId,
      value: JSON.stringify({
        specversion: '1.0',
        id: randomUUID(),
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

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
