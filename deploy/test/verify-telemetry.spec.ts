import {
  exportOtlp,
  llmSpanAttributes,
  metricsRequest,
  newTraceIds,
  optionsFrom,
  prometheusNameOf,
  TOKEN_INSTRUMENTS,
  traceRequest,
  UsageError,
  waitForTrace,
  type Clock,
  type Fetch,
} from '../../tools/src/verify-telemetry';

// The pure parts of tools/src/verify-telemetry.ts; the tool itself needs a running collector and Tempo.

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, string> }>;
}
interface Metric {
  name: string;
  unit: string;
  sum: {
    aggregationTemporality: number;
    isMonotonic: boolean;
    dataPoints: Array<{ asInt: string; attributes: Array<{ key: string }> }>;
  };
}

const ids = newTraceIds();
const spansOf = (body: unknown): Span[] =>
  (body as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Span[] }> }> }).resourceSpans[0]!.scopeSpans[0]!.spans;
const metricsOf = (body: unknown): Metric[] =>
  (body as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Metric[] }> }> }).resourceMetrics[0]!
    .scopeMetrics[0]!.metrics;

describe('verify-telemetry payloads', () => {
  it('makes W3C-sized ids in lower-case hex', () => {
    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    for (const id of [ids.rootSpanId, ids.inferenceSpanId, ids.parseSpanId]) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set([ids.rootSpanId, ids.inferenceSpanId, ids.parseSpanId]).size).toBe(3);
  });

  it('emits one llm.completion trace with two child spans inside it', () => {
    const start = Date.UTC(2026, 0, 1);
    const spans = spansOf(traceRequest(ids, start, 'svc'));
    expect(spans.map((s) => s.name)).toEqual(['llm.completion', 'llm.inference', 'llm.response.parse']);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([ids.traceId]));
    const [root, ...children] = spans;
    expect(root!.parentSpanId).toBeUndefined();
    for (const child of children) {
      expect(child.parentSpanId).toBe(root!.spanId);
      expect(BigInt(child.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(root!.startTimeUnixNano));
      expect(BigInt(child.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(root!.endTimeUnixNano));
    }
    expect(root!.startTimeUnixNano).toBe(`${start}000000`);
  });

  it('puts every attribute of the instrumentation contract on the root span', () => {
    const root = spansOf(traceRequest(ids, 0, 'svc'))[0]!;
    const attributes = Object.fromEntries(root.attributes.map((a) => [a.key, Object.values(a.value)[0]]));
    expect(attributes).toEqual({
      'llm.provider': 'openai',
      'llm.model': 'gpt-4o',
      'llm.request.type': 'chat',
      'llm.tokens.prompt': '128',
      'llm.tokens.completion': '64',
      'llm.tokens.total': '192',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4o',
    });
    expect(llmSpanAttributes().find((a) => a.key === 'llm.tokens.total')?.value).toEqual({ intValue: '192' });
  });

  it('emits the three token counters as cumulative monotonic sums whose names the collector keeps', () => {
    const metrics = metricsOf(metricsRequest(1000, 2000, 'svc'));
    expect(metrics.map((m) => m.name)).toEqual([...TOKEN_INSTRUMENTS]);
    expect(metrics.map((m) => Number(m.sum.dataPoints[0]!.asInt))).toEqual([128, 64, 192]);
    for (const metric of metrics) {
      expect(metric.unit).toBe('{token}'); // a bare unit would be appended to the Prometheus name
      expect(metric.sum).toMatchObject({ aggregationTemporality: 2, isMonotonic: true });
      expect(metric.sum.dataPoints[0]!.attributes.map((a) => a.key)).toEqual([
        'llm.model',
        'llm.provider',
        'gen_ai.system',
      ]);
    }
    expect(TOKEN_INSTRUMENTS.map(prometheusNameOf)).toEqual([
      'llm_prompt_tokens_total',
      'llm_completion_tokens_total',
      'llm_total_tokens_total',
    ]);
  });
});

