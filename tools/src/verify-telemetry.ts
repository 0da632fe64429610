import { randomBytes } from 'node:crypto';

/**
 * Post-deploy check of the tracing pipeline (docs/observability.md "Verification after a deploy"): emits one `llm.completion`
 * trace with two child spans and the three token counters to the OpenTelemetry Collector over OTLP/HTTP (JSON),
 * prints the trace id once on its own line on stdout, then polls Tempo until the trace is there or the time
 * budget runs out. Everything else goes to stderr, so `TRACE_ID=$(node verify-telemetry.js)` captures the id.
 *
 *   node dist/tools/tools/src/verify-telemetry.js [--otlp URL] [--tempo URL] [--budget-seconds 60] [--interval-seconds 3]
 *
 * Defaults: OTEL_EXPORTER_OTLP_ENDPOINT, else http://127.0.0.1:${OBS_OTEL_HTTP_PORT:-4318}; TEMPO_URL, else
 * http://127.0.0.1:${OBS_TEMPO_HTTP_PORT:-3200}. Exit 0: found; 1: not found within the budget; 2: the collector
 * refused or could not be reached; 64: bad arguments.
 *
 * OTLP/JSON is built by hand rather than with the OpenTelemetry SDK: the payload is the contract under test
 * (docs/observability.md "Instrumentation contract"), and the tool then needs no exporter packages at run time.
 */

/** Counter instruments of the LLM contract; the collector exposes them as llm_<name>_total. */
export const TOKEN_INSTRUMENTS = ['prompt_tokens', 'completion_tokens', 'total_tokens'] as const;

/** The collector's Prometheus exporter namespace (deploy/observability/otel-collector.yaml). */
export const COLLECTOR_NAMESPACE = 'llm';

export function prometheusNameOf(instrument: string): string {
  return `${COLLECTOR_NAMESPACE}_${instrument}_total`;
}

/** The call the verification trace describes (128 prompt, 64 completion, 192 total, gpt-4o, openai). */
export const VERIFY_CALL = {
  provider: 'openai',
  model: 'gpt-4o',
  requestType: 'chat',
  promptTokens: 128,
  completionTokens: 64,
} as const;

export interface VerifyOptions {
  otlpEndpoint: string;
  tempoUrl: string;
  budgetMs: number;
  intervalMs: number;
  serviceName: string;
}

export class UsageError extends Error {}

export function optionsFrom(argv: readonly string[], env: NodeJS.ProcessEnv): VerifyOptions {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (!['--otlp', '--tempo', '--budget-seconds', '--interval-seconds', '--service-name'].includes(flag)) {
      throw new UsageError(`unknown argument ${arg}`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
    flags.set(flag, value);
  }
  const seconds = (flag: string, fallback: number): number => {
    const raw = flags.get(flag);
    if (raw === undefined) return fallback * 1000;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a positive number of seconds`);
    return Math.round(value * 1000);
  };
  const url = (flag: string, fallback: string): string => {
    const value = flags.get(flag) ?? fallback;
    try {
      return new URL(value).toString().replace(/\/+$/, '');
    } catch {
      throw new UsageError(`${flag}: not a URL: ${value}`);
    }
  };
  return {
    otlpEndpoint: url(
      '--otlp',
      env.OTEL_EXPORTER_OTLP_ENDPOINT || `http://127.0.0.1:${env.OBS_OTEL_HTTP_PORT || 4318}`,
    ),
    tempoUrl: url('--tempo', env.TEMPO_URL || `http://127.0.0.1:${env.OBS_TEMPO_HTTP_PORT || 3200}`),
    budgetMs: seconds('--budget-seconds', 60),
    intervalMs: seconds('--interval-seconds', 3),
    serviceName: flags.get('--service-name') ?? 'agentmeter-verify-telemetry',
  };
}

export interface TraceIds {
  traceId: string;
  rootSpanId: string;
  inferenceSpanId: string;
  parseSpanId: string;
}

