import type { Pool, PoolClient } from 'pg';
import { LATENCY_BUCKETS_MS } from '../../libs/domain/src/projection/usage-rollup';

/**
 * The data the console benchmark reads (bench/console.bench.ts), written straight into the schema with
 * INSERT ... SELECT over generate_series: no ingest, the point is the read path. One run holds about a
 * million events (the run detail page's worst case); a few thousand ordinary runs of several tenants fill
 * the overviews and analytics around it.
 *
 * Every write of raw facts is in `fillConsoleWorkload` and the statements it calls: the tables written are
 * those ingest writes at this commit (runs, stages, llm_calls, tool_calls, event_log, failures, usage_daily,
 * usage_model_daily). When the storage of events changes, this file is the one to adapt.
 */
export interface ConsoleWorkloadOptions {
  /** Events of the big run (llm and tool calls, two milestones per stage), about. */
  bigRunEvents: number;
  /** Ordinary runs (5 stages, 3 LLM and 2 tool calls per stage: 37 events each). */
  runs: number;
  /** The ordinary runs spread over the last `days` days; the big run over the last two. */
  days: number;
  tenants: number;
  now: Date;
}

export interface ConsoleWorkload {
  tenantId: string;
  projectId: string;
  bigRunId: string;
}

const PROJECTS = 4;
/** LLM calls, tool calls per stage of the big run; with its two milestones, 502 events per stage. */
const BIG_STAGE = { llm: 300, tool: 200 };
const SMALL_STAGE = { llm: 3, tool: 2 };
const SMALL_STAGES = 5;
const BATCH_RUNS = 2_000;
const BATCH_STAGES = 100;
const MODELS: Array<[string, string, number, number]> = [
  ['gpt-4.1', 'openai', 2_000_000, 8_000_000],
  ['gpt-4.1-mini', 'openai', 400_000, 1_600_000],
  ['claude-sonnet-4-5', 'anthropic', 3_000_000, 15_000_000],
  ['claude-haiku-4-5', 'anthropic', 1_000_000, 5_000_000],
];
const MCP_SERVERS = ['github', 'search', 'filesystem'];

/** Runs of one shape: ids `<prefix><i>` for i in [first, last], each starting `stepMs` after the previous. */
interface RunBatch {
  prefix: string;
  first: number;
  last: number;
  /** Stage range [stageFirst, stageLast] of each run written by this batch (the big run is written in slices). */
  stageFirst: number;
  stageLast: number;
  stages: number;
  llm: number;
  tool: number;
  from: Date;
  stepMs: number;
  stageMs: number;
  tenants: number;
  /** The run's tenant: fixed, or spread over `tenants` by run number. */
  tenant: string | null;
  project: string | null;
}

/** Writes the console benchmark's data into a migrated database whose day partitions exist. */
export async function fillConsoleWorkload(pool: Pool, options: ConsoleWorkloadOptions): Promise<ConsoleWorkload> {
  const { now } = options;
  const workload: ConsoleWorkload = { tenantId: 'ct1', projectId: 'ct1-p1', bigRunId: 'million-1' };
  await pool.query(
    `INSERT INTO tenants (tenant_id) SELECT 'ct' || t FROM generate_series(1, $1::int) t;
     INSERT INTO projects (tenant_id, project_id)
     SELECT 'ct' || t, 'ct' || t || '-p' || p FROM generate_series(1, $1::int) t, generate_series(1, ${PROJECTS}) p`.replace(
      /\$1::int/g,
      String(options.tenants),
    ),
  );

  const bigStages = Math.ceil(options.bigRunEvents / (BIG_STAGE.llm + BIG_STAGE.tool + 2));
  const bigFrom = new Date(now.getTime() - 2 * 86_400_000);
  const bigStageMs = (2 * 86_400_000 - 3_600_000) / bigStages;
  for (let s = 0; s < bigStages; s += BATCH_STAGES) {
    await inTransaction(pool, (client) =>
      insertRuns(client, {
        prefix: 'million-',
        first: 1,
        last: 1,
        stageFirst: s,
        stageLast: Math.min(bigStages, s + BATCH_STAGES) - 1,
        stages: bigStages,
        ...BIG_STAGE,
        from: bigFrom,
        stepMs: 0,
        stageMs: bigStageMs,
        tenants: options.tenants,
        tenant: workload.tenantId,
        project: workload.projectId,
      }),
    );
  }

  const span = options.days * 86_400_000 - 2 * 3_600_000;
  for (let a = 1; a <= options.runs; a += BATCH_RUNS) {
    await inTransaction(pool, (client) =>
      insertRuns(client, {
        prefix: 'cr',
        first: a,
        last: Math.min(options.runs, a + BATCH_RUNS - 1),
        stageFirst: 0,
        stageLast: SMALL_STAGES - 1,
        stages: SMALL_STAGES,
        ...SMALL_STAGE,
        from: new Date(now.getTime() - options.days * 86_400_000),
        stepMs: span / options.runs,
        stageMs: 10 * 60_000,
        tenants: options.tenants,
        tenant: null,
        project: null,
      }),
    );
  }
  await inTransaction(pool, (client) => totalsAndRollups(client));
  return workload;
}