describe('verify-telemetry options', () => {
  it('defaults to the OBS_* ports of the compose stack', () => {
    expect(optionsFrom([], { OBS_OTEL_HTTP_PORT: '14318' })).toEqual({
      otlpEndpoint: 'http://127.0.0.1:14318',
      tempoUrl: 'http://127.0.0.1:3200',
      budgetMs: 60_000,
      intervalMs: 3_000,
      serviceName: 'agentmeter-verify-telemetry',
    });
  });

  it('prefers flags, then OTEL_EXPORTER_OTLP_ENDPOINT and TEMPO_URL', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', TEMPO_URL: 'http://tempo:3200' };
    expect(optionsFrom([], env)).toMatchObject({
      otlpEndpoint: 'http://collector:4318',
      tempoUrl: 'http://tempo:3200',
    });
    expect(optionsFrom(['--tempo=http://t:1', '--budget-seconds', '90', '--interval-seconds=0.5'], env)).toMatchObject({
      tempoUrl: 'http://t:1',
      budgetMs: 90_000,
      intervalMs: 500,
    });
  });

  it.each([[['--budget-seconds', '0']], [['--budget-seconds']], [['--otlp', 'not a url']], [['--verbose']]])(
    'refuses %j',
    (argv) => {
      expect(() => optionsFrom(argv, {})).toThrow(UsageError);
    },
  );
});

describe('verify-telemetry export', () => {
  const answer =
    (status: number, body = ''): Fetch =>
    () =>
      Promise.resolve(new Response(body, { status }));

  it('accepts an empty success and refuses errors and rejected spans', async () => {
    await expect(exportOtlp(answer(200, '{}'), 'http://c/v1/traces', {})).resolves.toBeUndefined();
    await expect(exportOtlp(answer(200), 'http://c/v1/traces', {})).resolves.toBeUndefined();
    await expect(exportOtlp(answer(503, 'busy'), 'http://c/v1/traces', {})).rejects.toThrow(/503: busy/);
    await expect(
      exportOtlp(
        answer(200, '{"partialSuccess":{"rejectedSpans":"1","errorMessage":"bad"}}'),
        'http://c/v1/traces',
        {},
      ),
    ).rejects.toThrow(/rejected 1 item\(s\): bad/);
  });

  it('sends JSON to the given URL', async () => {
    const calls: Array<[string, RequestInit | undefined]> = [];
    const fetchFn: Fetch = (url, init) => {
      calls.push([url, init]);
      return Promise.resolve(new Response('{}'));
    };
    await exportOtlp(fetchFn, 'http://c/v1/metrics', { a: 1 });
    expect(calls[0]![0]).toBe('http://c/v1/metrics');
    expect(calls[0]![1]).toMatchObject({ method: 'POST', body: '{"a":1}' });
    expect(new Headers(calls[0]![1]!.headers).get('content-type')).toBe('application/json');
  });
});

describe('verify-telemetry polling', () => {
  /** A clock that advances only when the poller sleeps. */
  const fakeClock = (): Clock & { slept: number[] } => {
    let now = 0;
    const slept: number[] = [];
    return {
      slept,
      now: () => now,
      sleep: (ms) => {
        slept.push(ms);
        now += ms;
        return Promise.resolve();
      },
    };
  };
  const options = { tempoUrl: 'http://tempo:3200', budgetMs: 60_000, intervalMs: 3_000 };

  it('polls /api/traces/<id> until Tempo answers 200', async () => {
    const statuses = [404, 404, 200];
    const urls: string[] = [];
    const fetchFn: Fetch = (url) => {
      urls.push(url);
      return Promise.resolve(new Response(null, { status: statuses.shift()! }));
    };
    const lines: string[] = [];
    const clock = fakeClock();
    const result = await waitForTrace(fetchFn, clock, options, 'abc', (l) => lines.push(l));
    expect(result).toEqual({ found: true, attempts: 3, lastStatus: '200' });
    expect(urls).toEqual(Array(3).fill('http://tempo:3200/api/traces/abc'));
    expect(clock.slept).toEqual([3000, 3000]);
    expect(lines.at(-1)).toBe('Trace abc confirmed in Tempo (attempt 3)');
  });

  it('gives up when the budget runs out, network errors included (20 attempts × 3 s)', async () => {
    let calls = 0;
    const fetchFn: Fetch = () => {
      calls++;
      return calls % 2 ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve(new Response('', { status: 404 }));
    };
    const clock = fakeClock();
    const result = await waitForTrace(fetchFn, clock, options, 'abc', () => undefined);
    expect(result).toEqual({ found: false, attempts: 20, lastStatus: '404' });
    expect(clock.now()).toBeLessThanOrEqual(options.budgetMs);
  });

  it('tries once even with a budget shorter than the interval', async () => {
    const clock = fakeClock();
    const result = await waitForTrace(
      () => Promise.resolve(new Response('', { status: 404 })),
      clock,
      { ...options, budgetMs: 1000 },
      'abc',
      () => undefined,
    );
    expect(result).toEqual({ found: false, attempts: 1, lastStatus: '404' });
    expect(clock.slept).toEqual([]);
  });
});
