/**
 * Console load: time to a usable page in real Chromium (Playwright, Debian's /usr/bin/chromium) for the run
 * detail page of a run with about a million events, the Admin Overview and Analytics over the same data,
 * each against a baseline measured in the same run: a static page with no framework, served by a bare
 * node:http server, that fetches the same API answers and renders the same numbers and first rows with plain
 * DOM calls (bench/support/console-baseline-*.ts).
 *
 * Run (from the repository root): `make bench BENCH=console`, or `bench/run.sh console` after `make install`
 * and `make infra`.
 *
 * What it does:
 *   - creates its own database (am_bench_console_<id>), migrates it, and drops it at the end;
 *   - fills it (bench/support/console-workload.ts): one run of BENCH_EVENTS (1,000,000) events (LLM and tool
 *     calls, two milestones per stage, over two days) and BENCH_RUNS (3,000) ordinary runs of BENCH_TENANTS
 *     (5) tenants over the last 7 days, with their rollups;
 *   - starts the compiled query service (dist/query, serving the built console, web/dist) as its own process,
 *     and the baseline server beside it;
 *   - for each page, BENCH_REPEAT (5) rounds, the console and the baseline interleaved: a cold load (new
 *     browser context: empty cache, the session in sessionStorage as after sign-in) and a warm load (a second
 *     navigation in the same context: the scripts cached, the API answers not);
 *   - "usable" = the page's main content in the DOM (the test ids below) and one frame drawn after it,
 *     timed from navigation start in the page (performance.now());
 *   - prints markdown and rewrites the "Console load" section of docs/benchmarks.md (BENCH_WRITE_DOC=0 to
 *     leave it alone).
 *
 * Environment: DATABASE_URL (admin URL; the database is created beside it), REDIS_URL, BENCH_EVENTS,
 * BENCH_RUNS, BENCH_TENANTS, BENCH_REPEAT, BENCH_KEEP_DB=1 (keep the database), CHROMIUM_PATH.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { Pool } from 'pg';
import { createDataSource, dropDatabase, ensureDatabase, migrate, PartitionManager } from '../libs/database/src';
import { baselinePage } from './support/console-baseline-pages';
import { startBaselineServer } from './support/console-baseline-server';
import { launchChromium, measureLoad, newProbedContext, type LoadSample } from './support/console-browser';
import { fillConsoleWorkload, type ConsoleWorkload } from './support/console-workload';
import { databaseUrl, log } from './support/bench-env';

const env = process.env;
const ROOT = join(__dirname, '..', '..', '..');
const EVENTS = Number(env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(env.BENCH_RUNS ?? 3_000);
const TENANTS = Number(env.BENCH_TENANTS ?? 5);
const REPEAT = Number(env.BENCH_REPEAT ?? 5);
const DAYS = 7;
const SECRET = randomBytes(32).toString('hex');
const DB = `am_bench_console_${randomBytes(3).toString('hex')}`;

/** A page measured: where the console shows it, where the baseline does, and what "usable" waits for. */
interface Target {
  name: string;
  consolePath: string;
  baselinePath: string;
  selectors: string[];
  credential: 'owner' | 'admin';
}

function targets(w: ConsoleWorkload): Target[] {
  return [
    {
      name: `Run detail (${EVENTS.toLocaleString('en-US')} events)`,
      consolePath: `/runs/${w.bigRunId}`,
      baselinePath: `/bare/run/${w.bigRunId}`,
      // Header numbers (status, cost over its LLM calls) and the first page of the timeline.
      selectors: ['[data-testid="run-status"]', '[data-testid="run-cost"]', '[data-testid="timeline"] li'],
      credential: 'owner',
    },
    {
      name: 'Admin Overview',
      consolePath: '/admin',
      baselinePath: '/bare/admin',
      selectors: [
        '[data-testid="spend-total"]',
        '[data-testid="spend-by-tenant"] tbody tr',
        '[data-testid="trend-cost-7"]',
      ],
      credential: 'admin',
    },
    {
      name: 'Analytics (7 days)',
      consolePath: '/analytics',
      baselinePath: '/bare/analytics',
      selectors: [
        '#top-agents .bar-row',
        '[data-testid="cost-total"]',
        '[data-testid="tool-calls-total"]',
        '[data-testid="mcp-servers"] tr th',
        '[data-testid="tool-error-rate"]',
      ],
      credential: 'owner',
    },
  ];
}

