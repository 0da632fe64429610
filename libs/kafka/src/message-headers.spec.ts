import { context, propagation, ROOT_CONTEXT, type TextMapPropagator, trace, TraceFlags } from '@opentelemetry/api';
import type { ControlCommand } from '@agentmeter/contracts';
import { controlMessage, traceHeaders } from './message-headers';

/** A W3C-style propagator, as the telemetry SDK installs one (tests run without the SDK). */
const w3c: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const span = trace.getSpanContext(ctx);
    if (span) setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-0${span.traceFlags}`);
  },
  extract: (ctx) => ctx,
  fields: () => ['traceparent'],
};

describe('control messages', () => {
  const command = {
    type: 'block_tenant',
    tenant_id: 'acme',
    cause: 'cap_hit',
  } as unknown as ControlCommand;
  const span = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
  });

  beforeAll(() => propagation.setGlobalPropagator(w3c));
  afterAll(() => propagation.disable());

  it('carry the key, JSON body, content type and trace context of the decision', () => {
    const message = controlMessage(command, traceHeaders(span));
    expect(message).toEqual({
      key: 'acme',
      value: JSON.stringify(command),
      headers: {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        'content-type': 'application/json',
      },
    });
  });

  it('carry the content type alone without a trace', () => {
    expect(traceHeaders(context.active())).toEqual({});
    expect(controlMessage(command).headers).toEqual({ 'content-type': 'application/json' });
  });
});
