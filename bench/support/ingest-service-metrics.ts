/**
 * Histograms of a running service, read from its Prometheus endpoint (GET /metrics) as a scraper would:
 * the stages of ingest's batches (libs/kafka's batch stages, ingest's write stages) and the age of records
 * when fetched and committed. Two scrapes subtract to the window between them.
 */

/** One histogram series: cumulative bucket counts by upper bound, sum and count. */
export interface HistogramSeries {
  buckets: Array<[number, number]>;
  sum: number;
  count: number;
}

/** Histogram series by "<metric>{<label>=<value>}" of one label, e.g. "agentmeter_ingest_stage_seconds{stage=write}". */
export type Histograms = Map<string, HistogramSeries>;

/** The histograms of `names` in the text exposition format, one series per value of `label` (other labels summed). */
export function parseHistograms(text: string, names: readonly string[], label: string): Histograms {
  const out: Histograms = new Map();
  const series = (key: string) => {
    let s = out.get(key);
    if (!s) out.set(key, (s = { buckets: [], sum: 0, count: 0 }));
    return s;
  };
  for (const line of text.split('\n')) {
    const match = /^(\w+?)_(bucket|sum|count)(?:\{([^}]*)\})? ([0-9.e+-]+|\+Inf|NaN)$/.exec(line);
    if (!match || !names.includes(match[1]!)) continue;
    const [, name, kind, labelText = '', value] = match;
    const labels = new Map([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const s = series(`${name}{${label}=${labels.get(label) ?? ''}}`);
    const n = Number(value);
    if (kind === 'sum') s.sum += n;
    else if (kind === 'count') s.count += n;
    else {
      const le = labels.get('le') === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.get('le'));
      const bucket = s.buckets.find(([bound]) => bound === le);
      if (bucket) bucket[1] += n;
      else s.buckets.push([le, n]);
    }
  }
  for (const s of out.values()) s.buckets.sort((a, b) => a[0] - b[0]);
  return out;
}

/** What was observed between two scrapes. */
export function histogramDelta(before: Histograms, after: Histograms): Histograms {
  const out: Histograms = new Map();
  for (const [key, b] of after) {
    const a = before.get(key);
    out.set(key, {
      sum: b.sum - (a?.sum ?? 0),
      count: b.count - (a?.count ?? 0),
      buckets: b.buckets.map(([le, n]) => [le, n - (a?.buckets.find(([bound]) => bound === le)?.[1] ?? 0)]),
    });
  }
  return out;
}

/** The bucket bound under which a share q of the observations fell (an upper bound of the quantile). */
export function histogramQuantile(series: HistogramSeries | undefined, q: number): number {
  if (!series || series.count === 0) return Number.NaN;
  const target = q * series.count;
  for (const [le, n] of series.buckets) if (n >= target) return le;
  return Number.POSITIVE_INFINITY;
}

export async function scrapeHistograms(url: string, names: readonly string[], label: string): Promise<Histograms> {
  const response = await fetch(`${url}/metrics`);
  if (!response.ok) throw new Error(`GET ${url}/metrics: ${response.status}`);
  return parseHistograms(await response.text(), names, label);
}
