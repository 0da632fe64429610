import type { OtlpScope } from './otlp.auth';
import { Injectable } from '@nestjs/common';
import { parseAgentEvent, type AgentEventInput, type EventType } from '@agentmeter/contracts';
import { Redactor } from '@agentmeter/domain';
import { SpanStatusCode, type AttributeValue, type ExportResult, type OtlpSpan } from './otlp.decoder';
import { OtlpMetrics } from './otlp.metrics';
import { OtlpPublisher, type KeyedEvent } from './otlp.publisher';

/**
 * Turns OTLP spans into llm_call and tool_call events (docs/otlp.md has the whole mapping). Names are listed
 * most preferred first; the first one present wins.
 */
export const OtlpAttributes = {
  // Run and stage: on the span, else on its resource.
  tenant: ['agentmeter.tenant_id', 'tenant.id'],
  project: ['agentmeter.project_id', 'project.id'],
  run: ['agentmeter.run_id', 'run.id'],
  phase: ['agentmeter.phase'],
  role: ['agentmeter.role'],
  agentName: ['gen_ai.agent.name'],
  attempt: ['agentmeter.attempt'],
  user: ['agentmeter.user_id', 'user.id', 'enduser.id'],
  // Usage, model and provider: GenAI semantic conventions first, then the llm.* names (docs/otlp.md "llm_call").
  inputTokens: ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.tokens.prompt'],
  outputTokens: ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'llm.tokens.completion'],
  cachedTokens: [
    'gen_ai.usage.cache_read.input_tokens',
    'gen_ai.usage.cache_read_input_tokens',
    'gen_ai.usage.cached_tokens',
    'llm.tokens.cached',
  ],
  reasoningTokens: ['gen_ai.usage.reasoning.output_tokens', 'gen_ai.usage.reasoning_tokens', 'llm.tokens.reasoning'],
  model: ['gen_ai.response.model', 'gen_ai.request.model', 'llm.model'],
  provider: ['gen_ai.provider.name', 'gen_ai.system', 'llm.provider'],
  operation: ['gen_ai.operation.name'],
  traceloopKind: ['traceloop.span.kind'],
  // Tools and MCP (docs/otlp.md "tool_call": mcp.tool, mcp.cache_hit; MCP semantic conventions: mcp.method.name).
  tool: ['mcp.tool', 'gen_ai.tool.name'],
  mcpMethod: ['mcp.method.name'],
  mcpServer: ['mcp.server'],
  cacheHit: ['mcp.cache_hit'],
  cacheKeySpace: ['mcp.cache_key_space'],
  cacheKey: ['mcp.cache_key'],
  errorType: ['error.type'],
  serviceName: ['service.name'],
} as const;

/** Defaults of the stage fields the contract requires but a span may not carry. */
export const OtlpDefaults = { project: 'default', phase: 'default', role: 'default', attempt: 1 } as const;

/** Operations whose spans sum the usage of the calls they made: never counted themselves. */
const AGGREGATE_OPERATIONS = new Set<AttributeValue>(['invoke_agent', 'create_agent', 'invoke_workflow']);
const AGGREGATE_TRACELOOP_KINDS = new Set<AttributeValue>(['workflow', 'agent', 'task']);

export type SpanOutcome = 'llm_call' | 'tool_call' | 'aggregate' | 'nested_tool' | 'ignored' | 'rejected';

export interface SpanMapping {
  events: KeyedEvent[];
  outcomes: Record<SpanOutcome, number>;
  /** One reason per rejected span. */
  rejections: string[];
}

@Injectable()
export class OtlpService {
  constructor(
    private readonly publisher: OtlpPublisher,
    private readonly metrics: OtlpMetrics,
    private readonly redactor: Redactor,
  ) {}

  /**
   * Publishes the calls the spans describe; resolves once Kafka acknowledged all of them. What a span says
   * (attributes, status message) is outside text: it is redacted, and its identifiers pseudonymised, before
   * it reaches the topic (docs/security.md).
   */
  async export(spans: readonly OtlpSpan[], scope: OtlpScope): Promise<ExportResult> {
    const mapping = restrictToScope(mapSpans(spans), scope);
    await this.publisher.publish(mapping.events.map((keyed) => this.redact(keyed)));
    this.metrics.observe(mapping.outcomes);
    return {
      rejectedSpans: mapping.rejections.length,
      errorMessage: this.redactor.text(summarize(mapping.rejections)).text,
    };
  }

  /** The message key is the run id: a pseudonymised run id must not leave the original in the key. */
  private redact({ key, event }: KeyedEvent): KeyedEvent {
    const redacted = this.redactor.event(event).event;
    if (redacted === event) return { key, event };
    return { key: 'run_id' in redacted.data ? redacted.data.run_id : key, event: redacted };
  }
}

