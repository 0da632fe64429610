import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { tracedProcessor, withJobTrace } from './job-trace';

describe('trace context through BullMQ jobs', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const manager = new AsyncLocalStorageContextManager();

  beforeAll(() => {
    context.setGlobalContextManager(manager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
  });
  afterAll(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  const job = <D>(data: D) => ({ id: 'j-1', name: 'alert-deliver', queueName: 'alert-email', attemptsMade: 0, data });

  it('carries the enqueuing span into the job and runs the job in a child span of it', async () => {
    const producer = provider.getTracer('spec').startSpan('enqueue');
    const data = context.with(trace.setSpan(context.active(), producer), () => withJobTrace({ deliveryId: 'd-1' }));
    producer.end();
    expect(data).toEqual({
      deliveryId: 'd-1',
      trace: { traceparent: `00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01` },
    });

    let inside: string | undefined;
    const result = await tracedProcessor(async (j: ReturnType<typeof job<typeof data>>) => {
      inside = trace.getActiveSpan()?.spanContext().traceId;
      return j.data.deliveryId;
    })(job(data));

    expect(result).toBe('d-1');
    const span = exporter.getFinishedSpans().find((s) => s.name === 'alert-email process')!;
    expect(span.kind).toBe(SpanKind.CONSUMER);
    expect(span.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(inside).toBe(producer.spanContext().traceId);
    expect(span.attributes).toMatchObject({ 'messaging.system': 'bullmq', 'messaging.message.id': 'j-1' });
  });

  it('starts a trace of its own for a job without context, and marks a failure', async () => {
    expect(withJobTrace({ name: 'sweep' }, context.active())).toEqual({ name: 'sweep' });
    const failing = tracedProcessor(async () => {
      throw new Error('smtp down');
    });
    await expect(failing(job({}))).rejects.toThrow('smtp down');
    const [span] = exporter.getFinishedSpans();
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'smtp down' });
  });
});
