/**
 * What a chart draws, as plain data: the pages build these from the server's answers and the lazily loaded
 * ECharts module (echart.tsx) turns them into chart options. Colours are names of the colour scheme's CSS
 * variables (styles.css, overview.css), read when drawing, so light and dark follow prefers-color-scheme.
 */
export type ColourVar =
  | '--chart-1'
  | '--chart-2'
  | '--chart-3'
  | '--chart-4'
  | '--chart-5'
  | '--ok'
  | '--bad'
  | '--run'
  | '--warn'
  | '--muted';

export const SERIES_COLOURS: readonly ColourVar[] = ['--chart-1', '--chart-2', '--chart-3', '--chart-4', '--chart-5'];

export interface BarSpec {
  kind: 'bar';
  categories: string[];
  values: number[];
  /** The label drawn at the end of each bar (value with its unit). */
  labels: string[];
}

export interface LineSpec {
  kind: 'line';
  x: string[];
  series: Array<{ name: string; values: Array<number | null>; colour: ColourVar }>;
  /** Fill under the lines (an area chart). */
  area: boolean;
  format: (value: number) => string;
}

export interface HeatmapSpec {
  kind: 'heatmap';
  x: string[];
  y: string[];
  /** [x index, y index, value]; cells without a value are absent. */
  cells: Array<[number, number, number]>;
  format: (value: number) => string;
  /** Print the values in the cells (small grids only). */
  labels: boolean;
  /** Show every nth x label (1: all). */
  xLabelEvery: number;
}

export interface TimelineSpec {
  kind: 'timeline';
  rows: string[];
  /** Milliseconds since the epoch. */
  from: number;
  to: number;
  spans: Array<{ row: number; start: number; end: number; colour: ColourVar; title: string }>;
  markers: Array<{ row: number; at: number; colour: ColourVar; title: string; place: 'above' | 'below' }>;
}

export type ChartSpec = BarSpec | LineSpec | HeatmapSpec | TimelineSpec;