/**
 * Maps the spans of one export request. Usage is counted on leaf-most spans only: a span with usage is
 * skipped when it is an agent or workflow span, or when one of its descendants in the request has usage too
 * (it sums theirs). Tool calls are counted on outer-most spans: a tool span inside another tool span of the
 * request is a part of that call.
 */
export function mapSpans(spans: readonly OtlpSpan[]): SpanMapping {
  const byId = new Map<string, OtlpSpan>();
  for (const span of spans) byId.set(`${span.traceId}/${span.spanId}`, span);
  const parentOf = (span: OtlpSpan) =>
    span.parentSpanId ? byId.get(`${span.traceId}/${span.parentSpanId}`) : undefined;

  const withUsageBelow = ancestorsOf(spans.filter(hasUsage), parentOf);
  const insideTool = hasAncestor(spans, parentOf, isToolSpan);

  const mapping: SpanMapping = {
    events: [],
    outcomes: { llm_call: 0, tool_call: 0, aggregate: 0, nested_tool: 0, ignored: 0, rejected: 0 },
    rejections: [],
  };
  for (const span of spans) {
    let type: EventType;
    if (hasUsage(span)) {
      if (isAggregateSpan(span) || withUsageBelow.has(span)) {
        mapping.outcomes.aggregate++;
        continue;
      }
      type = 'llm_call';
    } else if (isToolSpan(span)) {
      if (insideTool.get(span)) {
        mapping.outcomes.nested_tool++;
        continue;
      }
      type = 'tool_call';
    } else {
      mapping.outcomes.ignored++;
      continue;
    }
    const result = toEvent(span, type, parentOf);
    if (result.ok) {
      mapping.events.push(result.event);
      mapping.outcomes[type === 'llm_call' ? 'llm_call' : 'tool_call']++;
    } else {
      mapping.rejections.push(result.reason);
      mapping.outcomes.rejected++;
    }
  }
  return mapping;
}

/** Spans of a tenant the credential does not cover are rejected, never stored under that tenant. */
export function restrictToScope(mapping: SpanMapping, scope: OtlpScope): SpanMapping {
  if (scope.tenant === '*') return mapping;
  const events = mapping.events.filter(({ event }) => event.data.tenant_id === scope.tenant);
  const foreign = mapping.events.length - events.length;
  if (foreign === 0) return mapping;
  return {
    events,
    outcomes: { ...mapping.outcomes, rejected: mapping.outcomes.rejected + foreign },
    rejections: [...mapping.rejections, ...Array<string>(foreign).fill('tenant not covered by the token')],
  };
}

/** The OTLP partial-success message: each distinct reason once, with how many spans it rejected. */
export function summarize(rejections: readonly string[]): string {
  if (rejections.length === 0) return '';
  const counts = new Map<string, number>();
  for (const reason of rejections) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  const reasons = [...counts].slice(0, 5).map(([reason, count]) => `${reason} (${count})`);
  if (counts.size > 5) reasons.push(`${counts.size - 5} more reasons`);
  return `${rejections.length} span(s) rejected: ${reasons.join('; ')}`;
}

class SpanRejected extends Error {}

type EventResult = { ok: true; event: KeyedEvent } | { ok: false; reason: string };

function toEvent(span: OtlpSpan, type: EventType, parentOf: (span: OtlpSpan) => OtlpSpan | undefined): EventResult {
  try {
    const input = type === 'llm_call' ? llmCallOf(span, ancestorIdsOf(span, parentOf)) : toolCallOf(span);
    const parsed = parseAgentEvent(input);
    if (!parsed.ok) return { ok: false, reason: `invalid ${type}: ${parsed.reason}` };
    return { ok: true, event: { key: input.data.run_id, event: parsed.event } };
  } catch (error) {
    if (error instanceof SpanRejected) return { ok: false, reason: error.message };
    throw error;
  }
}

function llmCallOf(span: OtlpSpan, ancestors: string[]): AgentEventInput<'llm_call'> {
  const call = callOf(span);
  return envelope(span, 'llm_call', call.stage.tenant_id, {
    ...call.stage,
    model: text(span, OtlpAttributes.model) ?? 'unknown',
    provider: text(span, OtlpAttributes.provider) ?? 'unknown',
    prompt_tokens: count(span, OtlpAttributes.inputTokens) ?? 0,
    completion_tokens: count(span, OtlpAttributes.outputTokens) ?? 0,
    cached_tokens: count(span, OtlpAttributes.cachedTokens) ?? 0,
    reasoning_tokens: count(span, OtlpAttributes.reasoningTokens) ?? 0,
    latency_ms: call.latencyMs,
    status: call.status,
    error: call.error,
    trace_id: span.traceId,
    span_id: span.spanId,
    ancestor_span_ids: ancestors,
    user_id: text(span, OtlpAttributes.user, { resource: true }),
  });
}

