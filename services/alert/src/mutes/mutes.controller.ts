import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AuditedBody, CreateMuteBody, CreateMuteTimingBody } from '@agentmeter/contracts';
import { ServiceTokenGuard } from '@agentmeter/http';
import { requiredTenant } from '../http/tenant-query';
import { openApiSchema, ZodBody } from '../http/zod-body.pipe';
import { MutesService } from './mutes.service';

@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(ServiceTokenGuard)
@Controller('admin')
export class MutesController {
  constructor(private readonly mutes: MutesService) {}

  @Get('mutes')
  @ApiOperation({ summary: "A tenant's mutes in force (all=true: also expired and cancelled ones)" })
  @ApiQuery({ name: 'tenant_id' })
  @ApiQuery({ name: 'all', required: false })
  list(@Query('tenant_id') tenantId: string, @Query('all') all?: string) {
    return this.mutes.list(requiredTenant(tenantId), all === 'true');
  }

  @Post('mutes')
  @ApiOperation({ summary: 'Mute a tenant (one rule, or every Owner rule) until ends_at; audited' })
  @ApiBody({ schema: openApiSchema(CreateMuteBody) })
  create(@Body(new ZodBody(CreateMuteBody)) body: CreateMuteBody) {
    return this.mutes.create(body);
  }

  @Delete('mutes/:id')
  @ApiOperation({ summary: 'Cancel a mute; audited (tenant_id in the query or the body)' })
  @ApiQuery({ name: 'tenant_id', required: false })
  @ApiBody({ schema: openApiSchema(AuditedBody) })
  cancel(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query('tenant_id') tenantId: string | undefined,
    @Body(new ZodBody(AuditedBody)) body: AuditedBody,
  ) {
    return this.mutes.cancel(requiredTenant(tenantId ?? body.tenant_id), id, body.actor, body.reason);
  }

  @Get('mute-timings')
  @ApiQuery({ name: 'tenant_id' })
  listTimings(@Query('tenant_id') tenantId: string) {
    return this.mutes.listTimings(requiredTenant(tenantId));
  }

  @Post('mute-timings')
  @ApiOperation({ summary: 'A recurring mute (e.g. weekends), in a time zone; audited' })
  @ApiBody({ schema: openApiSchema(CreateMuteTimingBody) })
  createTiming(@Body(new ZodBody(CreateMuteTimingBody)) body: CreateMuteTimingBody) {
    return this.mutes.createTiming(body);
  }

  @Delete('mute-timings/:id')
  @HttpCode(204)
  @ApiQuery({ name: 'tenant_id', required: false })
  @ApiBody({ schema: openApiSchema(AuditedBody) })
  async deleteTiming(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query('tenant_id') tenantId: string | undefined,
    @Body(new ZodBody(AuditedBody)) body: AuditedBody,
  ): Promise<void> {
    await this.mutes.deleteTiming(requiredTenant(tenantId ?? body.tenant_id), id, body.actor, body.reason);
  }
}
