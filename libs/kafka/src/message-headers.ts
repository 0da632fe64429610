import { type Context, context, propagation } from '@opentelemetry/api';
import type { Message } from 'kafkajs';
import { CONTROL_CONTENT_TYPE, type ControlCommand, controlCommandKey } from '@agentmeter/contracts';

/**
 * The trace context of `ctx` (the active one by default) as Kafka headers: `traceparent`, `tracestate` with
 * the W3C propagator the telemetry SDK installs; nothing when tracing is off. A consumer's batch span links to
 * it (batch-consumer.ts).
 */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/**
 * A command on agent.control.v1 as every publisher sends it (the query API's actions, cost-cap's outbox): keyed
 * by tenant or playbook, JSON, with the trace context of the decision that made it. `trace`: headers captured
 * earlier (an outbox publishes after the request is over), else the active context's.
 */
export function controlMessage(command: ControlCommand, trace: Record<string, string> = traceHeaders()): Message {
  return {
    key: controlCommandKey(command),
    value: JSON.stringify(command),
    headers: { ...trace, 'content-type': CONTROL_CONTENT_TYPE },
  };
}
