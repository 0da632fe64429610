import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { CsvExport, wantsCsv } from '../http/csv.interceptor';
import { LongLived } from '../http/timeout.interceptor';
import { openApiSchema, parseId, ValidQuery } from '../http/validation';
import { RunStreamService } from './run-stream.service';
import { RunMetrics } from './run-metrics.dto';
import { EventPage, EventsQuery, RunPage, RunsQuery } from './runs.schemas';
import { RunsService } from './runs.service';

@ApiTags('runs')
@Controller('runs')
export class RunsController {
  constructor(
    private readonly runs: RunsService,
    private readonly streams: RunStreamService,
  ) {}

  @Get()
  @Allow('runs.read')
  @CsvExport({ filename: 'runs', rows: 'items' })
  @ApiOperation({ summary: 'Runs, newest first, filtered; keyset pages (cursor)' })
  @ApiOkResponse({ schema: openApiSchema(RunPage) })
  list(
    @CurrentCaller() caller: Caller,
    @ValidQuery(RunsQuery) query: RunsQuery,
    @Req() req: FastifyRequest,
  ): Promise<RunPage> {
    return this.runs.list(caller, query, wantsCsv(req));
  }

  /** Token usage per stage, latency per stage and the MCP cache-hit ratio of one run (docs/console.md "Run detail"). */
  @Get(':run_id/metrics')
  @Allow('runs.read')
  @ApiOkResponse({ type: RunMetrics })
  metrics(@CurrentCaller() caller: Caller, @Param('run_id') runId: string): Promise<RunMetrics> {
    return this.runs.metrics(caller, parseId(runId, 'run_id'));
  }

  @Get(':run_id/events')
  @Allow('runs.events')
  @CsvExport({ filename: 'run-events', rows: 'items' })
  @ApiOperation({ summary: "A run's timeline in event-time order; keyset pages (cursor)" })
  @ApiOkResponse({ schema: openApiSchema(EventPage) })
  events(
    @CurrentCaller() caller: Caller,
    @Param('run_id') runId: string,
    @ValidQuery(EventsQuery) query: EventsQuery,
    @Req() req: FastifyRequest,
  ): Promise<EventPage> {
    return this.runs.events(caller, parseId(runId, 'run_id'), query, wantsCsv(req));
  }

  @Get(':run_id/stream')
  @Allow('runs.read')
  @LongLived()
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'metrics, heartbeat and end events', schema: { type: 'string' } })
  @ApiOperation({
    summary: "Server-Sent Events of a run's changes",
    description: 'events: metrics (the /metrics answer, at once and on every change), heartbeat, end (terminal state)',
  })
  stream(
    @CurrentCaller() caller: Caller,
    @Param('run_id') runId: string,
    @Req() req: FastifyRequest,
    @Res() res: FastifyReply,
  ): Promise<void> {
    return this.streams.serve(caller, parseId(runId, 'run_id'), req, res);
  }
}
