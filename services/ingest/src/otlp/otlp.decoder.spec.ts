import { context, SpanStatusCode as ApiStatusCode, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { decodeTraceRequest, encodeTraceResponse, SpanStatusCode, type OtlpSpan } from './otlp.decoder';

/** Spans made and encoded by the OpenTelemetry JS SDK, so the decoder is checked against an independent encoder. */
async function sdkSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'planner-agent', 'agentmeter.tenant_id': 'acme' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('otlp-decoder-spec');
  const agent = tracer.startSpan('invoke_agent planner', {
    startTime: [1_764_064_800, 0],
    attributes: { 'gen_ai.operation.name': 'invoke_agent' },
  });
  const chat = tracer.startSpan(
    'chat gpt-4.1',
    {
      startTime: [1_764_064_800, 250_000_001],
      attributes: {
        'gen_ai.request.model': 'gpt-4.1',
        'gen_ai.usage.input_tokens': 5_210,
        'gen_ai.usage.output_tokens': 812,
        'gen_ai.request.temperature': 0.2,
        'mcp.cache_hit': false,
        'gen_ai.response.finish_reasons': ['stop'],
      },
    },
    trace.setSpan(context.active(), agent),
  );
  chat.setStatus({ code: ApiStatusCode.ERROR, message: 'rate limited' });
  chat.end([1_764_064_806, 670_123_456]);
  agent.end([1_764_064_807, 0]);
  await provider.forceFlush();
  return exporter.getFinishedSpans();
}

function expectedSpans([chat, agent]: ReadableSpan[]): OtlpSpan[] {
  return [
    {
      traceId: chat!.spanContext().traceId,
      spanId: chat!.spanContext().spanId,
      parentSpanId: agent!.spanContext().spanId,
      name: 'chat gpt-4.1',
      startTimeUnixNano: 1_764_064_800_250_000_001n,
      endTimeUnixNano: 1_764_064_806_670_123_456n,
      attributes: new Map<string, string | number | boolean>([
        ['gen_ai.request.model', 'gpt-4.1'],
        ['gen_ai.usage.input_tokens', 5_210],
        ['gen_ai.usage.output_tokens', 812],
        ['gen_ai.request.temperature', 0.2],
        ['mcp.cache_hit', false],
      ]),
      resource: expect.any(Map),
      status: { code: SpanStatusCode.Error, message: 'rate limited' },
    },
    {
      traceId: agent!.spanContext().traceId,
      spanId: agent!.spanContext().spanId,
      parentSpanId: '',
      name: 'invoke_agent planner',
      startTimeUnixNano: 1_764_064_800_000_000_000n,
      endTimeUnixNano: 1_764_064_807_000_000_000n,
      attributes: new Map([['gen_ai.operation.name', 'invoke_agent']]),
      resource: expect.any(Map),
      status: { code: SpanStatusCode.Unset, message: '' },
    },
  ];
}

describe('decodeTraceRequest', () => {
  let spans: ReadableSpan[];
  let expected: OtlpSpan[];

  beforeAll(async () => {
    spans = await sdkSpans();
    expected = expectedSpans(spans);
  });

  it('decodes binary protobuf (ExportTraceServiceRequest) as the SDK encodes it', () => {
    const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
    const decoded = decodeTraceRequest(body, 'protobuf');
    expect(decoded).toEqual({ ok: true, spans: expected });
    const resource = decoded.ok ? decoded.spans[0]!.resource : undefined;
    expect(resource?.get('service.name')).toBe('planner-agent');
    expect(resource?.get('agentmeter.tenant_id')).toBe('acme');
  });

  it('decodes OTLP/JSON (hex ids, int64 as strings) to the same spans', () => {
    const body: unknown = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!).toString('utf8'));
    const decoded = decodeTraceRequest(body, 'json');
    expect(decoded).toEqual({ ok: true, spans: expected });
    expect(decoded).toEqual(
      decodeTraceRequest(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!), 'protobuf'),
    );
  });

  it.each<[string, unknown, 'protobuf' | 'json']>([
    ['an absent body', undefined, 'protobuf'],
    ['an empty protobuf body', Buffer.alloc(0), 'protobuf'],
    ['an empty JSON object', {}, 'json'],
    ['null fields', { resourceSpans: [{ resource: null, scopeSpans: [{ spans: null }] }] }, 'json'],
  ])('decodes %s as no spans', (_case, body, encoding) => {
    expect(decodeTraceRequest(body, encoding)).toEqual({ ok: true, spans: [] });
  });

  it('accepts numbers for int64 fields and status codes by name', () => {
    const decoded = decodeTraceRequest(
      {
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: 'ABCDEF00000000000000000000000001',
                    spanId: '0000000000000001',
                    startTimeUnixNano: 1_764_064_800_000_000_000,
                    attributes: [
                      { key: 'n', value: { intValue: 7 } },
                      { key: 'empty', value: {} },
                    ],
                    status: { code: 'STATUS_CODE_ERROR' },
                  },
                ],
              },
            ],
          },
        ],
      },
      'json',
    );
    expect(decoded.ok && decoded.spans[0]).toMatchObject({
      traceId: 'abcdef00000000000000000000000001',
      startTimeUnixNano: 1_764_064_800_000_000_000n,
      attributes: new Map([['n', 7]]),
      status: { code: SpanStatusCode.Error, message: '' },
    });
  });

  it.each<[string, unknown, 'protobuf' | 'json', RegExp]>([
    ['truncated protobuf', Buffer.from([0x0a, 0xff, 0x01]), 'protobuf', /^invalid protobuf: /],
    ['a JSON body where protobuf was announced', { resourceSpans: [] }, 'protobuf', /not read as bytes/],
    [
      'a wrongly typed field',
      { resourceSpans: [{ scopeSpans: [{ spans: [{ name: 5 }] }] }] },
      'json',
      /resourceSpans\.0\.scopeSpans\.0\.spans\.0\.name/,
    ],
    [
      'a negative timestamp',
      { resourceSpans: [{ scopeSpans: [{ spans: [{ endTimeUnixNano: '-1' }] }] }] },
      'json',
      /endTimeUnixNano/,
    ],
    ['a JSON array', [], 'json', /\(root\)/],
  ])('refuses %s', (_case, body, encoding, reason) => {
    const decoded = decodeTraceRequest(body, encoding);
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.reason).toMatch(reason);
  });
});

describe('encodeTraceResponse', () => {
  it.each<['protobuf' | 'json', (body: Buffer) => unknown]>([
    ['protobuf', (body) => ProtobufTraceSerializer.deserializeResponse(body)],
    ['json', (body) => JSON.parse(body.toString('utf8'))],
  ])('leaves partial_success unset when every span was accepted (%s)', (encoding, read) => {
    const body = encodeTraceResponse({ rejectedSpans: 0, errorMessage: '' }, encoding);
    expect(read(body)).toEqual({});
  });

  it('reports rejected spans as OTLP partial success, readable by the SDK', () => {
    const result = { rejectedSpans: 2, errorMessage: '2 span(s) rejected: no run (2)' };
    expect(ProtobufTraceSerializer.deserializeResponse(encodeTraceResponse(result, 'protobuf'))).toEqual({
      partialSuccess: { rejectedSpans: 2, errorMessage: result.errorMessage },
    });
    expect(JSON.parse(encodeTraceResponse(result, 'json').toString('utf8'))).toEqual({
      partialSuccess: { rejectedSpans: '2', errorMessage: result.errorMessage },
    });
  });
});
