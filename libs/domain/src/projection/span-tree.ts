import type { RunDelta, StageDelta } from './run-projection';
import type { ModelUsageDelta, UsageDelta } from './usage-rollup';

/**
 * Usage is counted on leaf-most spans only, across export requests (docs/otlp.md "Aggregate spans"). Each
 * LLM call that names its span's ancestors is a node of its trace; a node that another node of the same
 * tenant, run and trace names as an ancestor aggregates the usage below it and is not counted. The rule
 * depends only on the set of nodes, so it gives the same answer whatever order the spans arrive in: a node
 * counted when it arrived first is retracted when a descendant arrives.
 */

export interface SpanNode {
  /** Tenant, run and trace: nodes of different groups never aggregate each other. */
  group: string;
  spanId: string;
  ancestors: readonly string[];
}

export interface StoredSpanNode extends SpanNode {
  counted: boolean;
}

export interface SpanResolution<T extends StoredSpanNode = StoredSpanNode> {
  /** Per incoming node: counted, aggregate (an ancestor of another node), or already stored (a re-export). */
  outcomes: Array<'counted' | 'aggregate' | 'duplicate'>;
  /** Stored nodes counted so far that are now known to be ancestors of another node. */
  retract: T[];
}

export function resolveSpans<T extends StoredSpanNode>(
  stored: readonly T[],
  incoming: readonly SpanNode[],
): SpanResolution<T> {
  const key = (group: string, spanId: string) => `${group}\u0000${spanId}`;
  const known = new Set<string>();
  const listed = new Set<string>();
  const list = (node: SpanNode) => {
    for (const ancestor of node.ancestors) if (ancestor !== node.spanId) listed.add(key(node.group, ancestor));
  };
  for (const node of stored) {
    known.add(key(node.group, node.spanId));
    list(node);
  }
  const outcomes: SpanResolution<T>['outcomes'] = incoming.map((node) => {
    const id = key(node.group, node.spanId);
    if (known.has(id)) return 'duplicate';
    known.add(id);
    list(node);
    return 'counted';
  });
  incoming.forEach((node, i) => {
    if (outcomes[i] === 'counted' && listed.has(key(node.group, node.spanId))) outcomes[i] = 'aggregate';
  });
  return { outcomes, retract: stored.filter((node) => node.counted && listed.has(key(node.group, node.spanId))) };
}

/*
 * A retracted call's contribution comes off the projections as the negation of what it added: the additive
 * fields negated, everything ranked or time-ordered left out (the call still happened when it did).
 */

export function negateRunDelta(run: RunDelta): RunDelta {
  return {
    ...run,
    playbook: null,
    userId: null,
    status: null,
    phase: null,
    model: null,
    startedAt: null,
    finishedAt: null,
    environment: null,
    caps: null,
    tokensIn: -run.tokensIn,
    tokensOut: -run.tokensOut,
    costMicros: -run.costMicros,
    externalMicros: -run.externalMicros,
    llmCalls: -run.llmCalls,
    cachedCalls: -run.cachedCalls,
    unpricedCalls: -run.unpricedCalls,
  };
}

export function negateStageDelta(stage: StageDelta): StageDelta {
  return {
    ...stage,
    status: null,
    startedAt: null,
    finishedAt: null,
    traceId: null,
    promptTokens: -stage.promptTokens,
    completionTokens: -stage.completionTokens,
    cachedTokens: -stage.cachedTokens,
    costMicros: -stage.costMicros,
    llmCalls: -stage.llmCalls,
  };
}

export function negateUsageDelta(usage: UsageDelta): UsageDelta {
  return {
    ...usage,
    calls: -usage.calls,
    successes: -usage.successes,
    failures: -usage.failures,
    totalLatencyMs: -usage.totalLatencyMs,
    latencyBuckets: usage.latencyBuckets.map((n) => -n),
    latencySketch: Object.fromEntries(Object.entries(usage.latencySketch).map(([bin, n]) => [bin, -n])),
    inputTokens: -usage.inputTokens,
    outputTokens: -usage.outputTokens,
    cachedTokens: -usage.cachedTokens,
    costMicros: -usage.costMicros,
    unpricedCalls: -usage.unpricedCalls,
  };
}

export function negateModelUsageDelta(usage: ModelUsageDelta): ModelUsageDelta {
  return {
    ...usage,
    calls: -usage.calls,
    inputTokens: -usage.inputTokens,
    outputTokens: -usage.outputTokens,
    cachedTokens: -usage.cachedTokens,
    costMicros: -usage.costMicros,
    unpricedCalls: -usage.unpricedCalls,
  };
}