function toolCallOf(span: OtlpSpan): AgentEventInput<'tool_call'> {
  const call = callOf(span);
  const key = text(span, OtlpAttributes.cacheKey);
  // The MCP server reports its own spans under its own service name (docs/otlp.md "Attribute mapping": e.g. amtp-github-mcp).
  const server = span.attributes.has('mcp.tool') ? serviceNameOf(span) : undefined;
  return envelope(span, 'tool_call', call.stage.tenant_id, {
    ...call.stage,
    tool: text(span, OtlpAttributes.tool) ?? span.name,
    mcp_server: text(span, OtlpAttributes.mcpServer) ?? server,
    cache_key_space: text(span, OtlpAttributes.cacheKeySpace) ?? (key ? keySpaceOf(key) : undefined),
    cache_hit: flag(span, OtlpAttributes.cacheHit),
    latency_ms: call.latencyMs,
    status: call.status,
    error: call.error,
    trace_id: span.traceId,
    span_id: span.spanId,
  });
}

/** What llm_call and tool_call share: the stage, the identity checks, timing and status. */
function callOf(span: OtlpSpan) {
  if (!/^[0-9a-f]{32}$/.test(span.traceId) || /^0+$/.test(span.traceId)) throw new SpanRejected('invalid trace id');
  if (!/^[0-9a-f]{16}$/.test(span.spanId) || /^0+$/.test(span.spanId)) throw new SpanRejected('invalid span id');
  const tenant = text(span, OtlpAttributes.tenant, { resource: true });
  if (!tenant) throw new SpanRejected(`no tenant (${OtlpAttributes.tenant.join(' or ')})`);
  const run = text(span, OtlpAttributes.run, { resource: true });
  if (!run) throw new SpanRejected(`no run (${OtlpAttributes.run.join(' or ')})`);
  const stage = {
    tenant_id: tenant,
    project_id: text(span, OtlpAttributes.project, { resource: true }) ?? OtlpDefaults.project,
    run_id: run,
    phase: text(span, OtlpAttributes.phase, { resource: true }) ?? OtlpDefaults.phase,
    role:
      text(span, OtlpAttributes.role, { resource: true }) ??
      text(span, OtlpAttributes.agentName, { resource: true }) ??
      OtlpDefaults.role,
    attempt: count(span, OtlpAttributes.attempt, { resource: true }) ?? OtlpDefaults.attempt,
  };
  const start = span.startTimeUnixNano;
  const end = span.endTimeUnixNano > 0n ? span.endTimeUnixNano : start;
  if (end === 0n) throw new SpanRejected('no start or end time');
  const latencyMs = start > 0n && end >= start ? Number((end - start) / 1_000_000n) : 0;
  // latency_ms is an int column: a span cannot last longer than 2^31 ms (24.8 days).
  if (latencyMs > 2 ** 31 - 1) throw new SpanRejected('span lasts longer than 24 days');
  const failed = span.status.code === SpanStatusCode.Error;
  return {
    stage,
    latencyMs,
    status: failed ? ('error' as const) : ('ok' as const),
    error: failed
      ? (span.status.message || text(span, OtlpAttributes.errorType) || undefined)?.slice(0, 4000)
      : undefined,
  };
}

/** Event identity is the span's: a re-exported span is the same event, and ingest stores it once. */
function envelope<T extends 'llm_call' | 'tool_call'>(
  span: OtlpSpan,
  type: T,
  tenant: string,
  data: AgentEventInput<T>['data'],
): AgentEventInput<T> {
  const time = new Date(
    Number((span.endTimeUnixNano > 0n ? span.endTimeUnixNano : span.startTimeUnixNano) / 1_000_000n),
  );
  if (Number.isNaN(time.getTime())) throw new SpanRejected('span time out of range');
  return {
    specversion: '1.0',
    id: `${span.traceId}-${span.spanId}`,
    source: `otlp/${serviceNameOf(span) ?? 'unknown_service'}`,
    type,
    time: time.toISOString(),
    subject: tenant,
    datacontenttype: 'application/json',
    data,
  };
}

function hasUsage(span: OtlpSpan): boolean {
  return [...OtlpAttributes.inputTokens, ...OtlpAttributes.outputTokens].some((name) => span.attributes.has(name));
}

function isAggregateSpan(span: OtlpSpan): boolean {
  const operation = span.attributes.get(OtlpAttributes.operation[0]);
  const traceloopKind = span.attributes.get(OtlpAttributes.traceloopKind[0]);
  return (
    (operation !== undefined && AGGREGATE_OPERATIONS.has(operation)) ||
    (traceloopKind !== undefined && AGGREGATE_TRACELOOP_KINDS.has(traceloopKind))
  );
}

