import { Body, Controller, Delete, Get, HttpCode, Param, Put, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AuditedBody, PLATFORM_TENANT, PutThresholdBody } from '@agentmeter/contracts';
import { ServiceTokenGuard } from '@agentmeter/http';
import { requiredTenant } from '../http/tenant-query';
import { openApiSchema, ZodBody } from '../http/zod-body.pipe';
import { ThresholdsService } from './thresholds.service';

@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(ServiceTokenGuard)
@Controller('admin/thresholds')
export class ThresholdsController {
  constructor(private readonly thresholds: ThresholdsService) {}

  @Get()
  @ApiOperation({
    summary: "Every rule's parameters in force for a tenant, and its override",
    description: `Platform-wide rules (model error spikes, queue latency, delivery failures) read tenant "${PLATFORM_TENANT}".`,
  })
  @ApiQuery({ name: 'tenant_id' })
  list(@Query('tenant_id') tenantId: string) {
    return this.thresholds.effectiveOfTenant(requiredTenant(tenantId));
  }

  @Put(':tenant_id/:rule')
  @ApiOperation({ summary: "Override some of a rule's parameters for a tenant; re-arms its firing alerts" })
  @ApiBody({ schema: openApiSchema(PutThresholdBody) })
  set(
    @Param('tenant_id') tenantId: string,
    @Param('rule') rule: string,
    @Body(new ZodBody(PutThresholdBody)) body: PutThresholdBody,
  ) {
    return this.thresholds.set(requiredTenant(tenantId), rule, body.params, body.actor, body.reason);
  }

  @Delete(':tenant_id/:rule')
  @HttpCode(204)
  @ApiOperation({ summary: 'Back to the defaults' })
  @ApiBody({ schema: openApiSchema(AuditedBody) })
  async clear(
    @Param('tenant_id') tenantId: string,
    @Param('rule') rule: string,
    @Body(new ZodBody(AuditedBody)) body: AuditedBody,
  ): Promise<void> {
    await this.thresholds.clear(requiredTenant(tenantId), rule, body.actor, body.reason);
  }
}
