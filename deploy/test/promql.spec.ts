import { selectorsOf, variableQuerySelectors } from './promql';

describe('selectorsOf', () => {
  it.each([
    ['up', [{ metric: 'up', labels: [] }]],
    ['up{job="agentmeter", service=~"$service"} == 0', [{ metric: 'up', labels: ['job', 'service'] }]],
    [
      'histogram_quantile(0.95, sum by (le, llm_model) (rate(traces_spanmetrics_latency_bucket{span_name=~"x"}[5m]))) * 1000',
      [{ metric: 'traces_spanmetrics_latency_bucket', labels: ['span_name'] }],
    ],
    [
      'agentmeter:lag:sum > 1000 and deriv(agentmeter:lag:sum[10m]) > 0',
      [
        { metric: 'agentmeter:lag:sum', labels: [] },
        { metric: 'agentmeter:lag:sum', labels: [] },
      ],
    ],
    [
      'sum without (instance) (rate(a_total[$__rate_interval])) / on (service) group_left (pod) b offset 5m',
      [
        { metric: 'a_total', labels: [] },
        { metric: 'b', labels: [] },
      ],
    ],
    ['count(ALERTS{alertstate="firing"}) or vector(0)', [{ metric: 'ALERTS', labels: ['alertstate'] }]],
    ['sum(x{a="}{ b=\\"", c!~\'y\'}) by (le)', [{ metric: 'x', labels: ['a', 'c'] }]],
    ['{__name__=~"llm_.*"}', [{ metric: '', labels: ['__name__'] }]],
    ['rate(a_total{job="${source}"}[1m]) # a comment naming not_a_metric', [{ metric: 'a_total', labels: ['job'] }]],
  ])('%s', (expr, expected) => {
    expect(selectorsOf(expr)).toEqual(expected);
  });

  it('refuses unbalanced brackets rather than guessing', () => {
    expect(() => selectorsOf('sum(rate(x[5m])')).not.toThrow(); // parentheses are not tracked
    expect(() => selectorsOf('x{a="b"')).toThrow(/unbalanced/);
  });
});

describe('variableQuerySelectors', () => {
  it('reads label_values(expr, label)', () => {
    expect(variableQuerySelectors('label_values(llm_total_tokens_total{job="$source"}, model)')).toEqual({
      selectors: [{ metric: 'llm_total_tokens_total', labels: ['job'] }],
      label: 'model',
    });
  });

  it('refuses what it does not understand', () => {
    expect(() => variableQuerySelectors('metrics(llm_.*)')).toThrow(/unsupported/);
  });
});
