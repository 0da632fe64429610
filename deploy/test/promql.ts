/**
 * Just enough PromQL to find which series an expression reads: metric names and the label names of their
 * matchers. Not a parser: it skips strings, ranges, comments, functions, aggregations and keywords, and calls
 * every other identifier a metric name. Grafana variables ($x, ${x}, [[x]]) are replaced first.
 */

export interface Selector {
  /** Empty for a bare `{...}` selector, which the dashboards must not use. */
  metric: string;
  labels: string[];
}

const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
/** Keywords followed by a parenthesised list of label names. */
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2', ...LABEL_LIST_KEYWORDS]);

const IDENTIFIER = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL_MATCHER = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g;

export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$\{[^}]*\}|\$\w+|\[\[\w+\]\]/g, '0');
}

export function selectorsOf(expr: string): Selector[] {
  const src = withoutGrafanaVariables(expr);
  const selectors: Selector[] = [];
  let last: Selector | undefined; // the metric the next `{` belongs to
  let i = 0;

  const skipString = (at: number): number => {
    const quote = src[at];
    let j = at + 1;
    while (j < src.length && src[j] !== quote) j += src[j] === '\\' ? 2 : 1;
    return j + 1;
  };
  /** Index after the bracket that closes the one at `at`, skipping strings. */
  const skipBlock = (at: number, open: string, close: string): number => {
    let depth = 0;
    let j = at;
    while (j < src.length) {
      const c = src[j]!;
      if (c === '"' || c === "'" || c === '`') {
        j = skipString(j);
        continue;
      }
      if (c === open) depth++;
      if (c === close && --depth === 0) return j + 1;
      j++;
    }
    throw new Error(`unbalanced ${open} in ${expr}`);
  };
  const nextNonSpace = (at: number): number => {
    let j = at;
    while (j < src.length && /\s/.test(src[j]!)) j++;
    return j;
  };

  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      i = skipString(i);
      last = undefined;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '[') {
      i = skipBlock(i, '[', ']');
    } else if (c === '{') {
      const end = skipBlock(i, '{', '}');
      const body = src.slice(i + 1, end - 1).replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
      const labels = [...body.matchAll(LABEL_MATCHER)].map((m) => m[1]!);
      if (last) last.labels.push(...labels);
      else selectors.push({ metric: '', labels });
      last = undefined;
      i = end;
    } else if (/[0-9.]/.test(c)) {
      i++;
      while (i < src.length && /[0-9a-zA-Z._]/.test(src[i]!)) i++; // 0.95, 1e6, 5m
      last = undefined;
    } else if (/[a-zA-Z_:]/.test(c)) {
      IDENTIFIER.lastIndex = i;
      const word = IDENTIFIER.exec(src)![0];
      i += word.length;
      const next = nextNonSpace(i);
      last = undefined;
      if (LABEL_LIST_KEYWORDS.has(word) && src[next] === '(') {
        i = skipBlock(next, '(', ')');
      } else if (KEYWORDS.has(word) || AGGREGATIONS.has(word) || src[next] === '(') {
        // an operator, an aggregation (`sum by (le) (...)`) or a function call: not a series
      } else {
        last = { metric: word, labels: [] };
        selectors.push(last);
      }
    } else {
      i++;
      last = undefined;
    }
  }
  return selectors;
}

/** A Grafana Prometheus variable query: `label_values(<expr>, <label>)` or `query_result(<expr>)`. */
export function variableQuerySelectors(query: string): { selectors: Selector[]; label?: string } {
  const labelValues = /^\s*label_values\(\s*([\s\S]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  if (labelValues) return { selectors: selectorsOf(labelValues[1]!), label: labelValues[2]! };
  const result = /^\s*query_result\(([\s\S]*)\)\s*$/.exec(query);
  if (result) return { selectors: selectorsOf(result[1]!) };
  throw new Error(`unsupported variable query: ${query}`);
}