interface Counts {
  events: number;
  big_run_events: number;
  llm: number;
  tools: number;
  runs: number;
  bytes: string;
}

async function counts(pool: Pool, w: ConsoleWorkload): Promise<Counts> {
  const { rows } = await pool.query(
    `SELECT (SELECT count(*) FROM events)::int AS events,
            (SELECT count(*) FROM events WHERE tenant_id = $1 AND run_id = $2)::int AS big_run_events,
            (SELECT count(*) FROM llm_calls)::int AS llm, (SELECT count(*) FROM tool_calls)::int AS tools,
            (SELECT count(*) FROM runs)::int AS runs, pg_size_pretty(pg_database_size(current_database())) AS bytes`,
    [w.tenantId, w.bigRunId],
  );
  return rows[0] as Counts;
}

/** The query service as a user runs it: its compiled build, its own process, serving the built console. */
function startQuery(port: number): ChildProcess {
  // bench/run.sh copies the Nest build of query and web/dist beside this build; dist/ and web/dist otherwise.
  const copy = join(__dirname, '..', 'query', 'services', 'query', 'src', 'main.js');
  const entry = existsSync(copy) ? copy : join(ROOT, 'dist/query/services/query/src/main.js');
  const web = join(__dirname, '..', 'web');
  return spawn(process.execPath, [entry], {
    env: {
      PATH: env.PATH ?? '',
      PORT: String(port),
      DATABASE_URL: databaseUrl(DB),
      REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `${DB}:`,
      AUTH_JWT_SECRET: SECRET,
      PSEUDONYM_KEY: randomBytes(24).toString('hex'),
      CONSOLE_DIR: existsSync(join(web, 'index.html')) ? web : join(ROOT, 'web', 'dist'),
      LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
      QUERY_RATE_LIMIT: '100000000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`query exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/health/ready`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ready) return;
    if (i > 600) throw new Error('query did not become ready');
    await delay(100);
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

function sign(tenantId: string, roles: string[], expiresAt: number): Promise<string> {
  return new SignJWT({ tenant_id: tenantId, roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(`bench-${roles.join('-')}`)
    .setIssuer('agentmeter')
    .setAudience('agentmeter-api')
    .setExpirationTime(Math.floor(expiresAt / 1000))
    .sign(new TextEncoder().encode(SECRET));
}

interface Side {
  cold: LoadSample[];
  warm: LoadSample[];
}

interface PageResult {
  target: Target;
  console: Side;
  baseline: Side;
}

async function measurePages(queryUrl: string, baselineUrl: string, w: ConsoleWorkload): Promise<PageResult[]> {
  const expiresAt = Date.now() + 4 * 3_600_000;
  const credentials = {
    owner: await sign(w.tenantId, ['owner'], expiresAt),
    admin: await sign('bench-platform', ['admin'], expiresAt),
  };
  const browser = await launchChromium(ROOT);
  try {
    const results: PageResult[] = [];
    for (const target of targets(w)) {
      const result: PageResult = { target, console: { cold: [], warm: [] }, baseline: { cold: [], warm: [] } };
      // One load of each first: query's connection pool and PostgreSQL's caches are then warm for both sides.
      for (const [origin, path] of [
        [queryUrl, target.consolePath],
        [baselineUrl, target.baselinePath],
      ] as const) {
        const context = await newProbedContext(browser, credentials[target.credential], expiresAt, target.selectors);
        await measureLoad(context, `${origin}${path}`);
        await context.close();
      }
      for (let round = 0; round < REPEAT; round++) {
        const sides = [
          ['console', queryUrl, target.consolePath],
          ['baseline', baselineUrl, target.baselinePath],
        ] as const;
        for (const [side, origin, path] of round % 2 === 0 ? sides : [...sides].reverse()) {
          const context = await newProbedContext(browser, credentials[target.credential], expiresAt, target.selectors);
          try {
            result[side].cold.push(await measureLoad(context, `${origin}${path}`));
            result[side].warm.push(await measureLoad(context, `${origin}${path}`));
          } finally {
            await context.close();
          }
        }
        log(
          `${target.name} round ${round + 1}: console ${ms(result.console.cold.at(-1)!.usableMs)} / ${ms(result.console.warm.at(-1)!.usableMs)} ms, ` +
            `baseline ${ms(result.baseline.cold.at(-1)!.usableMs)} / ${ms(result.baseline.warm.at(-1)!.usableMs)} ms (cold / warm)`,
        );
      }
      results.push(result);
    }
    return results;
  } finally {
    await browser.close();
  }
}

const ms = (value: number) => Math.round(value).toLocaleString('en-US');
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The API call that ended last before the page was usable, most often across the console's cold loads. */
function slowestApi(samples: LoadSample[]): string {
  const seen = new Map<string, number[]>();
  for (const s of samples) {
    if (!s.slowestApi) continue;
    const path = s.slowestApi.path.split('?', 1)[0]!;
    seen.set(path, [...(seen.get(path) ?? []), s.slowestApi.ms]);
  }
  const [path, times] = [...seen.entries()].sort((a, b) => b[1].length - a[1].length)[0] ?? ['', []];
  return path ? `\`${path}\` ${ms(median(times))} ms` : '—';
}

/** The requests of the sample nearest the median, as `path start→end`, then when it was usable. */
function waterfall(samples: LoadSample[], medianMs: number): string {
  const sample = [...samples].sort((a, b) => Math.abs(a.usableMs - medianMs) - Math.abs(b.usableMs - medianMs))[0];
  if (!sample) return '—';
  const requests = sample.waterfall.map((r) => {
    const path = r.path.split('?', 1)[0]!.replace(/-[\w-]{8}\.js$/, '-*.js');
    return `\`${path}\` ${ms(r.startMs)}→${ms(r.endMs)}`;
  });
  return `${requests.join(', ')}, usable at ${ms(sample.usableMs)}`;
}

function section(results: PageResult[], counts: Counts, commit: string): string {
  const cpu = cpus();
  const load = loadavg().map((l) => l.toFixed(1));
  const rows: string[] = [];
  const ratios: string[] = [];
  const waterfalls: string[] = [];
  for (const r of results) {
    const c = {
      cold: median(r.console.cold.map((s) => s.usableMs)),
      warm: median(r.console.warm.map((s) => s.usableMs)),
    };
    const b = {
      cold: median(r.baseline.cold.map((s) => s.usableMs)),
      warm: median(r.baseline.warm.map((s) => s.usableMs)),
    };
    const jsAtUsable = median(r.console.cold.map((s) => s.jsBytesAtUsable));
    const jsAll = median(r.console.cold.map((s) => s.jsBytes));
    const inline = Buffer.byteLength(
      baselinePage(r.target.baselinePath.split('/')[2] as 'run' | 'admin' | 'analytics'),
    );
    const per = (side: Side, kind: 'cold' | 'warm') => side[kind].map((s) => ms(s.usableMs)).join(' / ');
    rows.push(
      `| ${r.target.name} | console | **${ms(c.cold)}** | **${ms(c.warm)}** | ${per(r.console, 'cold')} | ${kib(jsAtUsable)} (${kib(jsAll)} in all) | ${median(r.console.cold.map((s) => s.apiCalls))} | ${slowestApi(r.console.cold)} |`,
      `| | baseline | **${ms(b.cold)}** | **${ms(b.warm)}** | ${per(r.baseline, 'cold')} | none (${kib(inline)} HTML with its inline script) | ${median(r.baseline.cold.map((s) => s.apiCalls))} | ${slowestApi(r.baseline.cold)} |`,
    );
    ratios.push(`${r.target.name} ${(c.cold / b.cold).toFixed(2)}× cold, ${(c.warm / b.warm).toFixed(2)}× warm`);
    waterfalls.push(
      `- ${r.target.name}: ${waterfall(r.console.cold, c.cold)}; baseline: ${waterfall(r.baseline.cold, b.cold)}`,
    );
  }
  return `## Console load

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at commit ${commit}, Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}; Chromium (headless, 1280 × 800), the query service and PostgreSQL on the same machine (\`bench/console.bench.ts\`).
Data (bench/support/console-workload.ts): ${counts.events.toLocaleString('en-US')} events (${counts.big_run_events.toLocaleString('en-US')} of them in the one run measured), ${counts.llm.toLocaleString('en-US')} LLM calls, ${counts.tools.toLocaleString('en-US')} tool calls, ${counts.runs.toLocaleString('en-US')} runs of ${TENANTS} tenants over ${DAYS} days with their rollups; database ${counts.bytes}.

- **console**: the built console served by the compiled query service (\`dist/query\`, its own process), signed
  in (the session in sessionStorage, as after sign-in).
- **baseline**: a static page with no framework served by a bare \`node:http\` server, which passes API
  requests through to the same query service: it fetches the same answers in parallel and renders the same
  numbers and first rows with plain DOM calls.
- **usable**: the page's main content in the DOM (run detail: status, cost over its LLM calls and the first
  timeline rows; Admin Overview: spend today, by tenant and the 7-day cost; Analytics: top agents, cost,
  tool calls, MCP servers and the error rate) and one frame drawn after it, from navigation start.
  **Cold**: a new browser context (empty cache); **warm**: a second navigation in it (scripts cached, API
  answers fetched again). ${REPEAT} rounds, the two sides interleaved, after one unmeasured load of each.

| page | side | cold ms (median) | warm ms (median) | cold ms per round | JS transferred until usable (cold) | API calls until usable | slowest API call until usable (median) |
| --- | --- | ---: | ---: | --- | --- | ---: | --- |
${rows.join('\n')}

**console / baseline** (ratio of medians): ${ratios.join('; ')}.

Where the time went in the median cold load (requests until usable, start → end in ms from navigation start;
hashes and query strings left out):

${waterfalls.join('\n')}

Load average when the run ended (1/5/15 min): ${load.join(' / ')} on ${cpu.length} cores.
`;
}

function writeDoc(text: string): void {
  const path = join(ROOT, 'docs', 'benchmarks.md');
  const doc = readFileSync(path, 'utf8');
  const start = doc.indexOf('## Console load');
  if (start === -1) {
    writeFileSync(path, `${doc.trimEnd()}\n\n${text}`);
    return;
  }
  let next = doc.indexOf('\n## ', start + 1);
  if (next === -1) next = doc.length;
  writeFileSync(path, `${doc.slice(0, start)}${text}${doc.slice(next).replace(/^\n*/, '\n')}`.trimEnd() + '\n');
}

async function main(): Promise<void> {
  await ensureDatabase(databaseUrl(DB));
  await migrate(databaseUrl(DB));
  const pool = new Pool({ connectionString: databaseUrl(DB), max: 2 });
  const now = new Date();
  let query: ChildProcess | undefined;
  let baseline: { stop(): Promise<void> } | undefined;
  try {
    const ds = await createDataSource({ url: databaseUrl(DB), poolSize: 1 }).initialize();
    const days: string[] = [];
    for (let t = now.getTime() - (DAYS + 1) * 86_400_000; t <= now.getTime() + 86_400_000; t += 86_400_000) {
      days.push(new Date(t).toISOString().slice(0, 10));
    }
    await new PartitionManager(ds).ensureDays(days);
    await ds.destroy();

    log(`writing a run of ${EVENTS} events and ${RUNS} runs`);
    const workload = await fillConsoleWorkload(pool, {
      bigRunEvents: EVENTS,
      runs: RUNS,
      days: DAYS,
      tenants: TENANTS,
      now,
    });
    await pool.query('VACUUM ANALYZE');
    const stored = await counts(pool, workload);
    log(JSON.stringify(stored));

    const port = await freePort();
    const queryUrl = `http://127.0.0.1:${port}`;
    query = startQuery(port);
    await waitReady(queryUrl, query);
    const bare = await startBaselineServer(queryUrl);
    baseline = bare;
    const results = await measurePages(queryUrl, bare.url, workload);

    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const text = section(results, stored, commit);
    console.log(`\n${text}`);
    if (env.BENCH_WRITE_DOC !== '0') writeDoc(text);
  } finally {
    await baseline?.stop();
    query?.kill('SIGTERM');
    await pool.end();
    if (env.BENCH_KEEP_DB !== '1') await dropDatabase(databaseUrl(DB));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
