import { Controller, Get, Injectable, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Clock, share } from '@agentmeter/domain';
import { NotFoundError } from '@agentmeter/http';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import { type Caller, tenantOf } from '../auth/caller';
import { CsvExport } from '../http/csv.interceptor';
import { Limits } from '../http/limits';
import { Id, openApiSchema, ValidBody, ValidQuery } from '../http/validation';
import { FeedbackRepository } from './feedback.repository';

/**
 * An alert is named by the parts of its key (rule, scope, period), as alert events and banners carry them; the
 * stored key joins them with a separator that no request may contain.
 */
export const FeedbackBody = z.object({
  rule: Id.describe('the alert rule, e.g. owner.cap_warning'),
  scope: Id.describe("the alert's scope (tenant, run or project id, as the alert names it)"),
  period: Id.describe("the alert's period (e.g. the day), as the alert names it"),
  useful: z.boolean().describe('true: the alert was worth acting on; false: noise'),
  note: z.string().max(2_000).optional(),
  tenant_id: Id.optional().describe("Admin only: the alert's tenant (default: the caller's)"),
});
export type FeedbackBody = z.output<typeof FeedbackBody>;

export const FeedbackAnswer = z.object({
  tenant_id: z.string(),
  rule: z.string(),
  user_id: z.string(),
  useful: z.boolean(),
  note: z.string().nullable(),
  updated_at: z.string(),
});

export const PrecisionQuery = z.object({
  period: z
    .string()
    .regex(/^[1-9]\d{0,3}d$/, 'a number of days such as 30d')
    .optional()
    .describe('alerts fired in these whole UTC days ending today; default 30d'),
  tenant_id: Id.optional().describe('Admin only: one tenant'),
});
export type PrecisionQuery = z.output<typeof PrecisionQuery>;

const PrecisionFigures = z.object({
  fired: z.number().describe('alerts fired in the period'),
  rated: z.number().describe('of those, alerts with at least one verdict'),
  useful: z.number().describe('rated alerts most of whose verdicts say useful (true positives)'),
  not_useful: z.number().describe('rated alerts not useful (false positives; a tie counts here)'),
  precision: z.number().nullable().describe('useful / rated, 4 decimals; null when none was rated'),
});
export const PrecisionAnswer = z.object({
  period: z.object({ from_day: z.string(), to_day: z.string(), days: z.number() }),
  tenant_id: z.string().nullable(),
  rules: z.array(PrecisionFigures.extend({ rule: z.string() })),
  totals: PrecisionFigures,
});
export type PrecisionAnswer = z.output<typeof PrecisionAnswer>;

/** Alert feedback (docs/query.md "Definitions a reader would otherwise guess"): users rate alerts, precision per rule is reported. */
@Injectable()
export class FeedbackService {
  constructor(
    private readonly repository: FeedbackRepository,
    private readonly audit: AuditRepository,
    private readonly limits: Limits,
    private readonly clock: Clock,
  ) {}

  async rate(caller: Caller, body: FeedbackBody): Promise<z.output<typeof FeedbackAnswer>> {
    // Admin (every tenant) names the alert's tenant, or rates one of its own tenant's.
    const tenantId = tenantOf(caller, body.tenant_id) ?? caller.principal.tenantId;
    const alertKey = [body.rule, tenantId, body.scope, body.period].join('\u001f');
    const p = caller.principal;
    const auditId = await this.audit.begin({
      tenantId,
      ...auditActor(caller),
      action: 'alert.feedback',
      target: `${body.rule}/${body.scope}/${body.period}`,
      reason: body.note ?? null,
      params: { useful: body.useful },
      executor: 'query',
    });
    const rule = await this.repository.alertRule(tenantId, alertKey);
    if (rule === undefined) {
      await this.audit.finish(auditId, 'failed', 'no such alert');
      throw new NotFoundError('alert not found');
    }
    const row = await this.repository.upsert(tenantId, alertKey, rule, p.subject, body.useful, body.note ?? null);
    await this.audit.finish(auditId, 'succeeded', body.useful ? 'useful' : 'not useful');
    return {
      tenant_id: row.tenant_id,
      rule: row.rule,
      user_id: row.user_id,
      useful: row.useful,
      note: row.note,
      updated_at: row.updated_at.toISOString(),
    };
  }

  async precision(caller: Caller, query: PrecisionQuery): Promise<PrecisionAnswer> {
    const { range, days } = this.limits.aggregateRange({ period: query.period }, this.clock.now());
    const tenantId = tenantOf(caller, query.tenant_id);
    const rows = await this.repository.precision(tenantId, range.from, range.to);
    const totals = { fired: 0, rated: 0, useful: 0, not_useful: 0 };
    for (const row of rows) {
      totals.fired += row.fired;
      totals.rated += row.rated;
      totals.useful += row.useful;
      totals.not_useful += row.not_useful;
    }
    return {
      period: { from_day: range.fromDay, to_day: range.toDay, days },
      tenant_id: tenantId,
      rules: rows.map((row) => ({ ...row, precision: share(row.useful, row.rated) })),
      totals: { ...totals, precision: share(totals.useful, totals.rated) },
    };
  }
}

@ApiTags('alerts')
@Controller()
export class FeedbackController {
  constructor(private readonly feedback: FeedbackService) {}

  @Post('alerts/feedback')
  @Allow('alerts.feedback')
  @ApiOperation({ summary: 'Mark an alert useful or not (one verdict per user; a second replaces it); audited' })
  @ApiOkResponse({ schema: openApiSchema(FeedbackAnswer) })
  rate(@CurrentCaller() caller: Caller, @ValidBody(FeedbackBody) body: FeedbackBody) {
    return this.feedback.rate(caller, body);
  }

  @Get('api/v1/analytics/alert-precision')
  @Allow('analytics.metrics')
  @CsvExport({ filename: 'alert-precision', rows: 'rules' })
  @ApiOperation({ summary: 'Alert precision per rule: useful alerts over rated alerts' })
  @ApiOkResponse({ schema: openApiSchema(PrecisionAnswer) })
  precision(
    @CurrentCaller() caller: Caller,
    @ValidQuery(PrecisionQuery) query: PrecisionQuery,
  ): Promise<PrecisionAnswer> {
    return this.feedback.precision(caller, query);
  }
}
