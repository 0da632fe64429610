import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { CsvExport } from '../http/csv.interceptor';
import { openApiSchema, ValidQuery } from '../http/validation';
import { BannersRepository } from './banners.repository';

export const BannersQuery = z.object({
  include_resolved: z.enum(['true', 'false']).optional().describe('also list resolved banners (default false)'),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});
export type BannersQuery = z.output<typeof BannersQuery>;

export const Banner = z.object({
  id: z.string().nullable(),
  tenant_id: z.string(),
  audience: z.string().nullable().describe("'owner': the tenant's users; 'admin': platform admins"),
  rule: z.string().nullable(),
  alert_key: z.string().nullable(),
  severity: z.string().nullable(),
  title: z.string().nullable(),
  body: z.string().nullable(),
  created_at: z.string().nullable(),
  resolved_at: z.string().nullable(),
});
export const BannerList = z.object({ items: z.array(Banner) });
export type BannerList = z.output<typeof BannerList>;

@ApiTags('alerts')
@Controller('alerts/banners')
export class BannersController {
  constructor(private readonly banners: BannersRepository) {}

  @Get()
  @Allow('banners.read')
  @CsvExport({ filename: 'banners', rows: 'items' })
  @ApiOperation({ summary: "In-app banners of the caller's tenant, newest first" })
  @ApiOkResponse({ schema: openApiSchema(BannerList) })
  async list(@CurrentCaller() caller: Caller, @ValidQuery(BannersQuery) query: BannersQuery): Promise<BannerList> {
    const rows = await this.banners.list(
      caller.principal.tenantId,
      caller.principal.roles.has('admin'),
      query.include_resolved === 'true',
      query.limit ?? 50,
    );
    return { items: rows.map(toBanner) };
  }
}

function toBanner(row: Record<string, unknown>): z.output<typeof Banner> {
  const text = (...keys: string[]) => {
    for (const key of keys) if (row[key] !== undefined && row[key] !== null) return String(row[key]);
    return null;
  };
  return {
    id: text('id'),
    tenant_id: String(row.tenant_id),
    audience: text('audience'),
    rule: text('rule'),
    alert_key: text('alert_key', 'key', 'alert_id'),
    severity: text('severity'),
    title: text('title'),
    body: text('body'),
    created_at: text('created_at'),
    resolved_at: text('resolved_at'),
  };
}
