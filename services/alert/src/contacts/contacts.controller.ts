import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AuditedBody, CreateContactBody } from '@agentmeter/contracts';
import { KeepBodyFields } from '@agentmeter/http';
import { ServiceTokenGuard } from '@agentmeter/http';
import { optionalTenant } from '../http/tenant-query';
import { openApiSchema, ZodBody } from '../http/zod-body.pipe';
import { ContactsService } from './contacts.service';

@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(ServiceTokenGuard)
@Controller('admin/contacts')
export class ContactsController {
  constructor(private readonly contacts: ContactsService) {}

  @Get()
  @ApiOperation({ summary: "A tenant's contacts, or the platform Admins' without tenant_id" })
  @ApiQuery({ name: 'tenant_id', required: false })
  list(@Query('tenant_id') tenantId?: string) {
    return this.contacts.list(optionalTenant(tenantId));
  }

  @Post()
  @ApiOperation({
    summary: 'Add a contact; webhook and Slack URLs are SSRF-checked and stored encrypted',
    description: 'A webhook contact answers with its signing secret once (generated when not given).',
  })
  @ApiBody({ schema: openApiSchema(CreateContactBody) })
  // The destination itself: an e-mail address alerts are sent to, or a URL and secret stored encrypted.
  @KeepBodyFields('target', 'signing_secret')
  create(@Body(new ZodBody(CreateContactBody)) body: CreateContactBody) {
    return this.contacts.create(body);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiQuery({ name: 'tenant_id', required: false })
  @ApiBody({ schema: openApiSchema(AuditedBody) })
  async remove(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query('tenant_id') tenantId: string | undefined,
    @Body(new ZodBody(AuditedBody)) body: AuditedBody,
  ): Promise<void> {
    await this.contacts.delete(optionalTenant(tenantId ?? body.tenant_id ?? undefined), id, body.actor, body.reason);
  }
}
