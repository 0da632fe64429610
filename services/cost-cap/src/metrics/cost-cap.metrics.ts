import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { BatchConsumerMetrics } from '@agentmeter/kafka';
import { metricsRegistry } from '@agentmeter/telemetry';

/**
 * Prometheus metrics of cost-cap. Names are part of the dashboards' contract. Label values are bounded:
 * outcomes, scopes and caps are enums; tenants appear only on the remaining-budget gauge, for at most
 * COST_CAP_METRICS_TENANTS tenants (those with a daily cap closest to it).
 */
@Injectable()
export class CostCapMetrics {
  readonly decisions = new Counter({
    name: 'agentmeter_cost_cap_decisions_total',
    help: 'Admission decisions by outcome (allow, allow_cheaper_model, publish_partial, deny, rebuilding) and the scope that decided (none when nothing limited it; replayed for a repeated idempotency_key, which decides nothing).',
    labelNames: ['outcome', 'scope'] as const,
    registers: [metricsRegistry],
  });
  readonly admissionSeconds = new Histogram({
    name: 'agentmeter_cost_cap_admission_duration_seconds',
    help: 'Time to answer an admission call, by operation (reserve, commit, release).',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [metricsRegistry],
  });
  readonly reservationsOpen = new Gauge({
    name: 'agentmeter_cost_cap_reservations_open',
    help: 'Reservations whose hold counts (open, or expired with the spend not known yet), all replicas.',
    registers: [metricsRegistry],
  });
  readonly reservationsExpired = new Counter({
    name: 'agentmeter_cost_cap_reservations_expired_total',
    help: 'Reservations past their expiry without commit or release (their hold still counts until settled).',
    registers: [metricsRegistry],
  });
  readonly reservationsSettled = new Counter({
    name: 'agentmeter_cost_cap_reservations_settled_total',
    help: 'Reservations settled, by how (committed, released: by the client; event: by its llm_call / external_charge event).',
    labelNames: ['how'] as const,
    registers: [metricsRegistry],
  });
  readonly remainingBudget = new Gauge({
    name: 'agentmeter_cost_cap_tenant_remaining_usd',
    help: "Remaining daily budget of the tenants closest to their cap (today in each tenant's zone).",
    labelNames: ['tenant'] as const,
    registers: [metricsRegistry],
  });
  readonly crossings = new Counter({
    name: 'agentmeter_cost_cap_threshold_crossings_total',
    help: 'Cap crossings claimed by this replica (each crossing is claimed once across replicas).',
    labelNames: ['scope', 'cap', 'threshold'] as const,
    registers: [metricsRegistry],
  });
  readonly spend = new Counter({
    name: 'agentmeter_cost_cap_spend_entries_total',
    help: 'Spend entries offered to the ledger, by origin (commit, event) and outcome (new, duplicate).',
    labelNames: ['origin', 'outcome'] as const,
    registers: [metricsRegistry],
  });
  readonly unpriced = new Counter({
    name: 'agentmeter_cost_cap_unpriced_calls_total',
    help: 'LLM calls accounted without a cost (none provided and no price for the model): tokens only.',
    registers: [metricsRegistry],
  });
  readonly scopeLoads = new Counter({
    name: 'agentmeter_cost_cap_counter_loads_total',
    help: 'Counter keys (one run or tenant-day) loaded from the ledger because Redis lacked them.',
    registers: [metricsRegistry],
  });
  readonly rebuilds = new Counter({
    name: 'agentmeter_cost_cap_counter_rebuilds_total',
    help: 'Rebuilds of the Redis counters from the ledger, by cause (startup, lost).',
    labelNames: ['cause'] as const,
    registers: [metricsRegistry],
  });
  readonly rebuildSeconds = new Histogram({
    name: 'agentmeter_cost_cap_counter_rebuild_duration_seconds',
    help: 'Time to rebuild the Redis counters, lock wait included.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [metricsRegistry],
  });
  readonly published = new Counter({
    name: 'agentmeter_cost_cap_messages_published_total',
    help: 'Outbox messages published to Kafka, by topic (events, control, alerts).',
    labelNames: ['topic'] as const,
    registers: [metricsRegistry],
  });
  readonly batchSeconds = new Histogram({
    name: 'agentmeter_cost_cap_batch_duration_seconds',
    help: 'Time to account one batch of agent.events.v1 and commit its offsets.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metricsRegistry],
  });
  readonly skipped = new Counter({
    name: 'agentmeter_cost_cap_skipped_messages_total',
    help: 'Messages cost-cap could not decode and skipped (ingest dead-letters the same ones), by reason field.',
    labelNames: ['reason'] as const,
    registers: [metricsRegistry],
  });
  readonly lag = new Gauge({
    name: 'agentmeter_cost_cap_consumer_lag',
    help: 'Messages behind the partition high watermark after the last batch.',
    labelNames: ['partition'] as const,
    registers: [metricsRegistry],
  });

  readonly consumerMetrics: BatchConsumerMetrics = {
    onBatch: (_topic, _partition, _size, seconds) => this.batchSeconds.observe(seconds),
    onDeadLetter: (_topic, reason) => this.skipped.inc({ reason }),
    onLag: (_topic, partition, lag) =>
      lag === null
        ? this.lag.remove({ partition: String(partition) })
        : this.lag.set({ partition: String(partition) }, lag),
  };
}
