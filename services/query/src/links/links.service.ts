import { Inject, Injectable } from '@nestjs/common';
import { QueryConfig } from '../config';

/**
 * Grafana, Tempo and artifact links from the configured base URLs and templates (seed 000 story 9.4). Values
 * substituted into a template are URL-encoded. Callers decide who sees them (OP and Admin; artifacts: all).
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

  get runDashboardTemplate(): string {
    return this.config.GRAFANA_RUN_DASHBOARD_TEMPLATE;
  }

  get traceTemplate(): string {
    return this.config.TEMPO_TRACE_TEMPLATE;
  }

  runDashboard(runId: string): string | null {
    if (!this.grafanaUrl) return null;
    return fill(this.config.GRAFANA_RUN_DASHBOARD_TEMPLATE, { grafana_url: this.grafanaUrl }, { run_id: runId });
  }

  trace(traceId: string | null): string | null {
    if (!traceId || !this.tempoUrl) return null;
    return fill(
      this.config.TEMPO_TRACE_TEMPLATE,
      { tempo_url: this.tempoUrl, grafana_url: this.grafanaUrl ?? '' },
      { trace_id: traceId },
    );
  }

  /** `artifact_ref` is "path@version" as ingest stores failures; null when no template is configured. */
  artifact(runId: string, artifactRef: string): string | null {
    const template = this.config.ARTIFACT_URL_TEMPLATE;
    if (!template || !artifactRef) return null;
    const at = artifactRef.lastIndexOf('@');
    const path = at === -1 ? artifactRef : artifactRef.slice(0, at);
    const version = at === -1 ? '' : artifactRef.slice(at + 1);
    return fill(template, {}, { artifact_path: path, artifact_version: version, run_id: runId });
  }
}

/** Replaces {name}: `bases` verbatim (configured URLs), `values` URL-encoded (data). */
function fill(template: string, bases: Record<string, string>, values: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
    if (name in bases) return bases[name]!;
    if (name in values) return encodeURIComponent(values[name]!);
    return whole;
  });
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
