import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/auth.guard';
import type { Principal } from '../auth/principal';
import { RunMetrics } from './run-metrics.dto';
import { RunsService } from './runs.service';

@ApiTags('runs')
@ApiBearerAuth()
@Controller('runs')
export class RunsController {
  constructor(private readonly runs: RunsService) {}

  /** Token usage per stage, latency per stage and the MCP cache-hit ratio of one run (seed 000). */
  @Get(':run_id/metrics')
  @ApiOkResponse({ type: RunMetrics })
  metrics(@CurrentPrincipal() principal: Principal, @Param('run_id') runId: string): Promise<RunMetrics> {
    return this.runs.metrics(principal, runId);
  }
}
