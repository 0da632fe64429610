import { type Context, context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * Trace context across BullMQ: the producer puts the W3C context of the enqueuing span into the job's data
 * (`trace`: traceparent, tracestate) and the processor runs the job in a span that continues it. Kafka does
 * the same with message headers (libs/kafka). Jobs of a job scheduler carry no context (their data is fixed
 * when the scheduler is upserted): each tick starts a trace of its own.
 */
export interface TracedJobData {
  /** W3C trace context headers of the span that enqueued the job; absent when tracing is off. */
  trace?: Record<string, string>;
}

/** The parts of a BullMQ Job a traced processor reads. */
export interface TracedJob<D extends TracedJobData> {
  id?: string;
  name: string;
  queueName: string;
  attemptsMade: number;
  data: D;
}

const tracer = trace.getTracer('@agentmeter/telemetry/bullmq');

/** `data` with the trace context of `ctx` (the active one by default) added; unchanged when tracing is off. */
export function withJobTrace<D extends object>(data: D, ctx: Context = context.active()): D & TracedJobData {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return Object.keys(carrier).length > 0 ? { ...data, trace: carrier } : data;
}

/**
 * Wraps a BullMQ processor: each job runs in a consumer span (`<queue> process`) whose parent is the span that
 * enqueued it, so its database work and the jobs it enqueues in turn belong to the same trace. A thrown error
 * marks the span failed and is rethrown for BullMQ to retry.
 */
export function tracedProcessor<D extends TracedJobData, J extends TracedJob<D>, R>(
  process: (job: J, token?: string) => Promise<R>,
): (job: J, token?: string) => Promise<R> {
  return (job, token) => {
    const parent = propagation.extract(context.active(), job.data.trace ?? {});
    const span = tracer.startSpan(
      `${job.queueName} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'bullmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': job.queueName,
          'messaging.message.id': job.id ?? '',
          'bullmq.job.name': job.name,
          'bullmq.job.attempt': job.attemptsMade + 1,
        },
      },
      parent,
    );
    return context.with(trace.setSpan(parent, span), async () => {
      try {
        return await process(job, token);
      } catch (error) {
        // BullMQ's DelayedError moves a job back to delayed on purpose: not a failure.
        if (!(error instanceof Error && error.name === 'DelayedError')) {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        }
        throw error;
      } finally {
        span.end();
      }
    });
  };
}
