import { DDSketch } from '@datadog/sketches-js';

/**
 * Latency percentiles from a mergeable sketch (docs/query.md "Percentiles"). The usage rollups keep, per row, a
 * DDSketch of the calls' latencies (relative accuracy 1 %): its bins, stored sparse as a JSON object
 * `{bin key: count}` (`"z"`: latencies of 0 ms). Bins of the same key add up, so rollups of any days, groups or
 * months merge by summing counts (in SQL, `jsonb_counts_add` / `jsonb_counts_sum`) and stay exact sketches of
 * the union. A quantile read back is within 1 % of the value at that rank of the raw latencies.
 */
const LATENCY_SKETCH_ACCURACY = 0.01;

/** Sparse DDSketch bins: key -> count. */
export type SketchBins = Record<string, number>;

const ZERO = 'z';
const mapping = new DDSketch({ relativeAccuracy: LATENCY_SKETCH_ACCURACY }).mapping;

/** The constants of the bin key, `ceil(log2(v) * multiplier) + offset`, for SQL that bins stored latencies. */
export const LATENCY_SKETCH_KEY = {
  multiplier: (mapping as unknown as { _multiplier: number })._multiplier,
  offset: (mapping as unknown as { _offset: number })._offset,
};

function sketchKey(latencyMs: number): string {
  return latencyMs <= 0 ? ZERO : String(mapping.key(latencyMs));
}

export function addToSketch(bins: SketchBins, latencyMs: number, count = 1): void {
  const key = sketchKey(latencyMs);
  bins[key] = (bins[key] ?? 0) + count;
}

export function sketchCount(bins: SketchBins | null | undefined): number {
  let n = 0;
  for (const count of Object.values(bins ?? {})) n += Number(count);
  return n;
}

/**
 * The latency at quantile `q` (0..1): DDSketch's value at rank q × (n − 1) (rounded down), so within 1 % of the
 * raw latencies sorted ascending at index ⌊q × (n − 1)⌋. Null when the sketch is empty.
 */
export function sketchQuantile(bins: SketchBins | null | undefined, q: number): number | null {
  const sketch = new DDSketch({ relativeAccuracy: LATENCY_SKETCH_ACCURACY });
  for (const [key, raw] of Object.entries(bins ?? {})) {
    const count = Number(raw);
    if (count <= 0) continue;
    sketch.accept(key === ZERO ? 0 : mapping.value(Number(key)), count);
  }
  if (sketch.count === 0) return null;
  return sketch.getValueAtQuantile(q);
}
