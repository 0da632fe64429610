import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AuditRepository } from '../audit/audit.repository';
import { InvalidRequestError } from '@agentmeter/http';
import { ServiceTokenGuard } from '@agentmeter/http';
import { requiredTenant } from '../http/tenant-query';
import { LifecycleRepository } from './lifecycle.repository';

/** Read-only views for operators and the query API: alert states, notifications, the audit. */
@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(ServiceTokenGuard)
@Controller('admin')
export class AlertsController {
  constructor(
    private readonly alerts: LifecycleRepository,
    private readonly audit: AuditRepository,
  ) {}

  @Get('alerts')
  @ApiOperation({ summary: "A tenant's alerts (the platform's with tenant_id=*), newest change first" })
  @ApiQuery({ name: 'tenant_id' })
  @ApiQuery({ name: 'status', required: false, enum: ['firing', 'resolved'] })
  list(@Query('tenant_id') tenantId: string, @Query('status') status?: string) {
    if (status !== undefined && status !== 'firing' && status !== 'resolved') {
      throw new InvalidRequestError('status: firing or resolved');
    }
    return this.alerts.listOfTenant(requiredTenant(tenantId), status ?? null, 500);
  }

  @Get('notifications')
  @ApiOperation({ summary: "A tenant's notifications, queued or muted, newest first" })
  @ApiQuery({ name: 'tenant_id' })
  notifications(@Query('tenant_id') tenantId: string) {
    return this.alerts.notificationsOfTenant(requiredTenant(tenantId), 500);
  }

  @Get('audit')
  @ApiOperation({ summary: "A tenant's alert audit (contacts, thresholds, mutes, Alertmanager alerts)" })
  @ApiQuery({ name: 'tenant_id' })
  auditOf(@Query('tenant_id') tenantId: string) {
    return this.audit.listOfTenant(requiredTenant(tenantId), 500);
  }
}