export function newTraceIds(random: (size: number) => Buffer = randomBytes): TraceIds {
  return {
    traceId: random(16).toString('hex'),
    rootSpanId: random(8).toString('hex'),
    inferenceSpanId: random(8).toString('hex'),
    parseSpanId: random(8).toString('hex'),
  };
}

type AnyValue = { stringValue: string } | { intValue: string };
interface KeyValue {
  key: string;
  value: AnyValue;
}

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });
const int = (key: string, value: number): KeyValue => ({ key, value: { intValue: String(value) } });
/** OTLP/JSON carries 64-bit nanoseconds as decimal strings. */
const nanos = (ms: number): string => (BigInt(ms) * 1_000_000n).toString();

const resourceOf = (serviceName: string): { attributes: KeyValue[] } => ({
  attributes: [str('service.name', serviceName), str('telemetry.sdk.language', 'nodejs')],
});

const SCOPE = { name: 'agentmeter.verify-telemetry', version: '1' };

const SPAN_KIND_INTERNAL = 1;
const SPAN_KIND_CLIENT = 3;
const STATUS_CODE_OK = 1;

/** The attributes the instrumentation contract (docs/observability.md) requires on an LLM span. */
export function llmSpanAttributes(): KeyValue[] {
  const call = VERIFY_CALL;
  return [
    str('llm.provider', call.provider),
    str('llm.model', call.model),
    str('llm.request.type', call.requestType),
    int('llm.tokens.prompt', call.promptTokens),
    int('llm.tokens.completion', call.completionTokens),
    int('llm.tokens.total', call.promptTokens + call.completionTokens),
    str('gen_ai.system', call.provider),
    str('gen_ai.request.model', call.model),
  ];
}

/** ExportTraceServiceRequest: `llm.completion` (1.2 s) with children `llm.inference` and `llm.response.parse`. */
export function traceRequest(ids: TraceIds, startMs: number, serviceName: string): unknown {
  const span = (
    spanId: string,
    parentSpanId: string,
    name: string,
    kind: number,
    from: number,
    to: number,
    attributes: KeyValue[],
  ): Record<string, unknown> => ({
    traceId: ids.traceId,
    spanId,
    ...(parentSpanId ? { parentSpanId } : {}),
    name,
    kind,
    startTimeUnixNano: nanos(startMs + from),
    endTimeUnixNano: nanos(startMs + to),
    attributes,
    status: { code: STATUS_CODE_OK },
  });
  return {
    resourceSpans: [
      {
        resource: resourceOf(serviceName),
        scopeSpans: [
          {
            scope: SCOPE,
            spans: [
              span(ids.rootSpanId, '', 'llm.completion', SPAN_KIND_CLIENT, 0, 1200, llmSpanAttributes()),
              span(ids.inferenceSpanId, ids.rootSpanId, 'llm.inference', SPAN_KIND_INTERNAL, 20, 1100, [
                str('llm.model', VERIFY_CALL.model),
                str('llm.provider', VERIFY_CALL.provider),
              ]),
              span(ids.parseSpanId, ids.rootSpanId, 'llm.response.parse', SPAN_KIND_INTERNAL, 1100, 1190, [
                str('llm.model', VERIFY_CALL.model),
              ]),
            ],
          },
        ],
      },
    ],
  };
}

/**
 * ExportMetricsServiceRequest: the three monotonic cumulative counters. The unit is `{token}`: an annotation the
 * collector leaves out of the Prometheus name, where a bare `token` would make it llm_prompt_tokens_token_total.
 */
