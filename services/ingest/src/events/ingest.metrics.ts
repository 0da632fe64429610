import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { BatchConsumerMetrics } from '@agentmeter/kafka';
import { metricsRegistry } from '@agentmeter/telemetry';

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
  readonly batchSeconds = new Histogram({
    name: 'agentmeter_ingest_batch_duration_seconds',
    help: 'Time to decode, store and commit one batch.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metricsRegistry],
  });
  readonly batchSize = new Histogram({
    name: 'agentmeter_ingest_batch_size',
    help: 'Messages per batch.',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [metricsRegistry],
  });
  readonly lag = new Gauge({
    name: 'agentmeter_ingest_consumer_lag',
    help: 'Messages behind the partition high watermark after the last batch.',
    labelNames: ['partition'] as const,
    registers: [metricsRegistry],
  });
  readonly tokens = new Counter({
    name: 'agentmeter_llm_tokens_total',
    help: 'LLM tokens ingested, by model and kind (prompt, completion, cached).',
    labelNames: ['model', 'kind'] as const,
    registers: [metricsRegistry],
  });

  readonly consumerMetrics: BatchConsumerMetrics = {
    onBatch: (_topic, _partition, size, seconds) => {
      this.batchSeconds.observe(seconds);
      this.batchSize.observe(size);
    },
    onDeadLetter: (_topic, reason) => this.deadLettered.inc({ reason }),
    onLag: (_topic, partition, lag) => this.lag.set({ partition: String(partition) }, lag),
  };
}
