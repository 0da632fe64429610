import { useEffect, useRef, useState } from 'react';
import type { CustomSeriesRenderItemAPI, CustomSeriesRenderItemParams } from 'echarts';
import { BarChart, CustomChart, HeatmapChart, LineChart, ScatterChart } from 'echarts/charts';
import { GridComponent, TooltipComponent, VisualMapComponent } from 'echarts/components';
import { type ECharts, type EChartsCoreOption, graphic, init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import type { BarSpec, ChartSpec, ColourVar, HeatmapSpec, LineSpec, TimelineSpec } from './chart-spec';

// Only what the console draws (docs/decisions.md "Console charts are Apache ECharts, loaded lazily"): this
// module is loaded lazily by components/charts.tsx, so none of it is in the first page's download.
use([
  BarChart,
  LineChart,
  HeatmapChart,
  CustomChart,
  ScatterChart,
  GridComponent,
  TooltipComponent,
  VisualMapComponent,
  CanvasRenderer,
]);

const DARK = '(prefers-color-scheme: dark)';
const REDUCED_MOTION = '(prefers-reduced-motion: reduce)';

/** The colour scheme's values, read from the CSS variables when drawing. */
interface Theme {
  colour: (name: ColourVar) => string;
  text: string;
  muted: string;
  border: string;
  surface: string;
  accent: string;
  font: string;
}

function themeOf(element: Element): Theme {
  const style = getComputedStyle(element);
  const read = (name: string) => style.getPropertyValue(name).trim();
  return {
    colour: (name) => read(name),
    text: read('--text'),
    muted: read('--muted'),
    border: read('--border'),
    surface: read('--surface'),
    accent: read('--accent'),
    font: style.fontFamily,
  };
}

/** Changes when the colour scheme or the motion preference changes, so the chart redraws. */
function useMediaVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const queries = [DARK, REDUCED_MOTION].map((q) => window.matchMedia(q));
    const bump = () => setVersion((v) => v + 1);
    for (const q of queries) q.addEventListener('change', bump);
    return () => {
      for (const q of queries) q.removeEventListener('change', bump);
    };
  }, []);
  return version;
}

/**
 * One ECharts canvas filling its box (its height comes from the caller's CSS), resized with it. When a
 * drawing is done the element carries `data-drawn` with the scheme drawn ("light"/"dark"), for screenshots.
 */
export default function EChart({ spec }: { spec: ChartSpec }) {
  const ref = useRef<HTMLDivElement>(null);
  const chart = useRef<ECharts | null>(null);
  const media = useMediaVersion();
  // The options depend on the width (room for the bar labels), so a new width draws them again.
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const element = ref.current!;
    chart.current = init(element, null, { renderer: 'canvas' });
    const observer = new ResizeObserver((entries) => {
      // Redrawn at the new size: `data-drawn` comes back when the drawing is done.
      element.removeAttribute('data-drawn');
      chart.current?.resize();
      setWidth(Math.round(entries[0]?.contentRect.width ?? 0));
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    if (width === 0) return; // the first size report comes right after mounting
    const element = ref.current!;
    const instance = chart.current!;
    const scheme = window.matchMedia(DARK).matches ? 'dark' : 'light';
    const animation = !window.matchMedia(REDUCED_MOTION).matches;
    element.removeAttribute('data-drawn');
    const drawn = () => element.setAttribute('data-drawn', scheme);
    instance.on('finished', drawn);
    instance.setOption({ animation, ...optionOf(spec, themeOf(element), width) }, { notMerge: true });
    return () => {
      instance.off('finished', drawn);
    };
  }, [spec, media, width]);
  return <div ref={ref} className="chart-canvas" />;
}

function optionOf(spec: ChartSpec, theme: Theme, width: number): EChartsCoreOption {
  const base = {
    textStyle: { fontFamily: theme.font, color: theme.text },
    tooltip: {
      confine: true,
      backgroundColor: theme.surface,
      borderColor: theme.border,
      textStyle: { color: theme.text, fontFamily: theme.font },
    },
  };
  const own =
    spec.kind === 'bar'
      ? barOption(spec, theme, width)
      : spec.kind === 'line'
        ? lineOption(spec, theme)
        : spec.kind === 'heatmap'
          ? heatmapOption(spec, theme)
          : timelineOption(spec, theme);
  return { ...base, ...own, tooltip: { ...base.tooltip, ...(own.tooltip as object) } };
}

