import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '@agentmeter/telemetry';

/** Prometheus metrics of the alert service. Names are part of the dashboards' contract. */
@Injectable()
export class AlertMetrics {
  readonly fired = new Counter({
    name: 'agentmeter_alerts_fired_total',
    help: 'Alerts that started firing (new, re-armed or threshold changed), by rule.',
    labelNames: ['rule'] as const,
    registers: [metricsRegistry],
  });
  readonly resolved = new Counter({
    name: 'agentmeter_alerts_resolved_total',
    help: 'Alerts that resolved, by rule.',
    labelNames: ['rule'] as const,
    registers: [metricsRegistry],
  });
  readonly muted = new Counter({
    name: 'agentmeter_alerts_muted_total',
    help: 'Notifications recorded but not delivered because a mute or mute timing was in force, by rule.',
    labelNames: ['rule'] as const,
    registers: [metricsRegistry],
  });
  readonly notifications = new Counter({
    name: 'agentmeter_alert_notifications_total',
    help: 'Notifications decided, by rule, kind (firing, repeat, resolved) and outcome (queued, muted).',
    labelNames: ['rule', 'kind', 'outcome'] as const,
    registers: [metricsRegistry],
  });
  readonly mcpBreakers = new Gauge({
    name: 'agentmeter_mcp_circuit_breaker_state',
    help: 'MCP circuit breaker by server as of the last evaluation of usage.mcp_breaker_open: 1 open (for some tenant), 0 closed.',
    labelNames: ['server'] as const,
    registers: [metricsRegistry],
  });
  readonly evaluations = new Histogram({
    name: 'agentmeter_alert_evaluation_duration_seconds',
    help: 'Time to evaluate one time-based rule, by rule and outcome.',
    labelNames: ['rule', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [metricsRegistry],
  });
  readonly deliveriesCreated = new Counter({
    name: 'agentmeter_alert_deliveries_created_total',
    help: 'Deliveries created when groups flush, by channel.',
    labelNames: ['channel'] as const,
    registers: [metricsRegistry],
  });
}
