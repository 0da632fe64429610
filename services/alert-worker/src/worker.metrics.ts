import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { ALERT_DELIVERY_QUEUES } from '@agentmeter/contracts';
import { metricsRegistry } from '@agentmeter/telemetry';

export interface QueueProbe {
  name: string;
  counts(): Promise<Record<string, number>>;
  /** Milliseconds since the oldest waiting job was added; 0 when none waits. */
  oldestWaitingAgeMs(): Promise<number>;
}

/** Prometheus metrics of alert-worker. Names are part of the dashboards' contract. */
@Injectable()
export class WorkerMetrics {
  private probes: QueueProbe[] = [];

  readonly deliveries = new Counter({
    name: 'agentmeter_alert_deliveries_total',
    help: 'Delivery attempts, by channel and outcome (sent, retry, dead, skipped).',
    labelNames: ['channel', 'outcome'] as const,
    registers: [metricsRegistry],
  });
  readonly attemptSeconds = new Histogram({
    name: 'agentmeter_alert_delivery_attempt_seconds',
    help: 'Time of one delivery attempt (the send), by channel and outcome.',
    labelNames: ['channel', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [metricsRegistry],
  });
  readonly delivered = new Histogram({
    name: 'agentmeter_alert_delivery_latency_seconds',
    help: 'From delivery created (group flushed) to delivered, retries included, by channel.',
    labelNames: ['channel'] as const,
    buckets: [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers: [metricsRegistry],
  });

  constructor() {
    // Every channel and attempt outcome from 0, so rate() and increase() count a series' first delivery too.
    for (const channel of Object.keys(ALERT_DELIVERY_QUEUES)) {
      for (const outcome of ['sent', 'retry', 'dead'] as const) this.deliveries.inc({ channel, outcome }, 0);
    }
    const probes = () => this.probes;
    new Gauge({
      name: 'agentmeter_alert_queue_jobs',
      help: 'Jobs in each alert delivery queue, by state (waiting, delayed, active, failed).',
      labelNames: ['queue', 'state'] as const,
      registers: [metricsRegistry],
      async collect() {
        this.reset();
        for (const probe of probes()) {
          const counts = await probe.counts();
          for (const [state, n] of Object.entries(counts)) this.set({ queue: probe.name, state }, n);
        }
      },
    });
    new Gauge({
      name: 'agentmeter_alert_queue_oldest_age_seconds',
      help: 'Age of the oldest waiting job of each alert delivery queue (0 when none waits).',
      labelNames: ['queue'] as const,
      registers: [metricsRegistry],
      async collect() {
        this.reset();
        for (const probe of probes()) this.set({ queue: probe.name }, (await probe.oldestWaitingAgeMs()) / 1000);
      },
    });
  }

  watch(probes: QueueProbe[]): void {
    this.probes = probes;
  }

  observeAttempt(channel: string, outcome: 'sent' | 'retry' | 'dead', latencyMs: number): void {
    this.deliveries.inc({ channel, outcome });
    this.attemptSeconds.observe({ channel, outcome }, latencyMs / 1000);
  }
}
