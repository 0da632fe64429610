import { randomBytes } from 'node:crypto';
import { context, SpanKind } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace';
import { traceSamplingSettings, VolumeThresholdSampler } from './sampling';

describe('trace sampling above a volume threshold', () => {
  const decide = (sampler: VolumeThresholdSampler, traceId: string) =>
    sampler.shouldSample(context.active(), traceId, 'span', SpanKind.SERVER, {}, []).decision;
  const traceIds = (n: number) => Array.from({ length: n }, (_, i) => (i + 1).toString(16).padStart(32, 'a'));

  it('keeps every trace up to the threshold, then the ratio of the rest, and refills with time', () => {
    let now = 0;
    const sampler = new VolumeThresholdSampler({ tracesPerSecond: 10, ratioAbove: 0 }, () => now);
    const first = traceIds(15).map((id) => decide(sampler, id));
    expect(first.filter((d) => d === SamplingDecision.RECORD_AND_SAMPLED)).toHaveLength(10);
    expect(first.slice(10)).toEqual(Array(5).fill(SamplingDecision.NOT_RECORD));
    now += 500; // half a second: five more
    const later = traceIds(8).map((id) => decide(sampler, id));
    expect(later.filter((d) => d === SamplingDecision.RECORD_AND_SAMPLED)).toHaveLength(5);
  });

  it('above the threshold decides by trace id, so every process agrees on a trace', () => {
    const a = new VolumeThresholdSampler({ tracesPerSecond: 0, ratioAbove: 0.5 }, () => 0);
    const b = new VolumeThresholdSampler({ tracesPerSecond: 0, ratioAbove: 0.5 }, () => 0);
    const ids = Array.from({ length: 200 }, () => randomBytes(16).toString('hex'));
    const decisionsA = ids.map((id) => decide(a, id));
    expect(ids.map((id) => decide(b, id))).toEqual(decisionsA);
    const kept = decisionsA.filter((d) => d === SamplingDecision.RECORD_AND_SAMPLED).length;
    expect(kept).toBeGreaterThan(60);
    expect(kept).toBeLessThan(140);
  });

  it('reads its settings from the environment and refuses nonsense', () => {
    expect(traceSamplingSettings({})).toEqual({ tracesPerSecond: 100, ratioAbove: 0.1 });
    expect(traceSamplingSettings({ TRACES_PER_SECOND: '5', TRACES_RATIO_ABOVE: '1' })).toEqual({
      tracesPerSecond: 5,
      ratioAbove: 1,
    });
    expect(() => traceSamplingSettings({ TRACES_RATIO_ABOVE: '2' })).toThrow(/TRACES_RATIO_ABOVE/);
    expect(() => traceSamplingSettings({ TRACES_PER_SECOND: 'many' })).toThrow(/TRACES_PER_SECOND/);
  });
});
