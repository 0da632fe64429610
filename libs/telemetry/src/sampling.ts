import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import {
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace';

/** How many new traces a process keeps in full each second, and what share of the rest (docs/observability.md). */
export interface TraceSamplingSettings {
  tracesPerSecond: number;
  ratioAbove: number;
}

/**
 * The decision for a trace this process starts: every trace while fewer than `tracesPerSecond` were started
 * in the last second (a token bucket refilled continuously), a `ratioAbove` share of the rest, chosen by trace
 * id so every process that starts a span of the same trace agrees.
 */
export class VolumeThresholdSampler implements Sampler {
  private tokens: number;
  private refilledAt: number;
  private readonly above: Sampler;

  constructor(
    private readonly settings: TraceSamplingSettings,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = settings.tracesPerSecond;
    this.refilledAt = now();
    this.above = new TraceIdRatioBasedSampler(settings.ratioAbove);
  }

  shouldSample(
    context: Context,
    traceId: string,
    spanName: string,
    spanKind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    const now = this.now();
    const capacity = this.settings.tracesPerSecond;
    this.tokens = Math.min(capacity, this.tokens + ((now - this.refilledAt) / 1_000) * capacity);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    return this.above.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `VolumeThresholdSampler{${this.settings.tracesPerSecond}/s, then ${this.settings.ratioAbove}}`;
  }
}

/** Settings from the environment; defaults keep every trace up to 100 new traces a second, then 10 %. */
export function traceSamplingSettings(env: NodeJS.ProcessEnv): TraceSamplingSettings {
  const number = (name: string, fallback: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || value > max) {
      throw new Error(`${name} must be a number from 0 to ${max}, got "${raw}"`);
    }
    return value;
  };
  return {
    tracesPerSecond: number('TRACES_PER_SECOND', 100, 1_000_000),
    ratioAbove: number('TRACES_RATIO_ABOVE', 0.1, 1),
  };
}

/** Parent-based: a span continues its parent's decision (from HTTP or Kafka headers, or a job's context). */
export function traceSampler(settings: TraceSamplingSettings): Sampler {
  return new ParentBasedSampler({ root: new VolumeThresholdSampler(settings) });
}
