/**
 * Query latency: GET /runs/{id}/metrics and GET /admin/overview of the real query service over a database
 * holding >= 1M events, then 10x that, each against a constant route of the same server (GET /whoami: the
 * same authentication, authorization and rate-limit path, no database) measured in the same run.
 *
 * Run (from the repository root): `make bench BENCH=query`, or `bench/run.sh query` after `make install`
 * and `make infra`.
 *
 * What it does:
 *   - creates its own database (am_bench_query_<id>), migrates it, and drops it at the end;
 *   - writes rows straight into the schema with INSERT ... SELECT over generate_series (no ingest: the
 *     point is the read path): tenants, projects, runs, stages (5 attempts per run), llm_calls (3 per
 *     stage), tool_calls (4 per implement/validate attempt), the event log (one row per call, two per
 *     stage, two per run: ~35 events per run), failures, and the usage_daily and usage_model_daily
 *     rollups computed from the calls; raw rows go into their day partitions, created with PartitionManager.ensureDays; the data
 *     spans the last BENCH_DAYS (20) days, with a fixed number of runs still running (stuck) at the end;
 *   - step 1: BENCH_RUNS (28,600) runs, ~1M events; step 2: 9x more runs over the same days (~10M
 *     events; data grows as history does, denser days, constant concurrency);
 *   - at each step starts dist/query as its own process, warms it up, then runs autocannon for
 *     BENCH_SECONDS (10 s) per route, BENCH_CONNECTIONS (10) connections: the baseline, run metrics of
 *     random finished runs (every request another run), and the Admin Overview; BENCH_REPEAT (2) rounds of
 *     the three, interleaved, so a burst of other work on the machine shows as a difference between rounds;
 *   - prints markdown and rewrites the "Query latency" section of docs/benchmarks.md (BENCH_WRITE_DOC=0
 *     to leave it alone).
 *
 * Environment: DATABASE_URL (admin URL; the database is created beside it), BENCH_RUNS, BENCH_DAYS,
 * BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_REPEAT, BENCH_SCALE (10; 1 measures the 1x data only),
 * BENCH_KEEP_DB=1 (keep the database).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { Pool } from 'pg';
import { createDataSource, dropDatabase, ensureDatabase, migrate, PartitionManager } from '../libs/database/src';
import { LATENCY_BUCKETS_MS } from '../libs/domain/src/projection/usage-rollup';
import { databaseUrl, log } from './support/bench-env';

const env = process.env;
const ROOT = join(__dirname, '..', '..', '..');
const RUNS = Number(env.BENCH_RUNS ?? 28_600);
const SCALE = Number(env.BENCH_SCALE ?? 10);
const DAYS = Number(env.BENCH_DAYS ?? 20);
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 10);
const REPEAT = Number(env.BENCH_REPEAT ?? 2);
const TENANTS = 20;
const PROJECTS = 10;
const RUNNING = 200;
const BATCH = 10_000;
const SECRET = randomBytes(32).toString('hex');
const DB = `am_bench_query_${randomBytes(3).toString('hex')}`;
const MODELS: Array<[string, string, number, number]> = [
  ['gpt-4.1', 'openai', 2_000_000, 8_000_000],
  ['gpt-4.1-mini', 'openai', 400_000, 1_600_000],
  ['claude-sonnet-4-5', 'anthropic', 3_000_000, 15_000_000],
  ['claude-haiku-4-5', 'anthropic', 1_000_000, 5_000_000],
  ['gemini-2.5-pro', 'google', 1_250_000, 10_000_000],
];
/** (phase, attempt, role, minutes after the run start, status of a finished run) */
const STAGES: Array<[string, number, string, number]> = [
  ['plan', 1, 'planner', 0],
  ['implement', 1, 'implementer', 10],
  ['implement', 2, 'implementer', 20],
  ['validate', 1, 'validator', 30],
  ['publish', 1, 'publisher', 40],
];

interface Span {
  from: Date;
  to: Date;
}