function isToolSpan(span: OtlpSpan): boolean {
  return (
    !hasUsage(span) &&
    (span.attributes.has('mcp.tool') ||
      span.attributes.get(OtlpAttributes.operation[0]) === 'execute_tool' ||
      span.attributes.get(OtlpAttributes.mcpMethod[0]) === 'tools/call')
  );
}

function serviceNameOf(span: OtlpSpan): string | undefined {
  const name = span.resource.get(OtlpAttributes.serviceName[0]);
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** "amtp:mcp:tree:<repo>@<sha>" is in key space "amtp:mcp:tree" (docs/console.md "Run detail"); other keys: none. */
function keySpaceOf(key: string): string | undefined {
  const match = /^(amtp:mcp:[^:]+):/.exec(key);
  return match?.[1];
}

/** Ancestors an llm_call carries at most (the contract's limit); deeper ones are left out. */
const MAX_ANCESTORS = 64;

/**
 * The span ids above a span, nearest first, as far as this request shows them: the parent, its parent when
 * the parent is in the request, and so on; the last id is the parent of the top-most span of the request
 * (which is usually in another request). Ingest resolves aggregates across requests with them.
 */
function ancestorIdsOf(span: OtlpSpan, parentOf: (span: OtlpSpan) => OtlpSpan | undefined): string[] {
  const ids: string[] = [];
  const isId = (id: string) => /^[0-9a-f]{16}$/.test(id) && !/^0+$/.test(id);
  for (let node: OtlpSpan | undefined = span; node && isId(node.parentSpanId); node = parentOf(node)) {
    if (ids.includes(node.parentSpanId) || ids.length === MAX_ANCESTORS) break; // a cycle, or too deep
    ids.push(node.parentSpanId);
  }
  return ids;
}

/** The spans that have a descendant among `spans`; stops at spans already marked, so linear overall. */
function ancestorsOf(spans: readonly OtlpSpan[], parentOf: (span: OtlpSpan) => OtlpSpan | undefined): Set<OtlpSpan> {
  const marked = new Set<OtlpSpan>();
  for (const span of spans) {
    for (let parent = parentOf(span); parent && !marked.has(parent); parent = parentOf(parent)) marked.add(parent);
  }
  return marked;
}

/** Whether each span has an ancestor passing `test`; memoized, and safe on cyclic parent links. */
function hasAncestor(
  spans: readonly OtlpSpan[],
  parentOf: (span: OtlpSpan) => OtlpSpan | undefined,
  test: (span: OtlpSpan) => boolean,
): Map<OtlpSpan, boolean> {
  const known = new Map<OtlpSpan, boolean>();
  for (const span of spans) {
    const path: OtlpSpan[] = [];
    const onPath = new Set<OtlpSpan>();
    let node: OtlpSpan | undefined = span;
    while (node && !known.has(node) && !onPath.has(node)) {
      path.push(node);
      onPath.add(node);
      node = parentOf(node);
    }
    let above = node !== undefined && known.has(node) ? known.get(node)! || test(node) : false;
    for (let i = path.length - 1; i >= 0; i--) {
      known.set(path[i]!, above);
      above = above || test(path[i]!);
    }
  }
  return known;
}

interface Lookup {
  /** Also look at the resource when the span does not carry the attribute. */
  resource?: boolean;
}

function find(span: OtlpSpan, names: readonly string[], { resource = false }: Lookup) {
  for (const attributes of resource ? [span.attributes, span.resource] : [span.attributes]) {
    for (const name of names) {
      const value = attributes.get(name);
      if (value !== undefined && value !== '') return { name, value };
    }
  }
  return undefined;
}

function text(span: OtlpSpan, names: readonly string[], lookup: Lookup = {}): string | undefined {
  const found = find(span, names, lookup);
  return found === undefined ? undefined : String(found.value);
}

function count(span: OtlpSpan, names: readonly string[], lookup: Lookup = {}): number | undefined {
  const found = find(span, names, lookup);
  if (found === undefined) return undefined;
  const value = typeof found.value === 'string' && /^\d+$/.test(found.value) ? Number(found.value) : found.value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new SpanRejected(`${found.name} is not a non-negative integer`);
  }
  return value;
}

function flag(span: OtlpSpan, names: readonly string[]): boolean | undefined {
  const found = find(span, names, {});
  if (found === undefined) return undefined;
  if (found.value === true || found.value === 'true') return true;
  if (found.value === false || found.value === 'false') return false;
  throw new SpanRejected(`${found.name} is not a boolean`);
}
