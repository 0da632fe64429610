import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Allow } from '../auth/auth.guard';
import { openApiSchema } from '../http/validation';
import { LinksService } from './links.service';

export const ClientConfig = z.object({
  grafana_url: z.string().nullable(),
  tempo_url: z.string().nullable(),
  run_dashboard_url_template: z
    .string()
    .nullable()
    .describe('replace {run_id} (URL-encoded); null when Grafana is not configured'),
  trace_url_template: z.string().nullable().describe('replace {trace_id}; null when Tempo is not configured'),
});
export type ClientConfig = z.output<typeof ClientConfig>;

/** GET /config: where the observability stack is, for the deep links of seed 000 story 9.4 (OP and Admin). */
@ApiTags('config')
@Controller('config')
export class ConfigController {
  constructor(private readonly links: LinksService) {}

  @Get()
  @Allow('config.read')
  @ApiOperation({ summary: 'Grafana and Tempo base URLs and link templates' })
  @ApiOkResponse({ schema: openApiSchema(ClientConfig) })
  get(): ClientConfig {
    const grafana = this.links.grafanaUrl;
    const tempo = this.links.tempoUrl;
    return {
      grafana_url: grafana,
      tempo_url: tempo,
      run_dashboard_url_template: grafana ? this.links.runDashboardTemplate.replaceAll('{grafana_url}', grafana) : null,
      trace_url_template: tempo
        ? this.links.traceTemplate.replaceAll('{tempo_url}', tempo).replaceAll('{grafana_url}', grafana ?? '')
        : null,
    };
  }
}