/** Inserts runs [first, last] spread evenly over the span; the last `running` of them are still running. */
async function generate(pool: Pool, first: number, last: number, span: Span, running: number): Promise<void> {
  const count = last - first + 1;
  const stepMs = (span.to.getTime() - span.from.getTime()) / count;
  const stageValues = STAGES.map(([p, a, r, m]) => `('${p}', ${a}, '${r}', ${m})`).join(', ');
  const modelValues = MODELS.map(([m, pr, i, o], k) => `(${k}, '${m}', '${pr}', ${i}, ${o})`).join(', ');
  const buckets = [
    ...LATENCY_BUCKETS_MS.map((b, i) =>
      i === 0 ? `latency_ms <= ${b}` : `latency_ms > ${LATENCY_BUCKETS_MS[i - 1]} AND latency_ms <= ${b}`,
    ),
    `latency_ms > ${LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]}`,
  ]
    .map((c) => `count(*) FILTER (WHERE ${c})`)
    .join(', ');
  for (let a = first; a <= last; a += BATCH) {
    const b = Math.min(last, a + BATCH - 1);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // $1, $2: id range; $3: span start; $4: ms per run; $5: first running id
      const p = [a, b, span.from, stepMs, last - running + 1, first];
      const run = `FROM generate_series($1::int, $2::int) AS i
        CROSS JOIN LATERAL (SELECT $3::timestamptz + ((i - $6::int) * $4::float8) * interval '1 millisecond' AS t0,
                        'bt' || (1 + i % ${TENANTS}) AS tenant, 'br' || i AS run,
                        'bp' || (1 + (i / ${TENANTS}) % ${PROJECTS}) AS project,
                        CASE WHEN i >= $5::int THEN 'running' WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END AS fate) AS r`;
      await client.query(
        `INSERT INTO runs (tenant_id, run_id, project_id, playbook, status, status_rank, status_at, phase, role, phase_at,
           started_at, finished_at, model, model_at, first_event_at, last_event_at, environment, caps)
         SELECT tenant, run, project, 'landing-page', fate,
                CASE fate WHEN 'running' THEN 1 WHEN 'succeeded' THEN 2 ELSE 3 END, t0 + interval '50 min',
                'publish', 'publisher', t0 + interval '40 min', t0,
                CASE WHEN fate = 'running' THEN NULL ELSE t0 + interval '50 min' END,
                'gpt-4.1', t0, t0, t0 + interval '50 min', '{"name":"bench","region":"eu-west-1"}'::jsonb,
                CASE WHEN fate = 'running' THEN '{"max_cost_usd":"0.150000","max_tokens":400000}'::jsonb END
         ${run}`,
        p.slice(0, 6),
      );
      await client.query(
        `INSERT INTO stages (tenant_id, run_id, phase, attempt, role, status, status_rank, status_at, started_at, finished_at, trace_id)
         SELECT tenant, run, s.phase, s.attempt, s.role, st.status,
                CASE st.status WHEN 'running' THEN 1 WHEN 'failed' THEN 2 ELSE 3 END,
                t0 + s.minute * interval '1 min', t0 + s.minute * interval '1 min',
                CASE WHEN st.status = 'running' THEN NULL ELSE t0 + (s.minute + 8) * interval '1 min' END,
                md5(run || s.phase || s.attempt)
         ${run}
         CROSS JOIN (VALUES ${stageValues}) AS s(phase, attempt, role, minute)
         CROSS JOIN LATERAL (SELECT CASE
             WHEN s.phase = 'implement' AND s.attempt = 1 THEN 'failed'
             WHEN s.phase = 'publish' AND fate = 'running' THEN 'running'
             WHEN s.phase = 'publish' AND fate = 'failed' THEN 'failed'
             ELSE 'passed' END AS status) AS st`,
        p.slice(0, 6),
      );
      await client.query(
        `INSERT INTO llm_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model, provider,
           prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros, cost_source, latency_ms, cached,
           status, trace_id, span_id, user_id, time, payload)
         SELECT 'bench', run || '-' || s.phase || s.attempt || '-l' || c, tenant, project, run, s.phase, s.attempt, s.role,
                m.model, m.provider, pt, ct, pt / 10, 0,
                (pt::bigint * m.input + ct::bigint * m.output + 500000) / 1000000, 'computed', 300 + h % 9000, false, 'ok',
                md5(run || s.phase || s.attempt), substr(md5(run || c), 1, 16), NULL, t0 + (s.minute + c) * interval '1 min',
                json_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run, 'phase', s.phase,
                  'attempt', s.attempt, 'role', s.role, 'model', m.model, 'provider', m.provider, 'prompt_tokens', pt,
                  'completion_tokens', ct, 'latency_ms', 300 + h % 9000, 'trace_id', md5(run || s.phase || s.attempt))
         ${run}
         CROSS JOIN (VALUES ${stageValues}) AS s(phase, attempt, role, minute)
         CROSS JOIN generate_series(1, 3) AS c
         CROSS JOIN LATERAL (SELECT (hashtext(run || s.phase || s.attempt || c)::bigint & 2147483647) AS h) AS hh
         CROSS JOIN LATERAL (SELECT 200 + h % 12000 AS pt, 50 + (h / 7) % 3000 AS ct) AS tok
         JOIN (VALUES ${modelValues}) AS m(k, model, provider, input, output) ON m.k = (i + c) % ${MODELS.length}`,
        p.slice(0, 6),
      );
      await client.query(
        `INSERT INTO tool_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, tool, mcp_server,
           cache_key_space, cache_hit, latency_ms, status, trace_id, time, payload)
         SELECT 'bench', run || '-' || s.phase || s.attempt || '-t' || c, tenant, project, run, s.phase, s.attempt, s.role,
                tool, 'github', key_space, hit, latency, 'ok', md5(run || s.phase || s.attempt),
                t0 + (s.minute + 4) * interval '1 min' + c * interval '1 s',
                json_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run, 'phase', s.phase,
                  'attempt', s.attempt, 'role', s.role, 'tool', tool, 'mcp_server', 'github',
                  'cache_key_space', key_space, 'cache_hit', hit, 'latency_ms', latency)
         ${run}
         CROSS JOIN (VALUES ${stageValues}) AS s(phase, attempt, role, minute)
         CROSS JOIN generate_series(1, 4) AS c
         CROSS JOIN LATERAL (SELECT CASE WHEN c % 2 = 0 THEN 'github.get_tree' ELSE 'github.get_blob' END AS tool,
                CASE WHEN c % 2 = 0 THEN 'amtp:mcp:tree' ELSE 'amtp:mcp:blob' END AS key_space,
                (hashtext(run || c)::bigint & 2147483647) % 10 < 7 AS hit,
                1 + (hashtext(run || c)::bigint & 2147483647) % 900 AS latency) AS tc
         WHERE s.phase IN ('implement', 'validate')`,
        p.slice(0, 6),
      );
      // The event log (docs/decisions.md "Call facts stored once": the calls above are in `events` already):
      // phase_entered and its outcome per stage, run_started and the end.
      await client.query(
        `INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
         SELECT 'bench', run || '-' || s.phase || s.attempt || '-' || e.kind, tenant, run,
                CASE e.kind WHEN 'in' THEN 'phase_entered'
                  WHEN 'out' THEN CASE WHEN s.phase = 'implement' AND s.attempt = 1 THEN 'validation_failed'
                                       WHEN s.phase = 'publish' AND fate = 'failed' THEN 'validation_failed'
                                       WHEN s.phase = 'publish' THEN 'publish_done' ELSE 'phase_advanced' END END,
                t0 + (s.minute + CASE e.kind WHEN 'in' THEN 0 ELSE 8 END) * interval '1 min',
                jsonb_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run, 'phase', s.phase,
                  'attempt', s.attempt, 'role', s.role, 'artifact_path', 'artifacts/' || run || '/' || s.phase || '.md',
                  'artifact_version', 'v' || s.attempt), md5(run || s.phase || s.attempt)
         ${run}
         CROSS JOIN (VALUES ${stageValues}) AS s(phase, attempt, role, minute)
         CROSS JOIN (VALUES ('in'), ('out')) AS e(kind)
         WHERE NOT (e.kind = 'out' AND s.phase = 'publish' AND fate = 'running')
         UNION ALL
         SELECT 'bench', run || '-' || e.kind, tenant, run,
                CASE e.kind WHEN 'start' THEN 'run_started' WHEN 'end' THEN
                  CASE fate WHEN 'failed' THEN 'run_failed' ELSE 'run_finished' END END,
                t0 + CASE e.kind WHEN 'start' THEN interval '0' ELSE interval '50 min' END,
                jsonb_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run, 'playbook', 'landing-page',
                  'error', CASE WHEN fate = 'failed' THEN 'validation failed on every attempt' END), NULL
         ${run}
         CROSS JOIN (VALUES ('start'), ('end')) AS e(kind)
         WHERE NOT (e.kind = 'end' AND fate = 'running')`,
        p.slice(0, 6),
      );
      await client.query(
        `INSERT INTO failures (tenant_id, run_id, phase, role, reason, artifact_ref, first_seen, last_seen, count)
         SELECT tenant, run, s.phase, s.role, 'schema mismatch', '', t0 + (s.minute + 8) * interval '1 min',
                t0 + (s.minute + 8) * interval '1 min', 1
         ${run}
         CROSS JOIN (VALUES ${stageValues}) AS s(phase, attempt, role, minute)
         WHERE (s.phase = 'implement' AND s.attempt = 1) OR (s.phase = 'publish' AND fate = 'failed')
         ON CONFLICT DO NOTHING`,
        p.slice(0, 6),
      );
      // Stage and run totals from their calls; rollups from the calls (as ingest keeps them).
      const batchRuns = `SELECT 'bt' || (1 + g % ${TENANTS}) AS tenant_id, 'br' || g AS run_id FROM generate_series($1::int, $2::int) g`;
      await client.query(
        `UPDATE stages s SET prompt_tokens = c.pt, completion_tokens = c.ct, cached_tokens = c.cached, cost_micros = c.cost,
                llm_calls = c.n
           FROM (SELECT l.tenant_id, l.run_id, l.phase, l.attempt, sum(prompt_tokens) pt, sum(completion_tokens) ct,
                        sum(cached_tokens) cached, sum(cost_micros) cost, count(*) n
                   FROM llm_calls l JOIN (${batchRuns}) b USING (tenant_id, run_id)
                  GROUP BY 1, 2, 3, 4) c
          WHERE s.tenant_id = c.tenant_id AND s.run_id = c.run_id AND s.phase = c.phase AND s.attempt = c.attempt`,
        [a, b],
      );
      await client.query(
        `UPDATE runs r SET tokens_in = c.pt, tokens_out = c.ct, cost_micros = c.cost, llm_calls = c.n
           FROM (SELECT s.tenant_id, s.run_id, sum(prompt_tokens) pt, sum(completion_tokens) ct, sum(cost_micros) cost,
                        sum(llm_calls) n
                   FROM stages s JOIN (${batchRuns}) b USING (tenant_id, run_id) GROUP BY 1, 2) c
          WHERE r.tenant_id = c.tenant_id AND r.run_id = c.run_id`,
        [a, b],
      );
      for (const [table, kind, dims] of [
        ['llm_calls', 'llm', `model, provider, '' AS tool, '' AS mcp_server, COALESCE(user_id, '') AS user_id`],
        [
          'tool_calls',
          'tool',
          `'' AS model, '' AS provider, tool, COALESCE(mcp_server, '') AS mcp_server, '' AS user_id`,
        ],
      ] as const) {
        const tokens =
          kind === 'llm'
            ? 'sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micros)'
            : '0, 0, 0, 0';
        await client.query(
          `INSERT INTO usage_daily AS u (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id,
             call_count, success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens,
             cached_tokens, cost_micros, unpriced_calls)
           SELECT (time AT TIME ZONE 'UTC')::date, tenant_id, project_id, role, '${kind}', ${dims}, count(*),
                  count(*), 0, sum(latency_ms), ARRAY[${buckets}]::bigint[], ${tokens}, 0
             FROM ${table} t JOIN (${batchRuns}) b USING (tenant_id, run_id)
            GROUP BY 1, 2, 3, 4, 6, 7, 8, 9, 10
           ON CONFLICT (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id) DO UPDATE SET
             call_count = u.call_count + EXCLUDED.call_count, success_count = u.success_count + EXCLUDED.success_count,
             total_latency_ms = u.total_latency_ms + EXCLUDED.total_latency_ms,
             latency_buckets = bigint_array_add(u.latency_buckets, EXCLUDED.latency_buckets),
             input_tokens = u.input_tokens + EXCLUDED.input_tokens, output_tokens = u.output_tokens + EXCLUDED.output_tokens,
             cached_tokens = u.cached_tokens + EXCLUDED.cached_tokens, cost_micros = u.cost_micros + EXCLUDED.cost_micros`,
          [a, b],
        );
      }
      await client.query(
        `INSERT INTO usage_model_daily AS u (day, tenant_id, model, provider, call_count, input_tokens, output_tokens,
           cached_tokens, cost_micros, unpriced_calls)
         SELECT (time AT TIME ZONE 'UTC')::date, tenant_id, model, provider, count(*), sum(prompt_tokens),
                sum(completion_tokens), sum(cached_tokens), sum(cost_micros), 0
           FROM llm_calls t JOIN (${batchRuns}) b USING (tenant_id, run_id)
          GROUP BY 1, 2, 3, 4
         ON CONFLICT (day, tenant_id, model, provider) DO UPDATE SET
           call_count = u.call_count + EXCLUDED.call_count, input_tokens = u.input_tokens + EXCLUDED.input_tokens,
           output_tokens = u.output_tokens + EXCLUDED.output_tokens,
           cached_tokens = u.cached_tokens + EXCLUDED.cached_tokens, cost_micros = u.cost_micros + EXCLUDED.cost_micros`,
        [a, b],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
    log(`runs ${a}..${b} written`);
  }
}

interface Counts {
  events: number;
  llm: number;
  tools: number;
  runs: number;
  stages: number;
  usage: number;
  bytes: string;
}

async function counts(pool: Pool): Promise<Counts> {
  const { rows } = await pool.query(
    `SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM llm_calls)::int AS llm,
            (SELECT count(*) FROM tool_calls)::int AS tools, (SELECT count(*) FROM runs)::int AS runs,
            (SELECT count(*) FROM stages)::int AS stages, (SELECT count(*) FROM usage_daily)::int AS usage,
            pg_size_pretty(pg_database_size(current_database())) AS bytes`,
  );
  return rows[0] as Counts;
}

function startQuery(port: number): ChildProcess {
  // bench/run.sh copies the Nest build of query beside this build (<out>/query); dist/query otherwise.
  const copy = join(__dirname, '..', 'query', 'services', 'query', 'src', 'main.js');
  const entry = existsSync(copy) ? copy : join(ROOT, 'dist/query/services/query/src/main.js');
  const child = spawn(process.execPath, [entry], {
    env: {
      PATH: env.PATH ?? '',
      PORT: String(port),
      DATABASE_URL: databaseUrl(DB),
      AUTH_JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
      QUERY_RATE_LIMIT: '100000000',
      DATABASE_POOL_SIZE: '10',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

interface Measure {
  route: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** One route's rounds in one step. */
interface Rounds {
  route: string;
  rounds: Measure[];
}

async function load(name: string, url: string, headers: Record<string, string>, paths: () => string): Promise<Measure> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    headers,
    requests: [{ setupRequest: (request) => ({ ...request, path: paths() }) }],
  });
  return {
    route: name,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

async function measure(pool: Pool, port: number): Promise<Rounds[]> {
  const child = startQuery(port);
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      const ready = await fetch(`${url}/health/ready`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ready) break;
      if (i > 1200) throw new Error('query did not become ready in 120 s');
      await delay(100);
    }
    const bearer = await new SignJWT({ tenant_id: 'bt1', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('bench')
      .setIssuer('agentmeter')
      .setAudience('agentmeter-api')
      .setExpirationTime('2h')
      .sign(new TextEncoder().encode(SECRET));
    const headers = { authorization: `Bearer ${bearer}` };
    const { rows } = await pool.query<{ run_id: string; tenant_id: string }>(
      `SELECT run_id, tenant_id FROM runs WHERE status <> 'running' ORDER BY md5(run_id) LIMIT 2000`,
    );
    const runPaths = rows.map((r) => `/runs/${r.run_id}/metrics`);
    let k = 0;
    const routes: Array<[string, () => string]> = [
      ['baseline GET /whoami (auth, no database)', () => '/whoami'],
      ['GET /runs/{id}/metrics (random run)', () => runPaths[k++ % runPaths.length]!],
      ['GET /admin/overview', () => '/admin/overview'],
    ];
    // Warm-up: every route, so connection pools and plans are ready.
    for (const [, path] of routes) for (let i = 0; i < 20; i++) await fetch(`${url}${path()}`, { headers });
    const out: Rounds[] = routes.map(([name]) => ({ route: name, rounds: [] }));
    for (let round = 1; round <= REPEAT; round++) {
      for (const [i, [name, path]] of routes.entries()) {
        log(`round ${round}: load ${name}`);
        out[i]!.rounds.push(await load(name, url, headers, path));
      }
    }
    return out;
  } finally {
    child.kill('SIGTERM');
  }
}

interface Step {
  label: string;
  counts: Counts;
  results: Rounds[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function table(steps: Step[]): string {
  const lines = [
    `| data | route | req/s (rounds) | median req/s | p50 ms | p99 ms | non-2xx |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const each = (r: Rounds, f: (m: Measure) => number) => r.rounds.map((m) => f(m).toLocaleString('en-US')).join(', ');
  for (const step of steps) {
    for (const r of step.results) {
      lines.push(
        `| ${step.label} | ${r.route} | ${each(r, (m) => m.rps)} | **${median(r.rounds.map((m) => m.rps)).toLocaleString('en-US')}** | ${each(r, (m) => m.p50)} | ${each(r, (m) => m.p99)} | ${r.rounds.reduce((n, m) => n + m.errors, 0)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Run metrics' throughput over the baseline's, per round (both measured by the same process a few seconds apart). */
function throughputRatios(step: Step): string {
  const [baseline, metrics] = ['baseline', 'GET /runs/'].map((p) => step.results.find((r) => r.route.startsWith(p))!);
  const ratios = metrics!.rounds.map((m, i) => m.rps / Math.max(baseline!.rounds[i]!.rps, 1));
  return `${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`;
}

function commit(): string {
  try {
    return ` at commit ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()}`;
  } catch {
    return '';
  }
}

function section(steps: Step[]): string {
  const cpu = cpus();
  const rows = steps
    .map(
      (s) =>
        `| ${s.label} | ${s.counts.events.toLocaleString('en-US')} | ${s.counts.llm.toLocaleString('en-US')} | ${s.counts.tools.toLocaleString('en-US')} | ${s.counts.runs.toLocaleString('en-US')} | ${s.counts.usage.toLocaleString('en-US')} | ${s.counts.bytes} |`,
    )
    .join('\n');
  // Growth of the median p50 and p99 over the rounds, from the first step to the last.
  const ratio = (route: string) => {
    const [a, b] = [steps[0], steps[steps.length - 1]].map((s) => s!.results.find((r) => r.route.startsWith(route))!);
    if (!a || !b || steps.length < 2) return 'not measured (one step)';
    const at = (r: Rounds, f: (m: Measure) => number) => Math.max(median(r.rounds.map(f)), 0.01);
    return `${(at(b, (m) => m.p50) / at(a, (m) => m.p50)).toFixed(2)}x p50, ${(at(b, (m) => m.p99) / at(a, (m) => m.p99)).toFixed(2)}x p99`;
  };
  const ratios = steps.map((s) => `${s.label}: ${throughputRatios(s)}`).join('; ');
  return `## Query latency

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${commit()}, Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}; PostgreSQL, the query service and autocannon on the same machine (\`bench/query.bench.ts\`).
Rows written straight into the schema over the last ${DAYS} days (day partitions), ${RUNNING} runs still running${SCALE > 1 ? `; the second step adds ${SCALE - 1}x the runs over the same days` : ''}.
Load: autocannon, ${CONNECTIONS} connections, ${SECONDS} s per route, one route after the other against one query process, ${REPEAT} rounds of the three; run metrics ask for a different finished run every request (as an Admin: the run of another tenant than the caller's, found across tenants).

| data | events | llm_calls | tool_calls | runs | usage_daily rows | database |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${rows}

${table(steps)}

Run metrics' throughput over the baseline's, per round: ${ratios}.
At ${SCALE}x the data, run metrics: ${ratio('GET /runs/')}; admin overview: ${ratio('GET /admin/')} (median latency at ${SCALE}x / at 1x).
Run metrics read the run's row, its stages and its tool calls within the run's own time span (its day partitions)
in one prepared statement, one round trip;
the Admin Overview reads the per-model day rollups (\`usage_model_daily\`: one row per day, tenant, model and
provider, kept by ingest beside \`usage_daily\`) for today's spend and the 30-day trends, the top failures by
index, and the partial index of running runs. Its cost follows days × tenants × models, not the number of
events, projects, roles or users.
`;
}

function writeDoc(text: string): void {
  const path = join(ROOT, 'docs', 'benchmarks.md');
  const doc = readFileSync(path, 'utf8');
  const start = doc.indexOf('## Query latency');
  let next = start === -1 ? -1 : doc.indexOf('\n## ', start + 1);
  if (start === -1) {
    writeFileSync(path, `${doc.trimEnd()}\n\n${text}`);
    return;
  }
  if (next === -1) next = doc.length;
  writeFileSync(path, `${doc.slice(0, start)}${text}${doc.slice(next).replace(/^\n*/, '\n')}`.trimEnd() + '\n');
}

async function main(): Promise<void> {
  await ensureDatabase(databaseUrl(DB));
  await migrate(databaseUrl(DB));
  const pool = new Pool({ connectionString: databaseUrl(DB), max: 4 });
  const now = new Date();
  const span = { from: new Date(now.getTime() - DAYS * 86_400_000), to: new Date(now.getTime() - 3_600_000) };
  try {
    const ds = await createDataSource({ url: databaseUrl(DB), poolSize: 1 }).initialize();
    const days: string[] = [];
    for (let t = span.from.getTime() - 86_400_000; t <= now.getTime() + 86_400_000; t += 86_400_000) {
      days.push(new Date(t).toISOString().slice(0, 10));
    }
    await new PartitionManager(ds).ensureDays(days);
    await ds.destroy();
    await pool.query(
      `INSERT INTO tenants (tenant_id) SELECT 'bt' || t FROM generate_series(1, ${TENANTS}) t;
       INSERT INTO projects (tenant_id, project_id)
       SELECT 'bt' || t, 'bp' || p FROM generate_series(1, ${TENANTS}) t, generate_series(1, ${PROJECTS}) p`,
    );
    const steps: Step[] = [];
    const port = 3950 + Math.floor(Math.random() * 40);

    log(`writing ${RUNS} runs`);
    await generate(pool, 1, RUNS, span, RUNNING);
    await pool.query('VACUUM ANALYZE');
    steps.push({ label: '1x', counts: await counts(pool), results: await measure(pool, port) });
    log(JSON.stringify(steps[0]));

    if (SCALE > 1) {
      log(`writing ${RUNS * (SCALE - 1)} more runs`);
      await generate(pool, RUNS + 1, RUNS * SCALE, span, 0);
      await pool.query('VACUUM ANALYZE');
      steps.push({ label: `${SCALE}x`, counts: await counts(pool), results: await measure(pool, port + 1) });
    }

    const text = section(steps);
    console.log(`\n${text}`);
    if (env.BENCH_WRITE_DOC !== '0') writeDoc(text);
  } finally {
    await pool.end();
    if (env.BENCH_KEEP_DB !== '1') await dropDatabase(databaseUrl(DB));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
