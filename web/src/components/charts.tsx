import '../overview/overview.css';
import type { ReactNode } from 'react';

/**
 * The console's charts (docs/decisions.md "Console charts"): bars, lines, a heatmap and a timeline drawn as
 * SVG and tables from numbers the server already aggregated. Each chart has a text alternative (a caption
 * and the values as accessible names or a table), uses the colour scheme's CSS variables, and scales to the
 * width of its panel (viewBox), so it works at 390 px and in light and dark.
 */

export interface Bar {
  label: string;
  value: number;
  /** The value as shown, with its unit or currency. */
  display: string;
}

/** Horizontal bars, largest first as given: labels left, values right, usable on a phone. */
export function BarChart({ bars, caption }: { bars: Bar[]; caption: string }) {
  const max = Math.max(0, ...bars.map((b) => b.value));
  return (
    <figure className="chart bar-chart">
      <figcaption className="visually-hidden">{caption}</figcaption>
      <ul className="bars">
        {bars.map((bar) => (
          <li key={bar.label} className="bar-row">
            <span className="bar-label">{bar.label}</span>
            <span className="bar-track" aria-hidden="true">
              <span className="bar-fill" style={{ width: `${max > 0 ? (bar.value / max) * 100 : 0}%` }} />
            </span>
            <span className="bar-value num">{bar.display}</span>
          </li>
        ))}
      </ul>
    </figure>
  );
}

export interface Series {
  name: string;
  /** One point per x label (null: no value that day). */
  values: Array<number | null>;
}

const PALETTE = ['var(--chart-1)', 'var(--chart-2)', 'var(--chart-3)', 'var(--chart-4)', 'var(--chart-5)'];

/** Lines over days: one line per series, x labels under the first and last point, a legend, the max on the axis. */
export function LineChart({
  labels,
  series,
  caption,
  format,
}: {
  labels: string[];
  series: Series[];
  caption: string;
  format: (value: number) => string;
}) {
  // Drawn in a 640 × 200 box stretched to the panel (lines keep their width); labels are HTML, so they
  // keep their size on a phone and on a wide screen.
  const width = 640;
  const height = 200;
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const x = (i: number) => (labels.length <= 1 ? 0 : (i / (labels.length - 1)) * width);
  const y = (v: number) => height - 4 - (max > 0 ? (v / max) * (height - 8) : 0);
  return (
    <figure className="chart line-chart">
      <p className="axis-label" aria-hidden="true">
        {format(max)}
      </p>
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${caption}; highest ${format(max)}`}
      >
        <line className="grid-line" x1={0} x2={width} y1={y(max)} y2={y(max)} vectorEffect="non-scaling-stroke" />
        <line className="axis" x1={0} x2={width} y1={y(0)} y2={y(0)} vectorEffect="non-scaling-stroke" />
        {series.map((s, index) => {
          const points = s.values
            .map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
            .filter((p): p is string => p !== null)
            .join(' ');
          return (
            <polyline
              key={s.name}
              points={points}
              fill="none"
              stroke={PALETTE[index % PALETTE.length]}
              strokeWidth={2.5}
              vectorEffect="non-scaling-stroke"
            />
          );
        })}
      </svg>
      {labels.length > 0 ? (
        <p className="axis-label axis-x" aria-hidden="true">
          <span>{labels[0]}</span>
          <span>{labels[labels.length - 1]}</span>
        </p>
      ) : null}
      {series.length > 1 ? <Legend names={series.map((s) => s.name)} /> : null}
      <figcaption className="visually-hidden">{caption}</figcaption>
    </figure>
  );
}

export function Legend({ names }: { names: string[] }) {
  return (
    <ul className="legend">
      {names.map((name, index) => (
        <li key={name}>
          <span className="swatch" style={{ background: PALETTE[index % PALETTE.length] }} aria-hidden="true" />
          {name}
        </li>
      ))}
    </ul>
  );
}

/**
 * A heatmap as a table: rows × columns, each cell's colour from its value (the value is in the cell as text,
 * so it is read out and never colour-only).
 */
export function Heatmap({
  rows,
  columns,
  value,
  caption,
  format,
  rowHeader = 'Row',
  columnLabel = (column) => column,
}: {
  rows: string[];
  columns: string[];
  value: (row: string, column: string) => number | null;
  caption: string;
  format: (value: number) => string;
  rowHeader?: string;
  columnLabel?: (column: string) => string;
}) {
  const max = Math.max(0, ...rows.flatMap((r) => columns.map((c) => value(r, c) ?? 0)));
  return (
    // Focusable, so that keyboard users can scroll a wide heatmap on a phone.
    <div className="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table className="heatmap">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{rowHeader}</th>
            {columns.map((c) => (
              <th scope="col" key={c} className="num">
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
                const level = v === null || max === 0 ? 0 : Math.ceil((v / max) * 4);
                return (
                  <td key={c} className={`num heat heat-${level}`}>
                    {v === null ? '—' : format(v)}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export interface Span {
  key: string;
  label: ReactNode;
  start: number;
  end: number;
  status: string;
  title: string;
}

/** A timeline: one row per span, placed between the earliest start and the latest end. */
export function TimelineChart({ spans, caption }: { spans: Span[]; caption: string }) {
  const from = Math.min(...spans.map((s) => s.start));
  const to = Math.max(...spans.map((s) => s.end));
  const total = Math.max(1, to - from);
  return (
    <figure className="chart timeline-chart">
      <figcaption className="visually-hidden">{caption}</figcaption>
      <ol className="spans">
        {spans.map((s) => (
          <li key={s.key} className="span-row">
            <span className="span-label">{s.label}</span>
            <span className="span-track">
              <span
                className={`span-fill status-${s.status}`}
                style={{
                  left: `${((s.start - from) / total) * 100}%`,
                  width: `${Math.max(1, ((s.end - s.start) / total) * 100)}%`,
                }}
                title={s.title}
              />
            </span>
            <span className="span-value">{s.title}</span>
          </li>
        ))}
      </ol>
    </figure>
  );
}
