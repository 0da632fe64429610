import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { traceSampler, traceSamplingSettings } from './sampling';

let sdk: NodeSDK | undefined;

type SpanProcessors = NonNullable<ConstructorParameters<typeof NodeSDK>[0]>['spanProcessors'];

/** Keeps spans recording (so their context propagates) and sends them nowhere. */
const DROP_SPANS: NonNullable<SpanProcessors>[number] = {
  onStart: () => undefined,
  onEnd: () => undefined,
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/**
 * Starts OpenTelemetry for a service. Must run before anything imports http, pg, ioredis or kafkajs,
 * which is why each service's main.ts imports its telemetry.ts first. Spans are exported over OTLP/HTTP
 * when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise they still propagate trace context (Kafka headers,
 * HTTP) without being exported. OTEL_SDK_DISABLED=true turns it off entirely (the SDK reads it itself).
 * Sampling is parent-based, and a trace this process starts is kept in full up to TRACES_PER_SECOND, then
 * at TRACES_RATIO_ABOVE (docs/observability.md); OTEL_TRACES_SAMPLER, when set, takes over (the SDK reads it).
 */
export function startTracing(serviceName: string, env: NodeJS.ProcessEnv): void {
  if (sdk || env.OTEL_SDK_DISABLED === 'true') return;
  const exporting = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    ...(env.OTEL_TRACES_SAMPLER ? {} : { sampler: traceSampler(traceSamplingSettings(env)) }),
    // Without an exporter, a processor that drops spans: with none at all the SDK installs no tracer provider,
    // and no trace context would propagate (Kafka headers such as control messages' traceparent, HTTP).
    ...(exporting ? { traceExporter: new OTLPTraceExporter() } : { spanProcessors: [DROP_SPANS] }),
    instrumentations: [
      getNodeAutoInstrumentations({
        '@opentelemetry/instrumentation-fs': { enabled: false },
        '@opentelemetry/instrumentation-dns': { enabled: false },
        '@opentelemetry/instrumentation-net': { enabled: false },
      }),
    ],
  });
  sdk.start();
}

/** Ends tracing: the spans still buffered are exported first. */
async function stopTracing(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}

/** A provider of every service: at shutdown (SIGTERM), the buffered spans are exported before the exit. */
@Injectable()
export class TracingShutdown implements OnApplicationShutdown {
  onApplicationShutdown(): Promise<void> {
    return stopTracing();
  }
}
