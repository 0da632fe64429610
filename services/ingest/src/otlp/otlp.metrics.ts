import { Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { metricsRegistry } from '@agentmeter/telemetry';
import type { SpanOutcome } from './otlp.service';

/** Prometheus metrics of the OTLP receiver. Names are part of the dashboards' contract. */
@Injectable()
export class OtlpMetrics {
  readonly spans = new Counter({
    name: 'agentmeter_otlp_spans_total',
    help:
      'Spans received on POST /v1/traces, by outcome: llm_call and tool_call (published), aggregate and ' +
      'nested_tool (counted by another span), ignored (no usage, not a tool), rejected.',
    labelNames: ['outcome'] as const,
    registers: [metricsRegistry],
  });

  observe(outcomes: Readonly<Record<SpanOutcome, number>>): void {
    for (const [outcome, spans] of Object.entries(outcomes)) if (spans > 0) this.spans.inc({ outcome }, spans);
  }
}
