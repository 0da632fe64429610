import type { AgentEvent } from '@agentmeter/contracts';
import { testRedactor } from '@agentmeter/testing';
import { SpanStatusCode, type AttributeValue, type OtlpSpan } from './otlp.decoder';
import { OtlpMetrics } from './otlp.metrics';
import type { KeyedEvent, OtlpPublisher } from './otlp.publisher';
import { mapSpans, OtlpService, summarize, type SpanOutcome } from './otlp.service';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const T0 = 1_764_064_800_000_000_000n; // 2025-11-25T10:00:00Z in nanoseconds
const MS = 1_000_000n;

const stage = {
  'agentmeter.tenant_id': 'acme',
  'agentmeter.project_id': 'landing-page',
  'agentmeter.run_id': 'run-7f3a',
  'agentmeter.phase': 'implement',
  'agentmeter.role': 'implementer',
  'agentmeter.attempt': 2,
};

interface SpanSpec {
  spanId?: string;
  parentSpanId?: string;
  traceId?: string;
  name?: string;
  attributes?: Record<string, AttributeValue>;
  resource?: Record<string, AttributeValue>;
  status?: { code: number; message: string };
  start?: bigint;
  end?: bigint;
}

let nextSpan = 1;
function span(spec: SpanSpec = {}): OtlpSpan {
  return {
    traceId: spec.traceId ?? TRACE,
    spanId: spec.spanId ?? (nextSpan++).toString(16).padStart(16, '0'),
    parentSpanId: spec.parentSpanId ?? '',
    name: spec.name ?? 'chat',
    startTimeUnixNano: spec.start ?? T0,
    endTimeUnixNano: spec.end ?? T0 + 1_500n * MS,
    attributes: new Map(Object.entries({ ...stage, ...spec.attributes })),
    resource: new Map(Object.entries(spec.resource ?? { 'service.name': 'planner-agent' })),
    status: spec.status ?? { code: SpanStatusCode.Unset, message: '' },
  };
}

/** A span without the stage attributes (for resource fallbacks and rejections). */
function bare(spec: SpanSpec = {}): OtlpSpan {
  const result = span(spec);
  const attributes = new Map(Object.entries(spec.attributes ?? {}));
  return { ...result, attributes };
}

function only(spans: OtlpSpan[]): AgentEvent {
  const mapping = mapSpans(spans);
  expect(mapping.rejections).toEqual([]);
  expect(mapping.events).toHaveLength(1);
  return mapping.events[0]!.event;
}

function outcomes(spans: OtlpSpan[]): Partial<Record<SpanOutcome, number>> {
  return Object.fromEntries(Object.entries(mapSpans(spans).outcomes).filter(([, count]) => count > 0));
}

