import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** Response shapes of GET /runs/{run_id}/metrics (docs/console.md "Run detail"). */

/** docs/security.md "Field policy". */
const NO_MONEY = 'absent for Support';
const HIDDEN = 'absent when the tenant shows Owners only $ and time (tenant setting owner_sees_tokens)';

export class TokenTotals {
  @ApiPropertyOptional({ description: HIDDEN }) prompt_tokens?: number;
  @ApiPropertyOptional({ description: HIDDEN }) completion_tokens?: number;
  @ApiPropertyOptional({ description: HIDDEN }) total_tokens?: number;
  @ApiPropertyOptional({
    description: `decimal USD, exact to the micro-dollar: the run's LLM calls and external charges; ${NO_MONEY}`,
    example: '0.012345',
  })
  cost_usd?: string;
  @ApiProperty() llm_calls!: number;
}

export class StageMetrics {
  @ApiProperty({ description: 'the phase name' }) stage!: string;
  @ApiProperty({ nullable: true, type: String }) role!: string | null;
  @ApiProperty({ enum: ['pending', 'running', 'passed', 'failed'] }) status!: string;
  @ApiProperty({ description: 'attempts of this phase (1 + retries)' }) attempts!: number;
  @ApiPropertyOptional({ nullable: true, type: Number, description: `null while the stage runs; ${HIDDEN}` })
  prompt_tokens?: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) completion_tokens?: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) total_tokens?: number | null;
  @ApiPropertyOptional({ description: `decimal USD of the stage's LLM calls (no external charges); ${NO_MONEY}` })
  cost_usd?: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) started_at!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finished_at!: string | null;
  @ApiProperty({ nullable: true, type: Number, description: 'finished_at - started_at; null while running' })
  elapsed_ms!: number | null;
  @ApiProperty({ description: 'the stage with the longest elapsed time' }) longest!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'only for OP and Admin' })
  trace_id?: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Tempo trace link; only for OP and Admin, when configured',
  })
  trace_url?: string | null;
  @ApiPropertyOptional({ description: 'shown while the stage runs' }) note?: string;
}

export class CacheSpace {
  @ApiProperty() hits!: number;
  @ApiProperty() misses!: number;
  @ApiProperty({ nullable: true, type: Number, description: 'hits / (hits + misses)' }) ratio!: number | null;
}

export class McpCache {
  @ApiProperty({ type: CacheSpace, description: 'amtp:mcp:tree:*' }) tree!: CacheSpace;
  @ApiProperty({ type: CacheSpace, description: 'amtp:mcp:blob:*' }) blob!: CacheSpace;
  @ApiProperty({ description: 'overall hit percentage across all key spaces', example: 87.5 }) overall_hit_pct!: number;
}

/** docs/query.md "Cost fields": the run's total split into what it is made of; the parts add up to it. */
export class CostBreakdown {
  @ApiProperty({ description: "sum of the stages' cost_usd: the run's LLM calls", example: '0.010000' })
  stages_usd!: string;
  @ApiProperty({ description: "the run's external charges (external_charge events), which no stage holds" })
  external_usd!: string;
  @ApiProperty({ description: 'stages_usd + external_usd = totals.cost_usd' }) total_usd!: string;
}

export class Freshness {
  @ApiProperty({ format: 'date-time' }) last_event_at!: string;
  @ApiProperty({ format: 'date-time', description: 'when ingest last updated this run' }) last_synced_at!: string;
}

export class RunMetrics {
  @ApiProperty() run_id!: string;
  @ApiProperty() tenant_id!: string;
  @ApiProperty() project_id!: string;
  @ApiProperty({ enum: ['unknown', 'running', 'succeeded', 'failed'] }) status!: string;
  @ApiProperty({ nullable: true, type: String }) phase!: string | null;
  @ApiProperty({ nullable: true, type: String }) model!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) started_at!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finished_at!: string | null;
  @ApiProperty({ format: 'date-time', description: 'server clock, for a live elapsed counter' }) server_time!: string;
  @ApiProperty({ type: TokenTotals }) totals!: TokenTotals;
  @ApiPropertyOptional({ type: CostBreakdown, description: `what totals.cost_usd is made of; ${NO_MONEY}` })
  cost_breakdown_usd?: CostBreakdown;
  @ApiProperty({ type: [StageMetrics] }) stages!: StageMetrics[];
  @ApiProperty({ type: McpCache, nullable: true, description: 'null when the run made no MCP calls' })
  mcp_cache!: McpCache | null;
  @ApiProperty({ type: Freshness }) freshness!: Freshness;
  @ApiProperty({
    nullable: true,
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'environment provenance from run_started',
  })
  environment!: Record<string, string> | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Grafana run dashboard link; only for OP and Admin, when configured',
  })
  grafana_url?: string | null;
}
