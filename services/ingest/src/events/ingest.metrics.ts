import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AgentEvent } from '@agentmeter/contracts';
import type { BatchConsumerMetrics } from '@agentmeter/kafka';
import { metricsRegistry } from '@agentmeter/telemetry';

/** Stages of writing a batch, as `agentmeter_ingest_stage_seconds` labels them. */
export type IngestStage = 'redact' | 'read' | 'project' | 'write';

/** Prometheus metrics of the ingest path. Names are part of the dashboards' contract. */
@Injectable()
export class IngestMetrics {
  readonly events = new Counter({
    name: 'agentmeter_ingest_events_total',
    help: 'Events accepted by ingest, by type and outcome (stored or duplicate).',
    labelNames: ['type', 'outcome'] as const,
    registers: [metricsRegistry],
  });
  readonly deadLettered = new Counter({
    name: 'agentmeter_ingest_dead_letters_total',
    help: 'Messages sent to the dead-letter topic, by reason field.',
    labelNames: ['reason'] as const,
    registers: [metricsRegistry],
  });
  readonly runOwnerRejections = new Counter({
    name: 'agentmeter_ingest_run_owner_rejections_total',
    help: 'Events dead-lettered because their run id belongs to another tenant.',
    registers: [metricsRegistry],
  });
  readonly aggregateCalls = new Counter({
    name: 'agentmeter_ingest_aggregate_calls_total',
    help: 'LLM calls stored in the event log only: spans aggregating the usage of spans below them, or re-exports.',
    registers: [metricsRegistry],
  });
  readonly redactions = new Counter({
    name: 'agentmeter_ingest_redactions_total',
    help: 'Events in which secrets or PII were redacted before storage, by kind.',
    labelNames: ['kind'] as const,
    registers: [metricsRegistry],
  });
  readonly promptTexts = new Counter({
    name: 'agentmeter_ingest_prompt_texts_total',
    help: "LLM calls that carried prompt or completion text: stored (redacted) for the tenant's prompt audit, or dropped.",
    labelNames: ['outcome'] as const,
    registers: [metricsRegistry],
  });
  readonly batchSeconds = new Histogram({
    name: 'agentmeter_ingest_batch_duration_seconds',
    help: 'Time to decode, store and commit one batch.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metricsRegistry],
  });
  readonly stageSeconds = new Histogram({
    name: 'agentmeter_ingest_stage_seconds',
    help:
      'Time of each stage of writing a batch: redact, owners (run ownership claims), read (what the batch needs ' +
      'from storage: prompt audit, run users, span trees, partitions, tenants), project (pricing, projections, ' +
      'rollups), write (statements built and run, committed).',
    labelNames: ['stage'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metricsRegistry],
  });
  /**
   * A stopwatch of one batch: `lap` ends the named stage (a stage may be timed in several parts), `done`
   * observes each stage's total once.
   */
  stageTimer(): { lap(stage: IngestStage): void; done(): void } {
    let last = process.hrtime.bigint();
    const spent = new Map<IngestStage, bigint>();
    return {
      lap: (stage) => {
        const now = process.hrtime.bigint();
        spent.set(stage, (spent.get(stage) ?? 0n) + now - last);
        last = now;
      },
      done: () => {
        for (const [stage, ns] of spent) this.stageSeconds.observe({ stage }, Number(ns) / 1e9);
      },
    };
  }
  readonly batchSize = new Histogram({
    name: 'agentmeter_ingest_batch_size',
    help: 'Messages per batch.',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [metricsRegistry],
  });
  readonly lag = new Gauge({
    name: 'agentmeter_ingest_consumer_lag',
    help: 'Messages behind the partition high watermark, for the partitions this process owns (after each batch and every 15 s).',
    labelNames: ['partition'] as const,
    registers: [metricsRegistry],
  });
  // Token counters (the collector's `llm` namespace names, docs/observability.md "Instrumentation contract"), by model and provider.
  readonly promptTokens = new Counter({
    name: 'llm_prompt_tokens_total',
    help: 'Prompt (input) tokens of stored LLM calls.',
    labelNames: ['model', 'provider'] as const,
    registers: [metricsRegistry],
  });
  readonly completionTokens = new Counter({
    name: 'llm_completion_tokens_total',
    help: 'Completion (output) tokens of stored LLM calls.',
    labelNames: ['model', 'provider'] as const,
    registers: [metricsRegistry],
  });
  readonly totalTokens = new Counter({
    name: 'llm_total_tokens_total',
    help: 'Prompt plus completion tokens of stored LLM calls.',
    labelNames: ['model', 'provider'] as const,
    registers: [metricsRegistry],
  });
  readonly unpriced = new Counter({
    name: 'agentmeter_ingest_unpriced_calls_total',
    help: 'LLM calls stored without a price (no producer cost and no price for the model).',
    labelNames: ['model', 'provider'] as const,
    registers: [metricsRegistry],
  });
  readonly toolCalls = new Counter({
    name: 'agentmeter_tool_calls_total',
    help: 'Tool and MCP calls, by tool, MCP server and status.',
    labelNames: ['tool', 'server', 'status'] as const,
    registers: [metricsRegistry],
  });
  readonly toolCallSeconds = new Histogram({
    name: 'agentmeter_tool_call_duration_seconds',
    help: 'Tool and MCP call latency.',
    labelNames: ['tool', 'server', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metricsRegistry],
  });
  // Per-agent usage (docs/observability.md "Instrumentation contract"); the agent is the event's role (planner, implementer, ...), a bounded set.
  readonly agentRequests = new Counter({
    name: 'agentmeter_agent_requests_total',
    help: 'LLM and tool calls stored, by agent (role) and kind (llm, tool).',
    labelNames: ['agent', 'kind'] as const,
    registers: [metricsRegistry],
  });
  readonly agentTokens = new Counter({
    name: 'agentmeter_agent_tokens_total',
    help: 'Tokens of stored LLM calls, by agent (role), model and direction (prompt, completion).',
    labelNames: ['agent', 'model', 'direction'] as const,
    registers: [metricsRegistry],
  });
  readonly mcpCache = new Counter({
    name: 'agentmeter_mcp_cache_requests_total',
    help: 'MCP cache lookups by key space and result (hit or miss).',
    labelNames: ['key_space', 'result'] as const,
    registers: [metricsRegistry],
  });