async function inTransaction(pool: Pool, work: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await work(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

async function insertRuns(client: PoolClient, b: RunBatch): Promise<void> {
  const perStage = b.llm + b.tool + 2;
  const modelValues = MODELS.map(([m, pr, i, o], k) => `(${k}, '${m}', '${pr}', ${i}, ${o})`).join(', ');
  const servers = `ARRAY[${MCP_SERVERS.map((s) => `'${s}'`).join(', ')}]`;
  // $1 prefix, $2 first, $3 last, $4 from, $5 ms between runs, $6 ms per stage, $7 first stage, $8 last stage
  const params = [b.prefix, b.first, b.last, b.from, b.stepMs, b.stageMs, b.stageFirst, b.stageLast];
  const run = `FROM generate_series($2::int, $3::int) AS i
    CROSS JOIN LATERAL (SELECT $4::timestamptz + ((i - $2::int) * $5::float8) * interval '1 ms' AS t0,
        $1::text || i AS run,
        ${b.tenant ? `'${b.tenant}'` : `'ct' || (1 + i % ${b.tenants})`} AS tenant,
        ${b.project ? `'${b.project}'` : `'ct' || (1 + i % ${b.tenants}) || '-p' || (1 + (i / ${b.tenants}) % ${PROJECTS})`} AS project,
        CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END AS fate) AS r`;
  const stage = `CROSS JOIN generate_series($7::int, $8::int) AS k
    CROSS JOIN LATERAL (SELECT (ARRAY['plan', 'implement', 'validate', 'publish'])[1 + k % 4] AS phase, 1 + k / 4 AS attempt,
        (ARRAY['planner', 'implementer', 'validator', 'publisher'])[1 + k % 4] AS role,
        t0 + (k * $6::float8) * interval '1 ms' AS s0) AS st`;
  const at = (slot: string) => `s0 + ((${slot}) * $6::float8 / ${perStage}) * interval '1 ms'`;
  const runEnd = `t0 + (${b.stages} * $6::float8) * interval '1 ms'`;

  if (b.stageFirst === 0) {
    await client.query(
      `INSERT INTO runs (tenant_id, run_id, project_id, playbook, status, status_rank, status_at, phase, role, phase_at,
         started_at, finished_at, model, model_at, first_event_at, last_event_at, environment)
       SELECT tenant, run, project, 'landing-page', fate, CASE fate WHEN 'succeeded' THEN 2 ELSE 3 END, ${runEnd},
              'publish', 'publisher', ${runEnd}, t0, ${runEnd}, 'gpt-4.1', t0, t0, ${runEnd},
              '{"name":"bench","region":"eu-west-1"}'::jsonb
       ${run}`,
      params.slice(0, 6),
    );
  }
  await client.query(
    `INSERT INTO stages (tenant_id, run_id, phase, attempt, role, status, status_rank, status_at, started_at, finished_at, trace_id)
     SELECT tenant, run, phase, attempt, role, 'passed', 3, s0 + $6::float8 * interval '1 ms', s0,
            s0 + $6::float8 * interval '1 ms', md5(run || k)
     ${run} ${stage}`,
    params,
  );
  // Each call with its payload (docs/decisions.md "Call facts stored once": calls are not in the event log).
  await client.query(
    `INSERT INTO llm_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model, provider,
       prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros, cost_source, latency_ms, cached,
       status, trace_id, span_id, user_id, time, payload)
     SELECT calls.*, json_build_object('tenant_id', tenant_id, 'project_id', project_id, 'run_id', run_id, 'phase', phase,
              'attempt', attempt, 'role', role, 'model', model, 'provider', provider, 'prompt_tokens', prompt_tokens,
              'completion_tokens', completion_tokens, 'latency_ms', latency_ms, 'trace_id', trace_id)
     FROM (SELECT 'bench', run || '-' || k || '-l' || c, tenant, project, run, phase, attempt, role, m.model, m.provider,
            pt, ct, pt / 10, 0, (pt::bigint * m.input + ct::bigint * m.output + 500000) / 1000000, 'computed',
            300 + h % 9000, false, 'ok', md5(run || k), substr(md5(run || k || c), 1, 16), NULL, ${at('c')}
     ${run} ${stage}
     CROSS JOIN generate_series(1, ${b.llm}) AS c
     CROSS JOIN LATERAL (SELECT (hashtext(run || k || c)::bigint & 2147483647) AS h) AS hh
     CROSS JOIN LATERAL (SELECT 200 + h % 12000 AS pt, 50 + (h / 7) % 3000 AS ct) AS tok
     JOIN (VALUES ${modelValues}) AS m(n, model, provider, input, output) ON m.n = (i + c) % ${MODELS.length}) AS calls(source, event_id, tenant_id, project_id, run_id, phase, attempt, role, model, provider, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros, cost_source, latency_ms, cached, status, trace_id, span_id, user_id, time)`,
    params,
  );
  await client.query(
    `INSERT INTO tool_calls (source, event_id, tenant_id, project_id, run_id, phase, attempt, role, tool, mcp_server,
       cache_key_space, cache_hit, latency_ms, status, trace_id, time, payload)
     SELECT calls.*, json_build_object('tenant_id', tenant_id, 'project_id', project_id, 'run_id', run_id, 'phase', phase,
              'attempt', attempt, 'role', role, 'tool', tool, 'mcp_server', mcp_server,
              'cache_key_space', cache_key_space, 'cache_hit', cache_hit, 'latency_ms', latency_ms)
     FROM (SELECT 'bench', run || '-' || k || '-t' || c, tenant, project, run, phase, attempt, role,
            srv || CASE WHEN c % 2 = 0 THEN '.read' ELSE '.list' END, srv,
            'amtp:mcp:' || srv, h % 10 < 7, 1 + h % 900, CASE WHEN h % 50 = 0 THEN 'error' ELSE 'ok' END,
            md5(run || k), ${at(`${b.llm} + c`)}
     ${run} ${stage}
     CROSS JOIN generate_series(1, ${b.tool}) AS c
     CROSS JOIN LATERAL (SELECT (hashtext(run || k || 't' || c)::bigint & 2147483647) AS h,
                                (${servers})[1 + (i + c) % ${MCP_SERVERS.length}] AS srv) AS hh) AS calls(source, event_id, tenant_id, project_id, run_id, phase, attempt, role, tool, mcp_server, cache_key_space, cache_hit, latency_ms, status, trace_id, time)`,
    params,
  );
  // The milestones: phase_entered and its outcome per stage, run_started and the run's end.
  await client.query(
    `INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
     SELECT 'bench', run || '-' || k || '-' || e.kind, tenant, run,
            CASE e.kind WHEN 'in' THEN 'phase_entered'
              WHEN 'out' THEN CASE WHEN phase = 'publish' THEN 'publish_done' ELSE 'phase_advanced' END END,
            CASE e.kind WHEN 'in' THEN s0 ELSE ${at(`${perStage - 1}`)} END,
            json_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run, 'phase', phase,
              'attempt', attempt, 'role', role, 'artifact_path', 'artifacts/' || run || '/' || phase || '.md'),
            md5(run || k)
     ${run} ${stage}
     CROSS JOIN (VALUES ('in'), ('out')) AS e(kind)`,
    params,
  );
  if (b.stageFirst === 0) {
    await client.query(
      `INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
       SELECT 'bench', run || '-start', tenant, run, 'run_started', t0,
              json_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run, 'playbook', 'landing-page'), NULL
       ${run}`,
      params.slice(0, 5),
    );
  }
  if (b.stageLast === b.stages - 1) {
    await client.query(
      `INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
       SELECT 'bench', run || '-end', tenant, run, CASE fate WHEN 'failed' THEN 'run_failed' ELSE 'run_finished' END,
              ${runEnd}, json_build_object('tenant_id', tenant, 'project_id', project, 'run_id', run,
                'error', CASE WHEN fate = 'failed' THEN 'validation failed on every attempt' END), NULL
       ${run}`,
      params.slice(0, 6),
    );
    await client.query(
      `INSERT INTO failures (tenant_id, run_id, phase, role, reason, artifact_ref, first_seen, last_seen, count)
       SELECT tenant, run, 'publish', 'publisher', 'schema mismatch', '', ${runEnd}, ${runEnd}, 1
       ${run} WHERE fate = 'failed'
       ON CONFLICT DO NOTHING`,
      params.slice(0, 6),
    );
  }
}

/** Stage and run totals from their calls, and the day rollups ingest keeps (usage_daily, usage_model_daily). */
async function totalsAndRollups(client: PoolClient): Promise<void> {
  const buckets = [
    ...LATENCY_BUCKETS_MS.map((b, i) =>
      i === 0 ? `latency_ms <= ${b}` : `latency_ms > ${LATENCY_BUCKETS_MS[i - 1]} AND latency_ms <= ${b}`,
    ),
    `latency_ms > ${LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]}`,
  ]
    .map((c) => `count(*) FILTER (WHERE ${c})`)
    .join(', ');
  await client.query(
    `UPDATE stages s SET prompt_tokens = c.pt, completion_tokens = c.ct, cached_tokens = c.cached, cost_micros = c.cost,
            llm_calls = c.n
       FROM (SELECT tenant_id, run_id, phase, attempt, sum(prompt_tokens) pt, sum(completion_tokens) ct,
                    sum(cached_tokens) cached, sum(cost_micros) cost, count(*) n
               FROM llm_calls GROUP BY 1, 2, 3, 4) c
      WHERE s.tenant_id = c.tenant_id AND s.run_id = c.run_id AND s.phase = c.phase AND s.attempt = c.attempt`,
  );
  await client.query(
    `UPDATE runs r SET tokens_in = c.pt, tokens_out = c.ct, cost_micros = c.cost, llm_calls = c.n
       FROM (SELECT tenant_id, run_id, sum(prompt_tokens) pt, sum(completion_tokens) ct, sum(cost_micros) cost,
                    sum(llm_calls) n
               FROM stages GROUP BY 1, 2) c
      WHERE r.tenant_id = c.tenant_id AND r.run_id = c.run_id`,
  );
  for (const [table, kind, dims, tokens] of [
    [
      'llm_calls',
      'llm',
      `model, provider, '' AS tool, '' AS mcp_server, COALESCE(user_id, '') AS user_id`,
      'sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micros)',
    ],
    [
      'tool_calls',
      'tool',
      `'' AS model, '' AS provider, tool, COALESCE(mcp_server, '') AS mcp_server, '' AS user_id`,
      '0, 0, 0, 0',
    ],
  ] as const) {
    await client.query(
      `INSERT INTO usage_daily (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id,
         call_count, success_count, failure_count, total_latency_ms, latency_buckets, input_tokens, output_tokens,
         cached_tokens, cost_micros, unpriced_calls)
       SELECT (time AT TIME ZONE 'UTC')::date, tenant_id, project_id, role, '${kind}', ${dims}, count(*),
              count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status <> 'ok'), sum(latency_ms),
              ARRAY[${buckets}]::bigint[], ${tokens}, 0
         FROM ${table}
        GROUP BY 1, 2, 3, 4, 6, 7, 8, 9, 10`,
    );
  }
  await client.query(
    `INSERT INTO usage_model_daily (day, tenant_id, model, provider, call_count, input_tokens, output_tokens,
       cached_tokens, cost_micros, unpriced_calls)
     SELECT (time AT TIME ZONE 'UTC')::date, tenant_id, model, provider, count(*), sum(prompt_tokens),
            sum(completion_tokens), sum(cached_tokens), sum(cost_micros), 0
       FROM llm_calls GROUP BY 1, 2, 3, 4`,
  );
}
