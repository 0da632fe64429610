import { Inject, Injectable } from '@nestjs/common';
import { QueryConfig } from '../config';

/** The dashboards shipped in deploy/observability/grafana/dashboards, by uid and URL slug. */
export const DASHBOARDS = {
  admin_overview: 'agentmeter-admin-overview/agentmeter-admin-overview',
  pipeline_health: 'agentmeter-pipeline-health/agentmeter-pipeline-health',
  llm_token_accounting: 'llm-token-accounting/llm-token-accounting',
} as const;

/** The console's run page, served by the query service on its own origin. */
export const RUN_PAGE_TEMPLATE = '/runs/{run_id}';

/**
 * Grafana, Tempo, artifact and console links from the configured base URLs and templates (docs/query.md "Links").
 * Values substituted into a template are URL-encoded. A link whose template names a base URL that is not
 * configured is null. Callers decide who sees them (OP and Admin; artifacts and run pages: all).
 */
@Injectable()
export class LinksService {
  constructor(@Inject(QueryConfig) private readonly config: QueryConfig) {}

  get grafanaUrl(): string | null {
    return this.config.GRAFANA_URL ? trimSlash(this.config.GRAFANA_URL) : null;
  }

  get tempoUrl(): string | null {
    return this.config.TEMPO_URL ? trimSlash(this.config.TEMPO_URL) : null;
  }

  /** A template with its base URLs filled in and its data placeholders left; null when a base is missing. */
  template(template: string): string | null {
    return fill(template, this.bases(), {});
  }

  get runDashboardTemplate(): string | null {
    return this.template(this.config.GRAFANA_RUN_DASHBOARD_TEMPLATE);
  }

  get traceTemplate(): string | null {
    return this.template(this.config.TEMPO_TRACE_TEMPLATE);
  }

  get artifactTemplate(): string | null {
    return this.template(this.config.ARTIFACT_URL_TEMPLATE);
  }

  dashboards(): Record<keyof typeof DASHBOARDS, string> | null {
    const grafana = this.grafanaUrl;
    if (!grafana) return null;
    const entries = Object.entries(DASHBOARDS).map(([name, path]) => [name, `${grafana}/d/${path}`]);
    return Object.fromEntries(entries) as Record<keyof typeof DASHBOARDS, string>;
  }

  runDashboard(runId: string): string | null {
    return fill(this.config.GRAFANA_RUN_DASHBOARD_TEMPLATE, this.bases(), { run_id: runId });
  }

  trace(traceId: string | null): string | null {
    if (!traceId) return null;
    return fill(this.config.TEMPO_TRACE_TEMPLATE, this.bases(), { trace_id: traceId });
  }

  /** The run's console page on the query origin. */
  runPage(runId: string): string {
    return fill(RUN_PAGE_TEMPLATE, {}, { run_id: runId })!;
  }

  /** `artifact_ref` is "path@version" as ingest stores failures. */
  artifact(runId: string, artifactRef: string): string | null {
    if (!artifactRef) return null;
    const at = artifactRef.lastIndexOf('@');
    const path = at === -1 ? artifactRef : artifactRef.slice(0, at);
    const version = at === -1 ? '' : artifactRef.slice(at + 1);
    return fill(this.config.ARTIFACT_URL_TEMPLATE, this.bases(), {
      artifact_path: path,
      artifact_version: version,
      run_id: runId,
    });
  }

  private bases(): Record<string, string | null> {
    return { grafana_url: this.grafanaUrl, tempo_url: this.tempoUrl };
  }
}

/**
 * Replaces {name}: `bases` verbatim (configured URLs), `values` URL-encoded (data). Null when the template names
 * a base that is not configured. Other placeholders are left for the client to fill.
 */
function fill(template: string, bases: Record<string, string | null>, values: Record<string, string>): string | null {
  let missing = false;
  const out = template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
    if (name in bases) {
      const base = bases[name];
      if (!base) missing = true;
      return base ?? whole;
    }
    if (name in values) return encodeURIComponent(values[name]!);
    return whole;
  });
  return missing ? null : out;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
