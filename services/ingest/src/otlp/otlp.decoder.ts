import { parse, type Type } from 'protobufjs';
import { z } from 'zod';

/**
 * OTLP/HTTP trace requests in both encodings, decoded to one span model. Protobuf is first turned into its
 * OTLP/JSON form (camelCase fields, int64 as strings) with ids re-encoded as hex, so one schema validates both.
 */

export type OtlpEncoding = 'protobuf' | 'json';

/** Scalar attribute values; arrays, maps and bytes are dropped, the mapping reads none of them. */
export type AttributeValue = string | number | boolean;
export type Attributes = ReadonlyMap<string, AttributeValue>;

export const SpanStatusCode = { Unset: 0, Ok: 1, Error: 2 } as const;

export interface OtlpSpan {
  /** Lower-case hex as received; validated by the mapping, so one bad span does not fail the request. */
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  /** The attributes of the span's resource (shared by every span of one ResourceSpans). */
  resource: Attributes;
  status: { code: number; message: string };
}

export type DecodeResult = { ok: true; spans: OtlpSpan[] } | { ok: false; reason: string };

/** What the receiver answers: OTLP partial success when some spans were rejected. */
export interface ExportResult {
  rejectedSpans: number;
  errorMessage: string;
}

// The subset of opentelemetry-proto (collector/trace/v1, trace/v1, common/v1, resource/v1) the mapping
// reads, with upstream field numbers. Fields left out are skipped as unknown fields; enums are read as int32,
// which has the same wire encoding.
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; Status status = 15;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
`;
const proto = parse(OTLP_PROTO).root;
const RequestMessage: Type = proto.lookupType('otlp.ExportTraceServiceRequest');
const ResponseMessage: Type = proto.lookupType('otlp.ExportTraceServiceResponse');

// OTLP/JSON is the proto3 JSON mapping except that ids are hex; proto3 JSON also allows null for unset fields
// and int64 as string or number (a number beyond 2^53 has lost precision, but is still accepted). Unknown
// fields are ignored, as the OTLP specification requires.
const Int64 = z.union([z.number(), z.string().regex(/^-?\d+$/)]);
const AnyValue = z.object({
  stringValue: z.string().nullish(),
  boolValue: z.boolean().nullish(),
  intValue: Int64.nullish(),
  doubleValue: z.union([z.number(), z.string()]).nullish(),
});
const KeyValues = z.array(z.object({ key: z.string(), value: AnyValue.nullish() })).nullish();
const UnixNano = z.union([z.number().min(0), z.string().regex(/^\d+$/)]).nullish();
const Span = z.object({
  traceId: z.string().nullish(),
  spanId: z.string().nullish(),
  parentSpanId: z.string().nullish(),
  name: z.string().nullish(),
  startTimeUnixNano: UnixNano,
  endTimeUnixNano: UnixNano,
  attributes: KeyValues,
  status: z.object({ code: z.union([z.number(), z.string()]).nullish(), message: z.string().nullish() }).nullish(),
});
const TraceRequest = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: KeyValues }).nullish(),
        scopeSpans: z.array(z.object({ spans: z.array(Span).nullish() })).nullish(),
      }),
    )
    .nullish(),
});
type TraceRequest = z.output<typeof TraceRequest>;

/** Decodes an ExportTraceServiceRequest body; an absent body is an empty request. */
export function decodeTraceRequest(body: unknown, encoding: OtlpEncoding): DecodeResult {
  if (body === undefined || body === null) return { ok: true, spans: [] };
  let json: unknown = body;
  if (encoding === 'protobuf') {
    if (!(body instanceof Uint8Array)) return { ok: false, reason: 'protobuf body was not read as bytes' };
    try {
      json = protobufToJson(body);
    } catch (error) {
      return { ok: false, reason: `invalid protobuf: ${(error as Error).message}` };
    }
  }
  const parsed = TraceRequest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `invalid OTLP/JSON at ${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  return { ok: true, spans: flatten(parsed.data) };
}

/** The ExportTraceServiceResponse body; partial_success stays unset when every span was accepted. */
export function encodeTraceResponse(result: ExportResult, encoding: OtlpEncoding): Buffer {
  const partialSuccess =
    result.rejectedSpans > 0 ? { rejectedSpans: result.rejectedSpans, errorMessage: result.errorMessage } : undefined;
  if (encoding === 'protobuf') {
    return Buffer.from(ResponseMessage.encode(ResponseMessage.fromObject({ partialSuccess })).finish());
  }
  // proto3 JSON writes int64 as a string.
  const json = partialSuccess
    ? { partialSuccess: { ...partialSuccess, rejectedSpans: String(result.rejectedSpans) } }
    : {};
  return Buffer.from(JSON.stringify(json));
}

function protobufToJson(body: Uint8Array): unknown {
  const request = RequestMessage.toObject(RequestMessage.decode(body), { longs: String, bytes: String }) as {
    resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
  };
  for (const resourceSpans of request.resourceSpans ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        for (const field of ['traceId', 'spanId', 'parentSpanId']) {
          if (typeof span[field] === 'string') span[field] = Buffer.from(span[field], 'base64').toString('hex');
        }
      }
    }
  }
  return request;
}

function flatten(request: TraceRequest): OtlpSpan[] {
  const spans: OtlpSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: (span.traceId ?? '').toLowerCase(),
          spanId: (span.spanId ?? '').toLowerCase(),
          parentSpanId: (span.parentSpanId ?? '').toLowerCase(),
          name: span.name ?? '',
          startTimeUnixNano: nanosOf(span.startTimeUnixNano),
          endTimeUnixNano: nanosOf(span.endTimeUnixNano),
          attributes: attributesOf(span.attributes),
          resource,
          status: { code: statusCodeOf(span.status?.code), message: span.status?.message ?? '' },
        });
      }
    }
  }
  return spans;
}

function attributesOf(keyValues: z.output<typeof KeyValues>): Attributes {
  const attributes = new Map<string, AttributeValue>();
  for (const { key, value } of keyValues ?? []) {
    if (value?.stringValue != null) attributes.set(key, value.stringValue);
    else if (value?.boolValue != null) attributes.set(key, value.boolValue);
    else if (value?.intValue != null) attributes.set(key, intOf(value.intValue));
    else if (value?.doubleValue != null) attributes.set(key, Number(value.doubleValue));
  }
  return attributes;
}

function nanosOf(value: number | string | null | undefined): bigint {
  return typeof value === 'number' ? BigInt(Math.trunc(value)) : BigInt(value ?? 0);
}

/** int64 beyond 2^53 stays a string: no count or attempt the mapping reads can be that large. */
function intOf(value: number | string): number | string {
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : String(value);
}

function statusCodeOf(code: number | string | null | undefined): number {
  if (typeof code === 'number') return code;
  if (code === 'STATUS_CODE_OK') return SpanStatusCode.Ok;
  if (code === 'STATUS_CODE_ERROR') return SpanStatusCode.Error;
  return SpanStatusCode.Unset;
}
