import { addToSketch, sketchCount, sketchQuantile, type SketchBins } from './latency-sketch';

/** The raw value a DDSketch quantile stands for: sorted ascending, index ⌊q × (n − 1)⌋. */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

function sketchOf(values: number[]): SketchBins {
  const bins: SketchBins = {};
  for (const v of values) addToSketch(bins, v);
  return bins;
}

/** Adds bins as SQL's jsonb_counts_add does. */
function merge(a: SketchBins, b: SketchBins): SketchBins {
  const out: SketchBins = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}

describe('latency sketch', () => {
  let seed = 7;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const latencies = Array.from({ length: 5_000 }, () => Math.round(Math.exp(random() * 10))); // 1 ms .. 22 s

  it.each([0.5, 0.9, 0.95, 0.99])('reads quantile %s within 1 %% of the raw value', (q) => {
    const value = sketchQuantile(sketchOf(latencies), q)!;
    expect(Math.abs(value - exact(latencies, q)) / exact(latencies, q)).toBeLessThanOrEqual(0.01);
  });

  it('merges by adding bins: the merge of two halves answers like the sketch of the whole', () => {
    const merged = merge(sketchOf(latencies.slice(0, 2_000)), sketchOf(latencies.slice(2_000)));
    expect(merged).toEqual(sketchOf(latencies));
    expect(sketchCount(merged)).toBe(latencies.length);
  });

  it('counts zero latencies and answers null when empty', () => {
    expect(sketchQuantile(sketchOf([0, 0, 0, 10]), 0.5)).toBe(0);
    expect(sketchQuantile({}, 0.95)).toBeNull();
    expect(sketchQuantile(null, 0.95)).toBeNull();
  });
});