describe('mapSpans', () => {
  it('gives the event the identity of the span: source, id, time, latency, trace and span ids', () => {
    const chat = span({
      spanId: '00f067aa0ba902b7',
      attributes: { 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 5 },
      start: T0 + 250n * MS,
      end: T0 + 6_670n * MS + 999_999n,
    });
    const { events } = mapSpans([chat]);
    expect(events).toEqual([
      {
        key: 'run-7f3a',
        event: {
          specversion: '1.0',
          id: `${TRACE}-00f067aa0ba902b7`,
          source: 'otlp/planner-agent',
          type: 'llm_call',
          time: '2025-11-25T10:00:06.670Z',
          subject: 'acme',
          datacontenttype: 'application/json',
          data: {
            tenant_id: 'acme',
            project_id: 'landing-page',
            run_id: 'run-7f3a',
            phase: 'implement',
            role: 'implementer',
            attempt: 2,
            model: 'unknown',
            provider: 'unknown',
            prompt_tokens: 10,
            completion_tokens: 5,
            cached_tokens: 0,
            reasoning_tokens: 0,
            latency_ms: 6_420,
            cached: false,
            status: 'ok',
            trace_id: TRACE,
            span_id: '00f067aa0ba902b7',
            // A root span: no ancestors, and a node of its trace all the same (docs/otlp.md "Aggregate spans").
            ancestor_span_ids: [],
          },
        },
      },
    ]);
  });

  it('names the ancestors of an LLM span as far as the request shows them, nearest first', () => {
    const ids = { agent: '00000000000000a1', step: '00000000000000a2', chat: '00000000000000a3' };
    const agent = span({ spanId: ids.agent, parentSpanId: '00000000000000ff', name: 'agent' });
    const step = span({ spanId: ids.step, parentSpanId: ids.agent, name: 'step' });
    const chat = span({
      spanId: ids.chat,
      parentSpanId: ids.step,
      attributes: { 'gen_ai.usage.input_tokens': 10 },
    });
    const [event] = mapSpans([agent, step, chat]).events;
    expect(event?.event.data).toMatchObject({ ancestor_span_ids: [ids.step, ids.agent, '00000000000000ff'] });
    const [alone] = mapSpans([chat]).events;
    expect(alone?.event.data).toMatchObject({ ancestor_span_ids: [ids.step] });
  });

  it.each<[string, Record<string, AttributeValue>, Record<string, unknown>]>([
    [
      'GenAI semantic conventions (response model preferred)',
      {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.request.model': 'claude-sonnet-4-5',
        'gen_ai.response.model': 'claude-sonnet-4-5-20250929',
        'gen_ai.usage.input_tokens': 5_210,
        'gen_ai.usage.output_tokens': 812,
        'gen_ai.usage.cache_read.input_tokens': 1_024,
        'gen_ai.usage.reasoning.output_tokens': 300,
      },
      {
        model: 'claude-sonnet-4-5-20250929',
        provider: 'anthropic',
        prompt_tokens: 5_210,
        completion_tokens: 812,
        cached_tokens: 1_024,
        reasoning_tokens: 300,
      },
    ],
    [
      'request model when there is no response model',
      { 'gen_ai.request.model': 'gpt-4.1', 'gen_ai.usage.input_tokens': 1 },
      { model: 'gpt-4.1' },
    ],
    [
      'OpenLLMetry cache and reasoning names',
      {
        'gen_ai.usage.input_tokens': 100,
        'gen_ai.usage.output_tokens': 20,
        'gen_ai.usage.cache_read_input_tokens': 10,
        'gen_ai.usage.reasoning_tokens': 5,
      },
      { prompt_tokens: 100, completion_tokens: 20, cached_tokens: 10, reasoning_tokens: 5 },
    ],
    [
      'gen_ai.usage.cached_tokens',
      { 'gen_ai.usage.input_tokens': 9, 'gen_ai.usage.cached_tokens': 7 },
      { cached_tokens: 7 },
    ],
    [
      'deprecated gen_ai.system and prompt/completion token names',
      {
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.prompt_tokens': 128,
        'gen_ai.usage.completion_tokens': 64,
      },
      { provider: 'openai', model: 'gpt-4o', prompt_tokens: 128, completion_tokens: 64 },
    ],
    [
      'gen_ai.provider.name over the deprecated gen_ai.system',
      { 'gen_ai.provider.name': 'azure.ai.openai', 'gen_ai.system': 'openai', 'gen_ai.usage.input_tokens': 1 },
      { provider: 'azure.ai.openai' },
    ],
    [
      'the llm.* instrumentation contract',
      {
        'llm.provider': 'openai',
        'llm.model': 'gpt-4o',
        'llm.request.type': 'chat',
        'llm.tokens.prompt': 128,
        'llm.tokens.completion': 64,
        'llm.tokens.total': 192,
      },
      { provider: 'openai', model: 'gpt-4o', prompt_tokens: 128, completion_tokens: 64, cached_tokens: 0 },
    ],
    [
      'GenAI names win over llm.* when both are present',
      {
        'gen_ai.request.model': 'gpt-4o-2024-08-06',
        'llm.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 130,
        'llm.tokens.prompt': 128,
      },
      { model: 'gpt-4o-2024-08-06', prompt_tokens: 130 },
    ],
    ['counts sent as strings', { 'gen_ai.usage.input_tokens': '42' }, { prompt_tokens: 42, completion_tokens: 0 }],
    [
      'output tokens only',
      { 'gen_ai.usage.output_tokens': 3 },
      { prompt_tokens: 0, completion_tokens: 3, model: 'unknown', provider: 'unknown' },
    ],
  ])('reads an LLM call from %s', (_case, attributes, expected) => {
    const event = only([span({ attributes })]);
    expect(event.type).toBe('llm_call');
    expect(event.data).toMatchObject(expected);
  });

  it.each<[string, SpanSpec, Record<string, unknown>]>([
    [
      'an ERROR status with a message',
      { status: { code: SpanStatusCode.Error, message: 'rate limited' } },
      { status: 'error', error: 'rate limited' },
    ],
    [
      'an ERROR status without a message (error.type)',
      { status: { code: SpanStatusCode.Error, message: '' }, attributes: { 'error.type': '429' } },
      { status: 'error', error: '429' },
    ],
    ['an OK status', { status: { code: SpanStatusCode.Ok, message: '' } }, { status: 'ok' }],
    ['a span without end time (latency 0, time = start)', { end: 0n }, { latency_ms: 0 }],
  ])('maps %s', (_case, spec, expected) => {
    const event = only([span({ ...spec, attributes: { 'gen_ai.usage.input_tokens': 1, ...spec.attributes } })]);
    expect(event.data).toMatchObject(expected);
    if (spec.end === 0n) expect(event.time).toBe('2025-11-25T10:00:00.000Z');
  });

  it.each<[string, SpanSpec, Record<string, unknown>]>([
    [
      'resource attributes when the span has none',
      { resource: { 'service.name': 'a', ...stage } },
      { tenant_id: 'acme', project_id: 'landing-page', run_id: 'run-7f3a', phase: 'implement', attempt: 2 },
    ],
    [
      'span attributes over resource attributes',
      {
        attributes: { 'agentmeter.tenant_id': 'acme', 'agentmeter.run_id': 'run-2', 'agentmeter.phase': 'plan' },
        resource: { 'agentmeter.tenant_id': 'other', 'agentmeter.run_id': 'run-1', 'agentmeter.project_id': 'p1' },
      },
      { tenant_id: 'acme', run_id: 'run-2', phase: 'plan', project_id: 'p1' },
    ],
    [
      'the tenant.id, run.id and project.id aliases',
      { attributes: { 'tenant.id': 'acme', 'run.id': 'run-9', 'project.id': 'site' } },
      { tenant_id: 'acme', run_id: 'run-9', project_id: 'site' },
    ],
    [
      'defaults for project, phase, role and attempt',
      { attributes: { 'agentmeter.tenant_id': 'acme', 'agentmeter.run_id': 'run-1' } },
      { project_id: 'default', phase: 'default', role: 'default', attempt: 1 },
    ],
    [
      'gen_ai.agent.name as the role when agentmeter.role is absent',
      { attributes: { 'tenant.id': 'acme', 'run.id': 'run-1', 'gen_ai.agent.name': 'planner' } },
      { role: 'planner' },
    ],
    [
      'a numeric run id and a string attempt',
      { attributes: { 'tenant.id': 'acme', 'run.id': 42, 'agentmeter.attempt': '3' } },
      { run_id: '42', attempt: 3 },
    ],
  ])('finds the run and stage from %s', (_case, spec, expected) => {
    const event = only([bare({ ...spec, attributes: { 'gen_ai.usage.input_tokens': 1, ...spec.attributes } })]);
    expect(event.data).toMatchObject(expected);
  });

  it.each<[string, SpanSpec, Record<string, unknown>]>([
    [
      'an MCP server span under its own service name, key space derived from the cache key',
      {
        name: 'repo.tree',
        attributes: { 'mcp.tool': 'repo.tree', 'mcp.cache_hit': true, 'mcp.cache_key': 'amtp:mcp:tree:acme/site@9f2c' },
        resource: { 'service.name': 'amtp-github-mcp' },
      },
      { tool: 'repo.tree', mcp_server: 'amtp-github-mcp', cache_key_space: 'amtp:mcp:tree', cache_hit: true },
    ],
    [
      'an MCP span with an explicit key space, server and a string cache_hit',
      {
        attributes: {
          'mcp.tool': 'repo.read_file',
          'mcp.server': 'github',
          'mcp.cache_key_space': 'amtp:mcp:blob',
          'mcp.cache_hit': 'false',
        },
      },
      { tool: 'repo.read_file', mcp_server: 'github', cache_key_space: 'amtp:mcp:blob', cache_hit: false },
    ],
    [
      'a cache key outside the amtp:mcp key spaces',
      { attributes: { 'mcp.tool': 'search', 'mcp.cache_key': 'search:q=otlp' } },
      { tool: 'search', cache_key_space: undefined, cache_hit: undefined },
    ],
    [
      'a GenAI execute_tool span',
      {
        name: 'execute_tool web_search',
        attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'web_search' },
      },
      { tool: 'web_search', mcp_server: undefined },
    ],
    [
      'an MCP tools/call span (MCP semantic conventions)',
      { attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'get_file' } },
      { tool: 'get_file' },
    ],
    [
      'a failed tool call',
      { attributes: { 'mcp.tool': 'repo.tree' }, status: { code: SpanStatusCode.Error, message: 'GitHub 502' } },
      { status: 'error', error: 'GitHub 502', latency_ms: 1_500 },
    ],
  ])('reads a tool call from %s', (_case, spec, expected) => {
    const event = only([span(spec)]);
    expect(event.type).toBe('tool_call');
    expect(event.data).toMatchObject({
      tenant_id: 'acme',
      run_id: 'run-7f3a',
      span_id: expect.any(String),
      ...expected,
    });
  });

  describe('aggregate spans', () => {
    const usage = (input: number, output: number) => ({
      'gen_ai.operation.name': 'chat',
      'gen_ai.usage.input_tokens': input,
      'gen_ai.usage.output_tokens': output,
    });

    it.each<[string, () => OtlpSpan[], { prompt: number[]; outcomes: Partial<Record<SpanOutcome, number>> }]>([
      [
        'an invoke_agent span summing its children',
        () => {
          const agent = span({ attributes: { ...usage(300, 30), 'gen_ai.operation.name': 'invoke_agent' } });
          return [
            agent,
            span({ parentSpanId: agent.spanId, attributes: usage(100, 10) }),
            span({ parentSpanId: agent.spanId, attributes: usage(200, 20) }),
          ];
        },
        { prompt: [100, 200], outcomes: { llm_call: 2, aggregate: 1 } },
      ],
      [
        'any span whose descendant (not only child) has usage',
        () => {
          const root = span({ name: 'workflow', attributes: { 'llm.tokens.prompt': 50, 'llm.tokens.completion': 5 } });
          const step = span({ name: 'step', parentSpanId: root.spanId, attributes: {} });
          return [span({ parentSpanId: step.spanId, attributes: usage(50, 5) }), step, root];
        },
        { prompt: [50], outcomes: { llm_call: 1, aggregate: 1, ignored: 1 } },
      ],
      [
        'an agent span exported without its children (they came in an earlier request)',
        () => [span({ attributes: { ...usage(300, 30), 'gen_ai.operation.name': 'invoke_agent' } })],
        { prompt: [], outcomes: { aggregate: 1 } },
      ],
      [
        'a workflow span (invoke_workflow, traceloop.span.kind)',
        () => [
          span({ attributes: { ...usage(1, 1), 'gen_ai.operation.name': 'invoke_workflow' } }),
          span({ attributes: { ...usage(1, 1), 'traceloop.span.kind': 'workflow' } }),
        ],
        { prompt: [], outcomes: { aggregate: 2 } },
      ],
      [
        'siblings with usage, both counted',
        () => {
          const agent = span({ attributes: { 'gen_ai.operation.name': 'invoke_agent' } });
          return [
            agent,
            span({ parentSpanId: agent.spanId, attributes: usage(1, 1) }),
            span({ parentSpanId: agent.spanId, attributes: usage(2, 2) }),
          ];
        },
        { prompt: [1, 2], outcomes: { llm_call: 2, ignored: 1 } },
      ],
      [
        'the same span id in another trace (not a parent)',
        () => {
          const parent = span({ spanId: 'aaaaaaaaaaaaaaaa', attributes: usage(7, 7) });
          const other = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
          return [parent, span({ traceId: other, parentSpanId: parent.spanId, attributes: usage(3, 3) })];
        },
        { prompt: [7, 3], outcomes: { llm_call: 2 } },
      ],
      [
        'cyclic parent links (malformed input)',
        () => [
          span({ spanId: '000000000000000a', parentSpanId: '000000000000000b', attributes: usage(1, 1) }),
          span({ spanId: '000000000000000b', parentSpanId: '000000000000000a', attributes: { 'mcp.tool': 'x' } }),
        ],
        { prompt: [], outcomes: { aggregate: 1, tool_call: 1 } },
      ],
    ])('does not count %s on top of its children', (_case, spans, expected) => {
      const input = spans();
      const events = mapSpans(input)
        .events.map(({ event }) => event)
        .filter((event) => event.type === 'llm_call');
      expect(events.map((event) => event.data.prompt_tokens)).toEqual(expected.prompt);
      expect(outcomes(input)).toEqual(expected.outcomes);
    });

    it('counts the outer-most of nested tool spans, and an LLM call inside a tool', () => {
      const tool = span({ name: 'repo.tree', attributes: { 'mcp.tool': 'repo.tree', 'mcp.cache_hit': false } });
      const github = span({ name: 'github.api', parentSpanId: tool.spanId, attributes: { 'mcp.tool': 'repo.tree' } });
      const summary = span({ parentSpanId: github.spanId, attributes: usage(10, 1) });
      const mapping = mapSpans([github, summary, tool]);
      expect(mapping.events.map(({ event }) => [event.type, event.id])).toEqual([
        ['llm_call', `${TRACE}-${summary.spanId}`],
        ['tool_call', `${TRACE}-${tool.spanId}`],
      ]);
      expect(mapping.outcomes).toMatchObject({ tool_call: 1, nested_tool: 1, llm_call: 1 });
    });
  });

  it.each<[string, OtlpSpan, string]>([
    [
      'no run',
      bare({ attributes: { 'agentmeter.tenant_id': 'acme', 'gen_ai.usage.input_tokens': 1 } }),
      'no run (agentmeter.run_id or run.id)',
    ],
    [
      'no tenant',
      bare({ attributes: { 'agentmeter.run_id': 'run-1', 'mcp.tool': 'repo.tree' } }),
      'no tenant (agentmeter.tenant_id or tenant.id)',
    ],
    ['an all-zero trace id', span({ traceId: '0'.repeat(32), attributes: { 'mcp.tool': 'x' } }), 'invalid trace id'],
    ['a short span id', span({ spanId: 'abc', attributes: { 'mcp.tool': 'x' } }), 'invalid span id'],
    [
      'a negative token count',
      span({ attributes: { 'gen_ai.usage.input_tokens': -5 } }),
      'gen_ai.usage.input_tokens is not a non-negative integer',
    ],
    [
      'a fractional token count',
      span({ attributes: { 'gen_ai.usage.output_tokens': 2.5 } }),
      'gen_ai.usage.output_tokens is not a non-negative integer',
    ],
    [
      'a cache_hit that is not a boolean',
      span({ attributes: { 'mcp.tool': 'x', 'mcp.cache_hit': 'maybe' } }),
      'mcp.cache_hit is not a boolean',
    ],
    ['no time', span({ start: 0n, end: 0n, attributes: { 'mcp.tool': 'x' } }), 'no start or end time'],
    [
      'an attempt the contract refuses',
      span({ attributes: { 'agentmeter.attempt': 0, 'gen_ai.usage.input_tokens': 1 } }),
      'invalid llm_call: data.attempt: Too small: expected number to be >=1',
    ],
  ])('rejects a span with %s', (_case, rejected, reason) => {
    const mapping = mapSpans([rejected]);
    expect(mapping.events).toEqual([]);
    expect(mapping.rejections).toEqual([reason]);
    expect(mapping.outcomes.rejected).toBe(1);
  });

  it('ignores spans that are neither LLM nor tool calls, with or without a run', () => {
    const spans = [bare({ name: 'GET /repos', attributes: { 'http.request.method': 'GET' } }), span({ name: 'plan' })];
    expect(mapSpans(spans)).toEqual({
      events: [],
      outcomes: { llm_call: 0, tool_call: 0, aggregate: 0, nested_tool: 0, ignored: 2, rejected: 0 },
      rejections: [],
    });
  });
});

