import { Controller, Get, Injectable, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Clock } from '@agentmeter/domain';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import { type Caller, tenantOf } from '../auth/caller';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { CsvExport, wantsCsv } from '../http/csv.interceptor';
import { Limits } from '../http/limits';
import { Cursor, Id, Limit, openApiSchema, Time, ValidQuery } from '../http/validation';
import { AuditRepository } from './audit.repository';

export const AuditQuery = z.object({
  tenant_id: Id.optional().describe('Admin only: one tenant'),
  action: Id.optional(),
  from: Time.optional(),
  to: Time.optional(),
  limit: Limit.optional(),
  cursor: Cursor.optional(),
});
export type AuditQuery = z.output<typeof AuditQuery>;

export const AuditItem = z.object({
  id: z.string(),
  at: z.string(),
  tenant_id: z.string().nullable(),
  actor: z.string(),
  actor_tenant_id: z.string(),
  actor_roles: z.array(z.string()),
  credential: z.string(),
  action: z.string(),
  target: z.string(),
  reason: z.string().nullable(),
  params: z.record(z.string(), z.unknown()),
  outcome: z.enum(['requested', 'succeeded', 'failed']),
  executor: z.string(),
  detail: z.string().nullable(),
  finished_at: z.string().nullable(),
});
export const AuditPage = z.object({ items: z.array(AuditItem), next_cursor: z.string().nullable(), limit: z.number() });
export type AuditPage = z.output<typeof AuditPage>;

@Injectable()
export class AuditService {
  constructor(
    private readonly repository: AuditRepository,
    private readonly limits: Limits,
    private readonly clock: Clock,
  ) {}

  async list(caller: Caller, query: AuditQuery, csv: boolean): Promise<AuditPage> {
    const limit = this.limits.pageSize(query.limit, csv);
    const { from, to } = this.limits.timeRange(query.from, query.to, this.clock.now());
    const cursor = decodeCursor(query.cursor, 1);
    const rows = await this.repository.list({
      tenantId: tenantOf(caller, query.tenant_id),
      action: query.action,
      from,
      to,
      beforeId: cursor ? String(cursor[0]) : null,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    return {
      items: page.map((row) => ({
        ...row,
        at: row.at.toISOString(),
        finished_at: row.finished_at?.toISOString() ?? null,
      })),
      next_cursor: rows.length > limit ? encodeCursor([page[page.length - 1]!.id]) : null,
      limit,
    };
  }
}

/** GET /audit: who did what through the API, newest first. */
@ApiTags('audit')
@Controller('audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @Allow('audit.read')
  @CsvExport({ filename: 'audit', rows: 'items' })
  @ApiOperation({ summary: 'The audit log of actions, newest first; keyset pages (cursor)' })
  @ApiOkResponse({ schema: openApiSchema(AuditPage) })
  list(
    @CurrentCaller() caller: Caller,
    @ValidQuery(AuditQuery) query: AuditQuery,
    @Req() req: FastifyRequest,
  ): Promise<AuditPage> {
    return this.audit.list(caller, query, wantsCsv(req));
  }
}