  /**
   * Counts a written batch: every event as stored or duplicate (`stored` null: all were stored), and the
   * token and tool metrics of the stored calls. Counters are summed per label set first, so a batch of
   * thousands of events costs one increment per label set rather than one per event.
   */
  countBatch(
    events: readonly AgentEvent[],
    stored: ReadonlySet<AgentEvent> | null,
    costOf: (event: AgentEvent & { type: 'llm_call' }) => { source: string },
    uncounted: ReadonlySet<AgentEvent> = new Set(),
  ): void {
    const counts = { stored: new Map<string, number>(), duplicate: new Map<string, number>() };
    const tokens = new Map<string, Map<string, { prompt: number; completion: number; unpriced: number }>>();
    const agents = new AgentUsage();
    for (const event of events) {
      const outcome = stored === null || stored.has(event) ? 'stored' : 'duplicate';
      counts[outcome].set(event.type, (counts[outcome].get(event.type) ?? 0) + 1);
      if (outcome === 'duplicate' || uncounted.has(event)) continue;
      if (event.type === 'llm_call') {
        const { model, provider, prompt_tokens, completion_tokens } = event.data;
        let byProvider = tokens.get(model);
        if (!byProvider) tokens.set(model, (byProvider = new Map()));
        let sums = byProvider.get(provider);
        if (!sums) byProvider.set(provider, (sums = { prompt: 0, completion: 0, unpriced: 0 }));
        sums.prompt += prompt_tokens;
        sums.completion += completion_tokens;
        if (costOf(event).source === 'unpriced') sums.unpriced += 1;
        agents.add(event.data.role, 'llm', model, prompt_tokens, completion_tokens);
      } else if (event.type === 'tool_call') {
        this.observeToolCall(event);
        agents.add(event.data.role, 'tool');
      }
    }
    for (const outcome of ['stored', 'duplicate'] as const) {
      for (const [type, n] of counts[outcome]) this.events.inc({ type, outcome }, n);
    }
    for (const [model, byProvider] of tokens) {
      for (const [provider, { prompt, completion, unpriced }] of byProvider) {
        const labels = { model, provider };
        this.promptTokens.inc(labels, prompt);
        this.completionTokens.inc(labels, completion);
        this.totalTokens.inc(labels, prompt + completion);
        if (unpriced > 0) this.unpriced.inc(labels, unpriced);
      }
    }
    for (const [key, n] of agents.requests) {
      const [agent, kind] = JSON.parse(key) as [string, string];
      this.agentRequests.inc({ agent, kind }, n);
    }
    for (const [key, n] of agents.tokens) {
      const [agent, model, direction] = JSON.parse(key) as [string, string, string];
      if (n > 0) this.agentTokens.inc({ agent, model, direction }, n);
    }
  }

  private observeToolCall(event: AgentEvent & { type: 'tool_call' }): void {
    const labels = { tool: event.data.tool, server: event.data.mcp_server ?? '', status: event.data.status };
    this.toolCalls.inc(labels);
    this.toolCallSeconds.observe(labels, event.data.latency_ms / 1000);
    if (event.data.cache_key_space && event.data.cache_hit !== undefined) {
      this.mcpCache.inc({ key_space: event.data.cache_key_space, result: event.data.cache_hit ? 'hit' : 'miss' });
    }
  }

  readonly consumerMetrics: BatchConsumerMetrics = {
    onBatch: (_topic, _partition, size, seconds) => {
      this.batchSeconds.observe(seconds);
      this.batchSize.observe(size);
    },
    onDeadLetter: (_topic, reason) => this.deadLettered.inc({ reason }),
    onLag: (_topic, partition, lag) =>
      lag === null
        ? this.lag.remove({ partition: String(partition) })
        : this.lag.set({ partition: String(partition) }, lag),
  };
}

/** Per-agent sums of one batch, keyed by their label values. */
class AgentUsage {
  readonly requests = new Map<string, number>();
  readonly tokens = new Map<string, number>();

  add(agent: string, kind: 'llm' | 'tool', model?: string, prompt = 0, completion = 0): void {
    bump(this.requests, JSON.stringify([agent, kind]), 1);
    if (model === undefined) return;
    bump(this.tokens, JSON.stringify([agent, model, 'prompt']), prompt);
    bump(this.tokens, JSON.stringify([agent, model, 'completion']), completion);
  }
}

function bump(map: Map<string, number>, key: string, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}
