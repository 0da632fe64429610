import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { CsvExport } from '../http/csv.interceptor';
import { openApiSchema, parseId, ValidQuery } from '../http/validation';
import {
  AdminOverview,
  AdminOverviewQuery,
  ProjectOverview,
  ProjectOverviewQuery,
  TenantCaps,
  TenantOverview,
} from './overview.schemas';
import { OverviewService } from './overview.service';

/** The dashboards (docs/query.md "Dashboards"). CSV: one row per (section, item, field, value). */
@ApiTags('overview')
@Controller()
export class OverviewController {
  constructor(private readonly overview: OverviewService) {}

  @Get('admin/overview')
  @Allow('admin.overview')
  @CsvExport({ filename: 'admin-overview', rows: 'long' })
  @ApiOperation({ summary: "Today's spend, last failures, stuck projects, caps approaching, 7/30-day trends" })
  @ApiOkResponse({ schema: openApiSchema(AdminOverview) })
  admin(
    @CurrentCaller() caller: Caller,
    @ValidQuery(AdminOverviewQuery) query: AdminOverviewQuery,
  ): Promise<AdminOverview> {
    return this.overview.admin(caller, query);
  }

  @Get('tenants/:tenant_id/overview')
  @Allow('tenant.overview')
  @CsvExport({ filename: 'tenant-overview', rows: 'long' })
  @ApiOperation({ summary: 'Time-to-gate per phase, recent ships, costs, proof completion rate (30 days)' })
  @ApiOkResponse({ schema: openApiSchema(TenantOverview) })
  tenant(@CurrentCaller() caller: Caller, @Param('tenant_id') tenantId: string): Promise<TenantOverview> {
    return this.overview.tenant(caller, parseId(tenantId, 'tenant_id'));
  }

  @Get('tenants/:tenant_id/caps')
  @Allow('tenant.overview')
  @CsvExport({ filename: 'tenant-caps', rows: 'long' })
  @ApiOperation({ summary: "The tenant's caps in force, remaining daily budget, pause and raises (cost-cap's state)" })
  @ApiOkResponse({ schema: openApiSchema(TenantCaps) })
  caps(@CurrentCaller() caller: Caller, @Param('tenant_id') tenantId: string): Promise<TenantCaps> {
    return this.overview.tenantCaps(caller, parseId(tenantId, 'tenant_id'));
  }

  @Get('projects/:project_id/overview')
  @Allow('project.overview')
  @CsvExport({ filename: 'project-overview', rows: 'long' })
  @ApiOperation({ summary: 'Phase timeline, artifact version heatmap, open flags, next action' })
  @ApiOkResponse({ schema: openApiSchema(ProjectOverview) })
  project(
    @CurrentCaller() caller: Caller,
    @Param('project_id') projectId: string,
    @ValidQuery(ProjectOverviewQuery) query: ProjectOverviewQuery,
  ): Promise<ProjectOverview> {
    return this.overview.project(caller, parseId(projectId, 'project_id'), query);
  }
}
