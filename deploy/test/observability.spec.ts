import { collectDefaultMetrics, Registry } from 'prom-client';
import { loadConfig } from '../../services/query/src/config';
import { LinksService } from '../../services/query/src/links/links.service';
import { TOKEN_INSTRUMENTS, prometheusNameOf } from '../../tools/src/verify-telemetry';
import { selectorsOf, variableQuerySelectors, type Selector } from './promql';
import {
  filesUnder,
  metricDefinitions,
  migrationTables,
  read,
  readYaml,
  seriesOf,
  serviceConfigs,
  tablesOf,
} from './repository';

/**
 * The dashboards and alert rules in deploy/observability query only what exists: series our services expose
 * (prom-client definitions in the TypeScript sources and prom-client's default metrics), series the stack
 * generates (collector `llm` namespace, Tempo's metrics generator, Prometheus itself, our recording rules), tables
 * the migrations create, datasources and variables that are provisioned. A renamed metric or label fails here
 * instead of leaving an empty panel or an alert that can never fire.
 */

const OBS = 'deploy/observability';
const DASHBOARDS = `${OBS}/grafana/dashboards`;

type Labels = Set<string> | 'any';
interface Exposed {
  labels: Labels;
  by: string[];
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}
interface TempoConfig {
  metrics_generator: { processor: { span_metrics: { dimensions: string[] } } };
  overrides: { defaults: { metrics_generator: { processors: string[] } } };
}
interface ExplorePane {
  datasource: string;
  queries: Array<Record<string, unknown>>;
}
interface Datasources {
  datasources: Array<{ uid: string; type: string }>;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Array<{ datasource?: { type?: string; uid?: string }; expr?: string; rawSql?: string; query?: string }>;
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  datasource?: { type?: string; uid?: string };
  query?: string | { query: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const ruleFiles = filesUnder(`${OBS}/rules`, (name) => name.endsWith('.rules.yml'));
const rules = ruleFiles.flatMap((file) => readYaml<RuleFile>(file).groups.flatMap((g) => g.rules));
const dashboardFiles = filesUnder(DASHBOARDS, (name) => name.endsWith('.json'));
const dashboards = dashboardFiles.map((file) => ({ file, json: JSON.parse(read(file)) as Dashboard }));

function add(catalogue: Map<string, Exposed>, name: string, labels: Labels, by: string): void {
  const known = catalogue.get(name);
  if (!known) catalogue.set(name, { labels: labels === 'any' ? 'any' : new Set(labels), by: [by] });
  else {
    known.by.push(by);
    if (known.labels !== 'any') known.labels = labels === 'any' ? 'any' : new Set([...known.labels, ...labels]);
  }
}

/** Every series name a query may use, with the labels it carries ('any' where we do not control them). */
async function exposedCatalogue(): Promise<Map<string, Exposed>> {
  const catalogue = new Map<string, Exposed>();
  // Target labels Prometheus adds (prometheus.yml), and the `service` default label of libs/telemetry initMetrics.
  const scrapeLabels = ['job', 'instance', 'service'];

  for (const def of metricDefinitions()) {
    for (const [series, extra] of seriesOf(def.name, def.type)) {
      add(catalogue, series, new Set([...def.labelNames, ...extra, ...scrapeLabels]), def.file);
    }
  }

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const metric of await registry.getMetricsAsJSON()) {
    // At run time `type` is 'counter', 'histogram', ...; prom-client's typings declare a numeric enum.
    const type = String(metric.type as unknown);
    for (const [series] of seriesOf(metric.name, type)) add(catalogue, series, 'any', 'prom-client defaults');
  }

  for (const series of ['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'ALERTS', 'ALERTS_FOR_STATE']) {
    add(catalogue, series, 'any', 'Prometheus');
  }

  // The collector's prometheus exporter (namespace llm) for the instruments of the LLM contract; labels come from
  // OTLP attributes and resources, which we do not control.
  for (const instrument of TOKEN_INSTRUMENTS) add(catalogue, prometheusNameOf(instrument), 'any', 'otel-collector');

  const tempo = readYaml<TempoConfig>(`${OBS}/tempo.yaml`);
  const processors = tempo.overrides.defaults.metrics_generator.processors;
  if (processors.includes('span-metrics')) {
    const dimensions = tempo.metrics_generator.processor.span_metrics.dimensions.map((d) => d.replace(/\./g, '_'));
    const labels = ['service', 'span_name', 'span_kind', 'status_code', 'status_message', 'job', 'instance', 'source'];
    const spanLabels = new Set([...labels, ...dimensions]);
    add(catalogue, 'traces_spanmetrics_calls_total', spanLabels, 'tempo span-metrics');
    add(catalogue, 'traces_spanmetrics_size_total', spanLabels, 'tempo span-metrics');
    for (const [series, extra] of seriesOf('traces_spanmetrics_latency', 'histogram')) {
      add(catalogue, series, new Set([...spanLabels, ...extra]), 'tempo span-metrics');
    }
  }
  if (processors.includes('service-graphs')) {
    for (const name of ['request_total', 'request_failed_total', 'unpaired_spans_total', 'dropped_spans_total']) {
      add(catalogue, `traces_service_graph_${name}`, 'any', 'tempo service-graphs');
    }
    for (const name of ['request_server_seconds', 'request_client_seconds']) {
      for (const [series] of seriesOf(`traces_service_graph_${name}`, 'histogram')) {
        add(catalogue, series, 'any', 'tempo service-graphs');
      }
    }
  }

  for (const rule of rules) if (rule.record) add(catalogue, rule.record, 'any', 'recording rule');
  return catalogue;
}

function problemsOf(where: string, selectors: Selector[], catalogue: Map<string, Exposed>): string[] {
  return selectors.flatMap(({ metric, labels }) => {
    if (!metric) return [`${where}: a selector without a metric name`];
    const exposed = catalogue.get(metric);
    if (!exposed) return [`${where}: ${metric} is not exposed by anything we run`];
    if (exposed.labels === 'any') return [];
    const known = exposed.labels;
    return labels.filter((l) => !known.has(l)).map((l) => `${where}: ${metric} has no label ${l}`);
  });
}

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

function targetsOf(dashboard: Dashboard): Array<{ where: string; type: string; uid: string; text: string }> {
  return panelsOf(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? []).map((target) => {
      const ds = target.datasource ?? panel.datasource ?? {};
      return {
        where: `${dashboard.uid} / ${panel.title}`,
        type: ds.type ?? '',
        uid: ds.uid ?? '',
        text: target.expr ?? target.rawSql ?? target.query ?? '',
      };
    }),
  );
}

const variableQuery = (v: Variable): string => (typeof v.query === 'string' ? v.query : (v.query?.query ?? ''));

describe('PromQL in dashboards and rules', () => {
  let catalogue: Map<string, Exposed>;
  beforeAll(async () => {
    catalogue = await exposedCatalogue();
  });

  it('finds the metrics the services define (sanity check of the source scan)', () => {
    for (const name of ['agentmeter_ingest_events_total', 'agentmeter_ingest_batch_duration_seconds_bucket']) {
      expect(catalogue.get(name)?.by[0]).toMatch(/^services\//);
    }
    expect(catalogue.has('process_cpu_seconds_total')).toBe(true);
    expect(catalogue.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('rules query only exposed series and labels', () => {
    expect(rules.length).toBeGreaterThan(0);
    const problems = rules.flatMap((r) => problemsOf(r.alert ?? r.record!, selectorsOf(r.expr), catalogue));
    expect(problems).toEqual([]);
  });

  it('dashboards query only exposed series and labels', () => {
    const problems = dashboards.flatMap(({ json }) => [
      ...targetsOf(json)
        .filter((t) => t.type === 'prometheus')
        .flatMap((t) => problemsOf(t.where, selectorsOf(t.text), catalogue)),
      ...json.templating.list
        .filter((v) => v.type === 'query' && v.datasource?.type === 'prometheus')
        .flatMap((v) => {
          const { selectors, label } = variableQuerySelectors(variableQuery(v));
          const where = `${json.uid} / $${v.name}`;
          return problemsOf(
            where,
            label ? selectors.map((s) => ({ ...s, labels: [...s.labels, label] })) : selectors,
            catalogue,
          );
        }),
    ]);
    expect(problems).toEqual([]);
  });

  it('has Prometheus queries in every dashboard but the run dashboard', () => {
    for (const { json } of dashboards.filter((d) => d.json.uid !== 'agentmeter-run')) {
      expect(targetsOf(json).filter((t) => t.type === 'prometheus').length).toBeGreaterThan(0);
    }
  });
});

describe('SQL in dashboards', () => {
  it('reads only tables the migrations create', () => {
    const tables = migrationTables();
    expect(tables.has('usage_daily')).toBe(true);
    const problems = dashboards.flatMap(({ json }) => [
      ...targetsOf(json)
        .filter((t) => t.type === 'grafana-postgresql-datasource')
        .flatMap((t) =>
          tablesOf(t.text).flatMap((table) => (tables.has(table) ? [] : [`${t.where}: no table ${table}`])),
        ),
      ...json.templating.list
        .filter((v) => v.datasource?.type === 'grafana-postgresql-datasource')
        .flatMap((v) =>
          tablesOf(variableQuery(v)).flatMap((t) => (tables.has(t) ? [] : [`$${v.name}: no table ${t}`])),
        ),
    ]);
    expect(problems).toEqual([]);
  });

  it('quotes the free-text run variable', () => {
    const raw = dashboards.flatMap(({ json }) =>
      targetsOf(json).filter(
        (t) => t.type === 'grafana-postgresql-datasource' && /\$run_id\b|\$\{run_id\}/.test(t.text),
      ),
    );
    expect(raw.map((t) => t.where)).toEqual([]); // use ${run_id:sqlstring}
  });
});

describe('Grafana dashboards', () => {
  const provisioned = new Set(
    readYaml<Datasources>(`${OBS}/grafana/provisioning/datasources/datasources.yaml`).datasources.map((d) => d.uid),
  );

  it('are the ones docs/observability.md "Dashboards" lists, with unique uids', () => {
    const titles = dashboards.map((d) => d.json.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'LLM Token Accounting',
        'AgentMeter Admin Overview',
        'AgentMeter Pipeline Health',
        'AgentMeter Run',
      ]),
    );
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
    expect(dashboards.find((d) => d.json.title === 'LLM Token Accounting')?.json.uid).toBe('llm-token-accounting');
  });

  it('use only provisioned datasources', () => {
    const used = dashboards.flatMap(({ json }) => [
      ...targetsOf(json).map((t) => `${t.where} -> ${t.uid}`),
      ...json.templating.list
        .filter((v) => v.datasource)
        .map((v) => `${json.uid} / $${v.name} -> ${v.datasource!.uid}`),
    ]);
    expect(used.filter((u) => !provisioned.has(u.split(' -> ')[1]!))).toEqual([]);
  });

  it('define every variable their queries use', () => {
    const problems = dashboards.flatMap(({ json }) => {
      const defined = new Set(json.templating.list.map((v) => v.name));
      const texts = [
        ...targetsOf(json).map((t) => ({ where: t.where, text: t.text })),
        ...json.templating.list.map((v) => ({ where: `${json.uid} / $${v.name}`, text: variableQuery(v) })),
      ];
      return texts.flatMap(({ where, text }) =>
        [...text.matchAll(/\$\{?([a-zA-Z_]\w*)/g)]
          .map((m) => m[1]!)
          .filter((name) => !name.startsWith('__') && !defined.has(name))
          .map((name) => `${where}: $${name} is not a variable`),
      );
    });
    expect(problems).toEqual([]);
  });

  it('have unique panel ids', () => {
    for (const { json } of dashboards) {
      const ids = panelsOf(json.panels).map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  const links = new LinksService(
    loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32), GRAFANA_URL: 'http://127.0.0.1:3300/' }),
  );
  const dashboardOf = (url: string) => {
    const uid = /\/d\/([^/?]+)/.exec(url)?.[1];
    return dashboards.find((d) => d.json.uid === uid);
  };

  it("include the run dashboard that query's GET /config links to, with its variable", () => {
    const template = links.runDashboardTemplate;
    expect(template).toBeDefined();
    const uid = /\/d\/([^/?]+)/.exec(template!)?.[1];
    const target = dashboards.find((d) => d.json.uid === uid);
    expect(target).toBeDefined();
    const params = [...template!.matchAll(/[?&]var-([a-zA-Z_]\w*)=/g)].map((m) => m[1]!);
    expect(params.length).toBeGreaterThan(0);
    for (const name of params) expect(target!.json.templating.list.map((v) => v.name)).toContain(name);
  });

  it("are what query's default links open: every shipped dashboard, the run's Failures panel", () => {
    const run = links.runDashboard('run/1')!;
    expect(run).toBe('http://127.0.0.1:3300/d/agentmeter-run/agentmeter-run?var-run_id=run%2F1');
    const listed = Object.values(links.dashboards()!).map((url) => dashboardOf(url)?.json.title);
    expect(listed.sort()).toEqual(['AgentMeter Admin Overview', 'AgentMeter Pipeline Health', 'LLM Token Accounting']);
    for (const url of Object.values(links.dashboards()!)) {
      const { pathname } = new URL(url);
      const [, , uid, slug] = pathname.split('/');
      expect(slug).toBe(uid);
    }
    const artifact = new URL(links.artifact('run/1', 'src/plan.md@v3')!);
    expect(dashboardOf(artifact.href)?.json.uid).toBe('agentmeter-run');
    expect(artifact.searchParams.get('var-run_id')).toBe('run/1');
    const panel = panelsOf(dashboardOf(artifact.href)!.json.panels).find(
      (p) => String(p.id) === artifact.searchParams.get('viewPanel'),
    );
    expect(panel?.title).toBe('Failures');
  });

  it("open a trace in Grafana Explore on the provisioned Tempo datasource by query's default", () => {
    const url = new URL(links.trace('0af7651916cd43dd8448eb211c80319c')!);
    expect(url.origin + url.pathname).toBe('http://127.0.0.1:3300/explore');
    const pane = Object.values(JSON.parse(url.searchParams.get('panes')!) as Record<string, ExplorePane>)[0]!;
    const tempo = readYaml<Datasources>(`${OBS}/grafana/provisioning/datasources/datasources.yaml`).datasources.find(
      (d) => d.uid === pane.datasource,
    );
    expect(tempo?.type).toBe('tempo');
    expect(pane.queries).toEqual([
      expect.objectContaining({
        datasource: { type: 'tempo', uid: tempo!.uid },
        queryType: 'traceql',
        query: '0af7651916cd43dd8448eb211c80319c',
      }),
    ]);
    expect(links.traceTemplate).toContain('{trace_id}');
  });

  it('are absent without a Grafana address, except the console page', () => {
    const none = new LinksService(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }));
    expect([none.runDashboard('r'), none.trace('t'), none.artifact('r', 'a@1'), none.dashboards()]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect(none.runPage('run/1')).toBe('/runs/run%2F1');
    const tempo = new LinksService(
      loadConfig({
        AUTH_JWT_SECRET: 'x'.repeat(32),
        TEMPO_URL: 'https://tempo.test',
        TEMPO_TRACE_TEMPLATE: '{tempo_url}/api/traces/{trace_id}',
      }),
    );
    expect(tempo.trace('abc')).toBe('https://tempo.test/api/traces/abc');
  });
});

describe('alert rules', () => {
  const alerts = rules.filter((r) => r.alert);
  const operations = read('docs/operations.md');
  const anchors = new Set(
    [...operations.matchAll(/^#{2,4}\s+(.+)$/gm)].map((m) =>
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, '')
        .replace(/ /g, '-'),
    ),
  );

  it('cover the alerts docs/observability.md "Alerting" lists', () => {
    expect(alerts.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'AgentMeterServiceDown',
        'AgentMeterCollectorDown',
        'AgentMeterIngestLagGrowing',
        'AgentMeterDeadLettersGrowing',
      ]),
    );
    expect(alerts.some((r) => /deliver/i.test(r.alert!))).toBe(true);
  });

  it('each have a severity, a summary and a runbook section in docs/operations.md', () => {
    for (const rule of alerts) {
      expect([rule.alert, rule.labels?.severity]).toEqual([rule.alert, expect.stringMatching(/^(critical|warning)$/)]);
      expect(rule.annotations?.summary).toBeTruthy();
      const runbook = rule.annotations?.runbook ?? '';
      expect(runbook).toBe(`docs/operations.md#${rule.alert!.toLowerCase()}`);
      expect([rule.alert, anchors.has(rule.alert!.toLowerCase())]).toEqual([rule.alert, true]);
    }
  });

  it('each have a promtool unit test', () => {
    const tests = filesUnder(`${OBS}/rules`, (name) => name.endsWith('.rules.test.yml'))
      .map(read)
      .join('\n');
    for (const rule of alerts)
      expect([rule.alert, tests.includes(`alertname: ${rule.alert}`)]).toEqual([rule.alert, true]);
  });
});

describe('Prometheus and Alertmanager configuration', () => {
  interface ScrapeConfig {
    job_name: string;
    static_configs: Array<{ targets: string[]; labels?: Record<string, string> }>;
  }
  const prometheus = readYaml<{ scrape_configs: ScrapeConfig[]; rule_files: string[] }>(`${OBS}/prometheus.yml`);

  it('scrapes every service on its configured port', () => {
    const agentmeter = prometheus.scrape_configs.find((s) => s.job_name === 'agentmeter')!;
    const targets = new Map(
      agentmeter.static_configs.flatMap((c) => c.targets.map((t) => [c.labels?.service, Number(t.split(':')[1])])),
    );
    for (const config of serviceConfigs().filter((c) => c.file.endsWith('/src/config.ts'))) {
      expect([config.service, targets.get(config.service)]).toEqual([config.service, config.port]);
    }
    expect(targets.get('alert-worker')).toBe(3004);
  });

  it('scrapes the collector and Tempo', () => {
    const jobs = prometheus.scrape_configs.map((s) => s.job_name);
    expect(jobs).toEqual(expect.arrayContaining(['otel-collector', 'tempo']));
  });

  it('sends alerts to the alert service webhook', () => {
    interface Alertmanager {
      route: { receiver: string };
      receivers: Array<{ name: string; webhook_configs?: Array<{ url: string; send_resolved?: boolean }> }>;
    }
    const alertmanager = readYaml<Alertmanager>(`${OBS}/alertmanager.yml`);
    const receiver = alertmanager.receivers.find((r) => r.name === alertmanager.route.receiver)!;
    const alertPort = serviceConfigs().find((c) => c.service === 'alert' && c.file.endsWith('/src/config.ts'))!.port;
    const url = new URL(receiver.webhook_configs![0]!.url);
    expect(url.pathname).toBe('/observability/alerts');
    expect(Number(url.port)).toBe(alertPort);
    expect(receiver.webhook_configs![0]!.send_resolved).toBe(true);
  });

  it('exposes every compose host port through an OBS_* variable', () => {
    const compose = readYaml<{ services: Record<string, { ports?: string[] }> }>('docker-compose.observability.yml');
    const ports = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) expect(port).toMatch(/^\$\{OBS_BIND_ADDRESS:-127\.0\.0\.1\}:\$\{OBS_[A-Z_]+:-\d+\}:\d+$/);
  });
});