function axisStyle(theme: Theme) {
  return {
    axisLine: { lineStyle: { color: theme.border } },
    axisTick: { lineStyle: { color: theme.border } },
    axisLabel: { color: theme.muted, hideOverlap: true },
    splitLine: { lineStyle: { color: theme.border, type: 'dashed' as const } },
  };
}

/**
 * Horizontal bars, the first category on top, each labelled with its value at its end. Category names get up
 * to a third of the width (cut with "…" past it; the data table has them whole).
 */
function barOption(spec: BarSpec, theme: Theme, width: number): EChartsCoreOption {
  const longest = Math.max(0, ...spec.labels.map((l) => l.length));
  const longestName = Math.max(0, ...spec.categories.map((c) => c.length));
  const nameWidth = Math.max(60, Math.min(longestName * 7.5, (width || 320) / 3));
  return {
    grid: { left: 8, right: Math.min(200, 16 + longest * 7), top: 4, bottom: 4, containLabel: true },
    xAxis: { type: 'value', show: false },
    yAxis: {
      type: 'category',
      inverse: true,
      data: spec.categories,
      ...axisStyle(theme),
      axisLabel: { color: theme.text, width: nameWidth, overflow: 'truncate' },
    },
    tooltip: {
      trigger: 'item',
      formatter: (p: { dataIndex: number }) => tooltipText(spec.categories[p.dataIndex], spec.labels[p.dataIndex]),
    },
    series: [
      {
        type: 'bar',
        data: spec.values,
        barMaxWidth: 22,
        itemStyle: { color: theme.colour('--chart-1'), borderRadius: [0, 3, 3, 0] },
        label: {
          show: true,
          position: 'right',
          color: theme.muted,
          formatter: (p: { dataIndex: number }) => spec.labels[p.dataIndex] ?? '',
        },
      },
    ],
  };
}

function lineOption(spec: LineSpec, theme: Theme): EChartsCoreOption {
  return {
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
    tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => (typeof v === 'number' ? spec.format(v) : '—') },
    xAxis: {
      type: 'category',
      boundaryGap: false,
      data: spec.x,
      ...axisStyle(theme),
      axisLabel: { color: theme.muted, hideOverlap: true, formatter: (d: string) => shortDay(d) },
    },
    yAxis: {
      type: 'value',
      min: 0,
      ...axisStyle(theme),
      axisLabel: { color: theme.muted, formatter: (v: number) => spec.format(v) },
    },
    series: spec.series.map((s) => ({
      type: 'line',
      name: s.name,
      data: s.values,
      connectNulls: false,
      // Points stay visible on a month (a day between two empty days has no line to show it).
      showSymbol: spec.x.length <= 31,
      symbolSize: 5,
      lineStyle: { width: 2.5, color: theme.colour(s.colour) },
      itemStyle: { color: theme.colour(s.colour) },
      ...(spec.area ? { areaStyle: { color: theme.colour(s.colour), opacity: 0.15 } } : {}),
    })),
  };
}

function heatmapOption(spec: HeatmapSpec, theme: Theme): EChartsCoreOption {
  const max = Math.max(1, ...spec.cells.map((c) => c[2]));
  return {
    grid: { left: 8, right: 8, top: 8, bottom: 8, containLabel: true },
    tooltip: {
      trigger: 'item',
      formatter: (p: { value: [number, number, number] }) =>
        tooltipText(`${spec.y[p.value[1]]} · ${spec.x[p.value[0]]}`, spec.format(p.value[2])),
    },
    xAxis: {
      type: 'category',
      data: spec.x,
      splitArea: { show: false },
      ...axisStyle(theme),
      axisLabel: { color: theme.muted, interval: spec.xLabelEvery > 1 ? spec.xLabelEvery - 1 : 'auto' },
    },
    yAxis: { type: 'category', data: spec.y, inverse: true, ...axisStyle(theme), axisLabel: { color: theme.text } },
    visualMap: {
      show: false,
      min: 0,
      max,
      inRange: { color: [mix(theme.accent, theme.surface, 0.12), theme.accent] },
    },
    series: [
      {
        type: 'heatmap',
        // A dark cell gets the light label and a light cell the dark one, in either scheme.
        data: spec.cells.map((cell) => ({
          value: cell,
          label: { color: cell[2] / max > 0.5 ? theme.surface : theme.text },
        })),
        itemStyle: { borderColor: theme.surface, borderWidth: 1 },
        label: { show: spec.labels, formatter: (p: { value: [number, number, number] }) => spec.format(p.value[2]) },
      },
    ],
  };
}

