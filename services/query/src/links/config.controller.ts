import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Allow } from '../auth/auth.guard';
import { openApiSchema } from '../http/validation';
import { LinksService, RUN_PAGE_TEMPLATE } from './links.service';

export const ClientConfig = z.object({
  grafana_url: z.string().nullable(),
  tempo_url: z.string().nullable(),
  run_dashboard_url_template: z
    .string()
    .nullable()
    .describe('replace {run_id} (URL-encoded); null when Grafana is not configured'),
  trace_url_template: z
    .string()
    .nullable()
    .describe('replace {trace_id}; by default Grafana Explore on Tempo; null when its base URL is not configured'),
  artifact_url_template: z
    .string()
    .nullable()
    .describe('replace {run_id}, {artifact_path}, {artifact_version}; null when its base URL is not configured'),
  run_page_url_template: z.string().describe("replace {run_id}: the run's console page on this origin"),
  dashboards: z
    .object({ admin_overview: z.string(), pipeline_health: z.string(), llm_token_accounting: z.string() })
    .nullable()
    .describe('the shipped Grafana dashboards; null when Grafana is not configured'),
});
export type ClientConfig = z.output<typeof ClientConfig>;

/** GET /config: where the observability stack is, for the deep links of docs/query.md "Links" (OP and Admin). */
@ApiTags('config')
@Controller('config')
export class ConfigController {
  constructor(private readonly links: LinksService) {}

  @Get()
  @Allow('config.read')
  @ApiOperation({ summary: 'Grafana and Tempo base URLs, dashboards and link templates' })
  @ApiOkResponse({ schema: openApiSchema(ClientConfig) })
  get(): ClientConfig {
    return {
      grafana_url: this.links.grafanaUrl,
      tempo_url: this.links.tempoUrl,
      run_dashboard_url_template: this.links.runDashboardTemplate,
      trace_url_template: this.links.traceTemplate,
      artifact_url_template: this.links.artifactTemplate,
      run_page_url_template: RUN_PAGE_TEMPLATE,
      dashboards: this.links.dashboards(),
    };
  }
}
