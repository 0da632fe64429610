import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { CsvExport } from '../http/csv.interceptor';
import { openApiSchema, ValidQuery } from '../http/validation';
import { CostsAnswer, CostsQuery, MetricsAnswer, MetricsQuery, UsageAnswer, UsageQuery } from './analytics.schemas';
import { AnalyticsService } from './analytics.service';
import {
  BreakerEventsAnswer,
  ErrorRatesAnswer,
  ErrorRatesQuery,
  HealthQuery,
  McpHealthAnswer,
  ToolCallHoursAnswer,
} from './health.schemas';
import { HealthService } from './health.service';

/** Cost attribution and usage analytics, and the phase metrics (docs/query.md "Endpoints"). */
@ApiTags('analytics')
@Controller('api/v1/analytics')
export class AnalyticsController {
  constructor(
    private readonly analytics: AnalyticsService,
    private readonly health: HealthService,
  ) {}

  @Get('costs')
  @Allow('analytics.costs')
  @CsvExport({ filename: 'costs', rows: 'rows' })
  @ApiOperation({ summary: 'Cost breakdown over a period, grouped by one dimension, optionally per interval' })
  @ApiOkResponse({ schema: openApiSchema(CostsAnswer) })
  costs(@CurrentCaller() caller: Caller, @ValidQuery(CostsQuery) query: CostsQuery): Promise<CostsAnswer> {
    return this.analytics.costs(caller, query);
  }

  @Get('usage')
  @Allow('analytics.costs')
  @CsvExport({ filename: 'usage', rows: 'rows' })
  @ApiOperation({ summary: 'Usage rollups: calls, errors, latency p95, tokens and cost per group' })
  @ApiOkResponse({ schema: openApiSchema(UsageAnswer) })
  usage(@CurrentCaller() caller: Caller, @ValidQuery(UsageQuery) query: UsageQuery): Promise<UsageAnswer> {
    return this.analytics.usage(caller, query);
  }

  @Get('tool-calls/hours')
  @Allow('analytics.costs')
  @CsvExport({ filename: 'tool-call-hours', rows: 'rows' })
  @ApiOperation({ summary: 'Tool calls per UTC day of the week and hour of the day (a heatmap of when tools run)' })
  @ApiOkResponse({ schema: openApiSchema(ToolCallHoursAnswer) })
  toolCallHours(
    @CurrentCaller() caller: Caller,
    @ValidQuery(HealthQuery) query: HealthQuery,
  ): Promise<ToolCallHoursAnswer> {
    return this.health.toolCallHours(caller, query);
  }

  @Get('mcp-health')
  @Allow('analytics.costs')
  @CsvExport({ filename: 'mcp-health', rows: 'rows' })
  @ApiOperation({ summary: 'MCP servers per UTC hour: calls, failed calls, up/degraded/down; breaker openings' })
  @ApiOkResponse({ schema: openApiSchema(McpHealthAnswer) })
  mcpHealth(@CurrentCaller() caller: Caller, @ValidQuery(HealthQuery) query: HealthQuery): Promise<McpHealthAnswer> {
    return this.health.mcpHealth(caller, query);
  }

  @Get('mcp-breaker-events')
  @Allow('analytics.costs')
  @CsvExport({ filename: 'mcp-breaker-events', rows: 'rows' })
  @ApiOperation({ summary: 'MCP circuit-breaker openings and closings, as the breaker rule observes the calls' })
  @ApiOkResponse({ schema: openApiSchema(BreakerEventsAnswer) })
  breakerEvents(
    @CurrentCaller() caller: Caller,
    @ValidQuery(HealthQuery) query: HealthQuery,
  ): Promise<BreakerEventsAnswer> {
    return this.health.breakerEvents(caller, query);
  }

  @Get('error-rates')
  @Allow('analytics.costs')
  @CsvExport({ filename: 'error-rates', rows: 'rows' })
  @ApiOperation({ summary: 'Tool call failures and webhook delivery failures per interval' })
  @ApiOkResponse({ schema: openApiSchema(ErrorRatesAnswer) })
  errorRates(
    @CurrentCaller() caller: Caller,
    @ValidQuery(ErrorRatesQuery) query: ErrorRatesQuery,
  ): Promise<ErrorRatesAnswer> {
    return this.health.errorRates(caller, query);
  }

  @Get('metrics')
  @Allow('analytics.metrics')
  @CsvExport({ filename: 'metrics', rows: 'long' })
  @ApiOperation({ summary: 'Phase metrics: time-to-gate, success and retries per phase, MTTR, ...' })
  @ApiOkResponse({ schema: openApiSchema(MetricsAnswer) })
  metrics(@CurrentCaller() caller: Caller, @ValidQuery(MetricsQuery) query: MetricsQuery): Promise<MetricsAnswer> {
    return this.analytics.metrics(caller, query);
  }
}