describe('summarize', () => {
  it.each<[string[], string]>([
    [[], ''],
    [['no run (x)', 'no run (x)', 'invalid trace id'], '3 span(s) rejected: no run (x) (2); invalid trace id (1)'],
    [['a', 'b', 'c', 'd', 'e', 'f', 'g'], '7 span(s) rejected: a (1); b (1); c (1); d (1); e (1); 2 more reasons'],
  ])('summarizes %j', (rejections, message) => {
    expect(summarize(rejections)).toBe(message);
  });
});

describe('OtlpService', () => {
  const metrics = new OtlpMetrics(); // registers its counter once per process
  it('publishes the events keyed by run and answers how many spans it rejected', async () => {
    const published: KeyedEvent[][] = [];
    const publisher = { publish: async (events: KeyedEvent[]) => void published.push(events) };
    const service = new OtlpService(publisher as unknown as OtlpPublisher, metrics, testRedactor());
    const result = await service.export(
      [
        span({ attributes: { 'gen_ai.usage.input_tokens': 1 } }),
        span({ attributes: { 'mcp.tool': 'repo.tree', 'agentmeter.run_id': 'run-2' } }),
        bare({ attributes: { 'gen_ai.usage.input_tokens': 1 } }),
      ],
      { tenant: '*' },
    );
    expect(published).toHaveLength(1);
    expect(published[0]!.map(({ key, event }) => [key, event.type])).toEqual([
      ['run-7f3a', 'llm_call'],
      ['run-2', 'tool_call'],
    ]);
    expect(result).toEqual({
      rejectedSpans: 1,
      errorMessage: '1 span(s) rejected: no tenant (agentmeter.tenant_id or tenant.id) (1)',
    });
  });

  it('fails, having answered nothing, when Kafka does not acknowledge', async () => {
    const publisher = { publish: () => Promise.reject(new Error('broker down')) };
    const service = new OtlpService(publisher as unknown as OtlpPublisher, metrics, testRedactor());
    await expect(service.export([span({ attributes: { 'mcp.tool': 'x' } })], { tenant: '*' })).rejects.toThrow(
      'broker down',
    );
  });

  it('rejects spans of a tenant the credential does not cover', async () => {
    const published: KeyedEvent[][] = [];
    const publisher = { publish: async (events: KeyedEvent[]) => void published.push(events) };
    const service = new OtlpService(publisher as unknown as OtlpPublisher, metrics, testRedactor());
    const result = await service.export([span({ attributes: { 'mcp.tool': 'x' } })], { tenant: 'someone-else' });
    expect(published).toEqual([[]]);
    expect(result).toEqual({
      rejectedSpans: 1,
      errorMessage: '1 span(s) rejected: tenant not covered by the token (1)',
    });
  });
});