/** Spans per row over time (a custom series), and markers (events) as diamonds on their row. */
function timelineOption(spec: TimelineSpec, theme: Theme): EChartsCoreOption {
  return {
    grid: { left: 8, right: 16, top: 8, bottom: 8, containLabel: true },
    tooltip: {
      trigger: 'item',
      formatter: (p: { seriesIndex: number; dataIndex: number }) =>
        p.seriesIndex === 0
          ? tooltipText(spec.rows[spec.spans[p.dataIndex]!.row], spec.spans[p.dataIndex]!.title)
          : tooltipText(spec.rows[spec.markers[p.dataIndex]!.row], spec.markers[p.dataIndex]!.title),
    },
    xAxis: {
      type: 'time',
      min: spec.from,
      max: spec.to,
      ...axisStyle(theme),
      axisLabel: {
        color: theme.muted,
        hideOverlap: true,
        formatter: { year: '{yyyy}', month: '{MM}-{dd}', day: '{MM}-{dd}', hour: '{HH}:{mm}', minute: '{HH}:{mm}' },
      },
    },
    yAxis: { type: 'category', data: spec.rows, inverse: true, ...axisStyle(theme), axisLabel: { color: theme.text } },
    series: [
      {
        type: 'custom',
        encode: { x: [1, 2], y: 0 },
        renderItem: (params: CustomSeriesRenderItemParams, api: CustomSeriesRenderItemAPI) => {
          const row = api.value(0);
          const start = api.coord([api.value(1), row]);
          const end = api.coord([api.value(2), row]);
          const height = (api.size!([0, 1]) as number[])[1]! * 0.55;
          const box = params.coordSys as unknown as { x: number; y: number; width: number; height: number };
          const shape = graphic.clipRectByRect(
            { x: start[0]!, y: start[1]! - height / 2, width: Math.max(2, end[0]! - start[0]!), height },
            { x: box.x, y: box.y, width: box.width, height: box.height },
          );
          return shape ? { type: 'rect', shape: { ...shape, r: 2 }, style: { fill: api.visual('color') } } : null;
        },
        data: spec.spans.map((s) => ({
          value: [s.row, s.start, s.end],
          itemStyle: { color: theme.colour(s.colour) },
        })),
      },
      {
        type: 'scatter',
        symbol: 'diamond',
        symbolSize: 14,
        z: 3,
        // Above or below the row's spans, so that an opening and a closing minutes apart stay apart.
        data: spec.markers.map((m) => ({
          value: [m.at, m.row],
          symbolOffset: [0, m.place === 'above' ? -9 : 9],
          itemStyle: { color: theme.colour(m.colour), borderColor: theme.surface, borderWidth: 1.5 },
        })),
      },
    ],
  };
}

function tooltipText(title: string | undefined, value: string | undefined): string {
  return `${escape(title ?? '')}<br><strong>${escape(value ?? '')}</strong>`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "2026-12-07" → "12-07" (the axis has the room of a phone). */
function shortDay(day: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? day.slice(5) : day;
}

/** `share` of colour a over b, as an rgb() colour (for the heatmap's lightest cell). */
function mix(a: string, b: string, share: number): string {
  const [ra, ga, ba] = rgbOf(a);
  const [rb, gb, bb] = rgbOf(b);
  const at = (x: number, y: number) => Math.round(x * share + y * (1 - share));
  return `rgb(${at(ra, rb)}, ${at(ga, gb)}, ${at(ba, bb)})`;
}

function rgbOf(colour: string): [number, number, number] {
  const hex = /^#([0-9a-f]{6})$/i.exec(colour)?.[1];
  if (!hex) return [128, 128, 128];
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}