export function metricsRequest(startMs: number, nowMs: number, serviceName: string): unknown {
  const values: Record<(typeof TOKEN_INSTRUMENTS)[number], number> = {
    prompt_tokens: VERIFY_CALL.promptTokens,
    completion_tokens: VERIFY_CALL.completionTokens,
    total_tokens: VERIFY_CALL.promptTokens + VERIFY_CALL.completionTokens,
  };
  const attributes = [
    str('llm.model', VERIFY_CALL.model),
    str('llm.provider', VERIFY_CALL.provider),
    str('gen_ai.system', VERIFY_CALL.provider),
  ];
  return {
    resourceMetrics: [
      {
        resource: resourceOf(serviceName),
        scopeMetrics: [
          {
            scope: SCOPE,
            metrics: TOKEN_INSTRUMENTS.map((name) => ({
              name,
              unit: '{token}',
              description: `LLM ${name.replace('_', ' ')} (verification)`,
              sum: {
                aggregationTemporality: 2, // cumulative
                isMonotonic: true,
                dataPoints: [
                  {
                    attributes,
                    startTimeUnixNano: nanos(startMs),
                    timeUnixNano: nanos(nowMs),
                    asInt: String(values[name]),
                  },
                ],
              },
            })),
          },
        ],
      },
    ],
  };
}

export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** POSTs one OTLP/JSON export; a refused request or a partial success with rejected items is an error. */
export async function exportOtlp(fetchFn: Fetch, url: string, body: unknown): Promise<void> {
  const response = await fetchFn(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text.slice(0, 300)}`);
  const partial = (text ? (JSON.parse(text) as { partialSuccess?: Record<string, unknown> }) : {}).partialSuccess;
  const rejected = Number(partial?.rejectedSpans ?? partial?.rejectedDataPoints ?? 0);
  if (rejected > 0) throw new Error(`${url} rejected ${rejected} item(s): ${String(partial?.errorMessage ?? '')}`);
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface PollResult {
  found: boolean;
  attempts: number;
  lastStatus: string;
}

/** GET /api/traces/<id> until 200, for at most `budgetMs` (the first attempt always runs). */
export async function waitForTrace(
  fetchFn: Fetch,
  clock: Clock,
  options: Pick<VerifyOptions, 'tempoUrl' | 'budgetMs' | 'intervalMs'>,
  traceId: string,
  log: (line: string) => void,
): Promise<PollResult> {
  const deadline = clock.now() + options.budgetMs;
  const maxAttempts = Math.max(1, Math.floor(options.budgetMs / options.intervalMs));
  const url = `${options.tempoUrl}/api/traces/${traceId}`;
  let lastStatus: string;
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetchFn(url, { signal: AbortSignal.timeout(Math.max(1000, options.intervalMs)) });
      await response.arrayBuffer(); // release the connection
      lastStatus = String(response.status);
      if (response.status === 200) {
        log(`Trace ${traceId} confirmed in Tempo (attempt ${attempt})`);
        return { found: true, attempts: attempt, lastStatus };
      }
    } catch (error) {
      lastStatus = `error: ${error instanceof Error ? error.message : String(error)}`;
    }
    log(`Waiting for Tempo to ingest the trace... (${attempt}/${maxAttempts}, status=${lastStatus})`);
    if (clock.now() + options.intervalMs >= deadline) return { found: false, attempts: attempt, lastStatus };
    await clock.sleep(options.intervalMs);
  }
}

async function main(): Promise<number> {
  let options: VerifyOptions;
  try {
    options = optionsFrom(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`verify-telemetry: ${error.message}`);
    return 64;
  }
  const log = (line: string): void => console.error(line);
  const ids = newTraceIds();
  const start = Date.now();
  try {
    await exportOtlp(fetch, `${options.otlpEndpoint}/v1/traces`, traceRequest(ids, start, options.serviceName));
    await exportOtlp(
      fetch,
      `${options.otlpEndpoint}/v1/metrics`,
      metricsRequest(start, Date.now(), options.serviceName),
    );
  } catch (error) {
    log(`verify-telemetry: could not export to the collector at ${options.otlpEndpoint}: ${String(error)}`);
    return 2;
  }
  console.log(ids.traceId);
  log(`Emitted llm.completion trace and token counters through ${options.otlpEndpoint}; polling ${options.tempoUrl}`);
  const clock: Clock = { now: Date.now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };
  const result = await waitForTrace(fetch, clock, options, ids.traceId, log);
  if (!result.found)
    log(`Trace not found in Tempo within ${options.budgetMs / 1000} s (last status ${result.lastStatus})`);
  return result.found ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}
