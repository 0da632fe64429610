import '../overview/overview.css';
import { lazy, type ReactNode, Suspense, useMemo } from 'react';
import { type ChartSpec, type ColourVar, SERIES_COLOURS } from './chart-spec';

/**
 * The console's charts (docs/decisions.md "Console charts are Apache ECharts, loaded lazily"): bars, lines
 * and areas, a heatmap and a timeline, drawn by ECharts from numbers the server already aggregated. ECharts
 * is loaded lazily (echart.tsx), so the first page's download stays small; until it arrives the chart's box
 * keeps its height. Every chart is a figure whose canvas has an accessible name (role img), with the values in a
 * visually hidden table, an HTML legend, and colours from the scheme's CSS variables (light and dark).
 */
const EChart = lazy(() => import('./echart'));

function Canvas({ spec, label, height }: { spec: ChartSpec; label: string; height: number }) {
  return (
    <div className="chart-box" role="img" aria-label={label} style={{ height }}>
      <Suspense fallback={null}>
        <EChart spec={spec} />
      </Suspense>
    </div>
  );
}

export function Legend({ items }: { items: Array<{ name: string; colour: ColourVar; shape?: 'diamond' }> }) {
  return (
    <ul className="legend">
      {items.map((item) => (
        <li key={item.name}>
          <span
            className={`swatch${item.shape === 'diamond' ? ' swatch-diamond' : ''}`}
            style={{ background: `var(${item.colour})` }}
            aria-hidden="true"
          />
          {item.name}
        </li>
      ))}
    </ul>
  );
}

export interface Bar {
  label: string;
  value: number;
  /** The value as shown, with its unit or currency. */
  display: string;
}

/** Horizontal bars, in the order given (largest first), each labelled with its value. */
export function BarChart({ bars, caption }: { bars: Bar[]; caption: string }) {
  const spec = useMemo<ChartSpec>(
    () => ({
      kind: 'bar',
      categories: bars.map((b) => b.label),
      values: bars.map((b) => b.value),
      labels: bars.map((b) => b.display),
    }),
    [bars],
  );
  return (
    <figure className="chart bar-chart">
      <Canvas
        spec={spec}
        label={`${caption}: ${bars.map((b) => `${b.label} ${b.display}`).join('; ')}`}
        height={bars.length * 34 + 12}
      />
      <HiddenTable>
        <caption>{caption}</caption>
        <tbody>
          {bars.map((bar) => (
            <tr key={bar.label} className="bar-row">
              <th scope="row">{bar.label}</th>
              <td>{bar.display}</td>
            </tr>
          ))}
        </tbody>
      </HiddenTable>
    </figure>
  );
}

export interface Series {
  name: string;
  /** One point per x label (null: no value there). */
  values: Array<number | null>;
}

