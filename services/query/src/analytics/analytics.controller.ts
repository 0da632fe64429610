import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { CsvExport } from '../http/csv.interceptor';
import { openApiSchema, ValidQuery } from '../http/validation';
import { CostsAnswer, CostsQuery, MetricsAnswer, MetricsQuery, UsageAnswer, UsageQuery } from './analytics.schemas';
import { AnalyticsService } from './analytics.service';

/** Seed 004 cost attribution and usage analytics, and the seed 001 metric list. */
@ApiTags('analytics')
@Controller('api/v1/analytics')
export class AnalyticsController {
  constructor(private readonly analytics: AnalyticsService) {}

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

  @Get('metrics')
  @Allow('analytics.metrics')
  @CsvExport({ filename: 'metrics', rows: 'long' })
  @ApiOperation({ summary: 'Seed 001 metrics: time-to-gate, success and retries per phase, MTTR, ...' })
  @ApiOkResponse({ schema: openApiSchema(MetricsAnswer) })
  metrics(@CurrentCaller() caller: Caller, @ValidQuery(MetricsQuery) query: MetricsQuery): Promise<MetricsAnswer> {
    return this.analytics.metrics(caller, query);
  }
}
