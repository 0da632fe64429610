import {
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  ParseIntPipe,
  Post,
  Put,
  Query,
  DefaultValuePipe,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AuditedRequest, LadderRequest, PutCapsRequest, RaiseRequest } from '@agentmeter/contracts';
import { InvalidRequestError } from '@agentmeter/http';
import { openApi, ZodPipe } from '../http/zod';
import { OverridesService } from './overrides.service';

const GUARD =
  'Operators reach it through the query API, whose role checks guard it; cost-cap itself only checks the shared service token.';

/** Overrides with audit: permanent caps, temporary raises, pause, model ladder (docs/cost-cap.md "HTTP API"). */
@ApiTags('overrides')
@ApiBearerAuth()
@Controller('v1')
export class OverridesController {
  constructor(private readonly overrides: OverridesService) {}

  @Get('tenants/:tenant_id/caps')
  @ApiOperation({ summary: "A tenant's caps, today's spend, raises in force, pause and ladder", description: GUARD })
  state(@Param('tenant_id') tenantId: string) {
    return this.overrides.state(tenantId);
  }

  @Put('tenants/:tenant_id/caps')
  @ApiOperation({
    summary: 'Set caps permanently (tenant, or project defaults for runs) and the time zone',
    description: `An absent field is unchanged, null removes the cap. Audited. ${GUARD}`,
  })
  @ApiBody({ schema: openApi(PutCapsRequest) })
  putCaps(@Param('tenant_id') tenantId: string, @Body(new ZodPipe(PutCapsRequest)) body: PutCapsRequest) {
    return this.overrides.putCaps(tenantId, body);
  }

  @Post('tenants/:tenant_id/overrides')
  @ApiOperation({
    summary: 'Raise a cap temporarily (72 h by default)',
    description: `In force at once on every replica, gone at expires_at by itself. Lifts today's block when the new daily limit is above the spend. Audited. ${GUARD}`,
  })
  @ApiBody({ schema: openApi(RaiseRequest) })
  raise(@Param('tenant_id') tenantId: string, @Body(new ZodPipe(RaiseRequest)) body: RaiseRequest) {
    return this.overrides.raise(tenantId, body);
  }

  @Post('overrides/:override_id/revoke')
  @HttpCode(200)
  @ApiOperation({ summary: 'End a temporary raise before its expiry', description: `Audited. ${GUARD}` })
  @ApiBody({ schema: openApi(AuditedRequest) })
  revoke(@Param('override_id') overrideId: string, @Body(new ZodPipe(AuditedRequest)) body: AuditedRequest) {
    return this.overrides.revoke(overrideId, body);
  }

  @Post('tenants/:tenant_id/pause')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Pause a tenant: every admission is denied until unpaused',
    description: `Audited. ${GUARD}`,
  })
  @ApiBody({ schema: openApi(AuditedRequest) })
  pause(@Param('tenant_id') tenantId: string, @Body(new ZodPipe(AuditedRequest)) body: AuditedRequest) {
    return this.overrides.pause(tenantId, body);
  }

  @Post('tenants/:tenant_id/unpause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Unpause a tenant', description: `Audited. ${GUARD}` })
  @ApiBody({ schema: openApi(AuditedRequest) })
  unpause(@Param('tenant_id') tenantId: string, @Body(new ZodPipe(AuditedRequest)) body: AuditedRequest) {
    return this.overrides.unpause(tenantId, body);
  }

  @Put('tenants/:tenant_id/model-ladder')
  @ApiOperation({ summary: "Replace the tenant's model downgrade ladder", description: `Audited. ${GUARD}` })
  @ApiBody({ schema: openApi(LadderRequest) })
  setLadder(@Param('tenant_id') tenantId: string, @Body(new ZodPipe(LadderRequest)) body: LadderRequest) {
    return this.overrides.setLadder(tenantId, body);
  }

  @Get('tenants/:tenant_id/audit')
  @ApiOperation({ summary: "The tenant's cap audit, newest first", description: GUARD })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  audit(
    @Param('tenant_id') tenantId: string,
    @Query('limit', new DefaultValuePipe(100), new ParseIntPipe({ exceptionFactory: () => badLimit() })) limit: number,
  ) {
    return this.overrides.audit(tenantId, limit);
  }

  @Post('playbooks/:playbook/unfreeze')
  @HttpCode(200)
  @ApiOperation({ summary: "Unfreeze a playbook's Publisher", description: `Audited. ${GUARD}` })
  @ApiBody({ schema: openApi(AuditedRequest) })
  unfreeze(@Param('playbook') playbook: string, @Body(new ZodPipe(AuditedRequest)) body: AuditedRequest) {
    return this.overrides.unfreeze(playbook, body);
  }
}

function badLimit(): InvalidRequestError {
  return new InvalidRequestError('limit: a whole number from 1 to 1000');
}