/** Lines (or areas) over days: one per series, a legend when there are several. */
export function LineChart({
  labels,
  series,
  caption,
  format,
  area = false,
  rowHeader = 'Day',
}: {
  labels: string[];
  series: Series[];
  caption: string;
  format: (value: number) => string;
  area?: boolean;
  rowHeader?: string;
}) {
  const coloured = series.map((s, i) => ({ ...s, colour: SERIES_COLOURS[i % SERIES_COLOURS.length]! }));
  const spec = useMemo<ChartSpec>(
    () => ({ kind: 'line', x: labels, series: coloured, area, format }),
    [labels.join(), JSON.stringify(series), area],
  );
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  return (
    <figure className="chart line-chart">
      <Canvas spec={spec} label={`${caption}; highest ${format(max)}`} height={220} />
      {series.length > 1 ? <Legend items={coloured} /> : null}
      <HiddenTable>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{rowHeader}</th>
            {series.map((s) => (
              <th scope="col" key={s.name}>
                {s.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {labels.map((label, i) => (
            <tr key={label}>
              <th scope="row">{label}</th>
              {series.map((s) => (
                <td key={s.name}>{s.values[i] === null || s.values[i] === undefined ? '—' : format(s.values[i]!)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </HiddenTable>
    </figure>
  );
}

/** A heatmap: rows × columns, the darker the larger; the values also in a (hidden) table. */
export function Heatmap({
  rows,
  columns,
  value,
  caption,
  format,
  rowHeader = 'Row',
  columnLabel = (column) => column,
  labelEvery = 1,
}: {
  rows: string[];
  columns: string[];
  value: (row: string, column: string) => number | null;
  caption: string;
  format: (value: number) => string;
  rowHeader?: string;
  columnLabel?: (column: string) => string;
  /** Label every nth column on the axis (dense grids on a phone). */
  labelEvery?: number;
}) {
  const cells: Array<[number, number, number]> = [];
  rows.forEach((r, y) =>
    columns.forEach((c, x) => {
      const v = value(r, c);
      if (v !== null) cells.push([x, y, v]);
    }),
  );
  const key = JSON.stringify([rows, columns, cells]);
  const spec = useMemo<ChartSpec>(
    () => ({
      kind: 'heatmap',
      x: columns.map(columnLabel),
      y: rows,
      cells,
      format,
      labels: rows.length * columns.length <= 60,
      xLabelEvery: labelEvery,
    }),
    [key, labelEvery],
  );
  return (
    <figure className="chart heatmap-chart">
      <Canvas spec={spec} label={caption} height={rows.length * 30 + 40} />
      <HiddenTable className="heatmap">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{rowHeader}</th>
            {columns.map((c) => (
              <th scope="col" key={c}>
                {columnLabel(c)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r}>
              <th scope="row">{r}</th>
              {columns.map((c) => {
                const v = value(r, c);
                return <td key={c}>{v === null ? '—' : format(v)}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </HiddenTable>
    </figure>
  );
}

export interface Span {
  key: string;
  row: string;
  start: number;
  end: number;
  colour: ColourVar;
  /** What the span means, with its numbers (tooltip and table). */
  title: string;
}

export interface Marker {
  key: string;
  row: string;
  at: number;
  colour: ColourVar;
  title: string;
  /** Above the row's spans (default) or below them. */
  place?: 'above' | 'below';
}

/**
 * A timeline: rows (phases, servers) with spans over time and event markers. The hidden table lists the
 * spans unless the caller gives a shorter accessible summary (`table`).
 */
export function TimelineChart({
  rows,
  spans,
  markers = [],
  from,
  to,
  caption,
  legend,
  table,
}: {
  rows: string[];
  spans: Span[];
  markers?: Marker[];
  from?: number;
  to?: number;
  caption: string;
  legend?: Array<{ name: string; colour: ColourVar; shape?: 'diamond' }>;
  /** The accessible data in place of the span list (null: the page shows it next to the chart). */
  table?: ReactNode;
}) {
  const start = from ?? Math.min(...spans.map((s) => s.start), ...markers.map((m) => m.at));
  const end = to ?? Math.max(...spans.map((s) => s.end), ...markers.map((m) => m.at));
  const key = JSON.stringify([rows, spans, markers, start, end]);
  const spec = useMemo<ChartSpec>(
    () => ({
      kind: 'timeline',
      rows,
      from: start,
      to: Math.max(end, start + 1),
      spans: spans.map((s) => ({ ...s, row: rows.indexOf(s.row) })),
      markers: markers.map((m) => ({ ...m, row: rows.indexOf(m.row), place: m.place ?? 'above' })),
    }),
    [key],
  );
  return (
    <figure className="chart timeline-chart">
      <Canvas spec={spec} label={caption} height={rows.length * 36 + 40} />
      {legend ? <Legend items={legend} /> : null}
      {table !== undefined ? (
        table
      ) : (
        <HiddenTable>
          <caption>{caption}</caption>
          <tbody>
            {spans.map((s) => (
              <tr key={s.key} className="span-row">
                <th scope="row">{s.row}</th>
                <td>{s.title}</td>
              </tr>
            ))}
            {markers.map((m) => (
              <tr key={m.key} className="marker-row">
                <th scope="row">{m.row}</th>
                <td>{m.title}</td>
              </tr>
            ))}
          </tbody>
        </HiddenTable>
      )}
    </figure>
  );
}

/**
 * A chart's values as a table for screen readers and tests, visually hidden inside a clipping box: a table is
 * never narrower than its content, so a hidden table on its own would still widen the page on a phone.
 */
function HiddenTable({ className, children }: { className?: string; children: ReactNode }) {
  return (
    <div className="visually-hidden">
      <table className={className}>{children}</table>
    </div>
  );
}
