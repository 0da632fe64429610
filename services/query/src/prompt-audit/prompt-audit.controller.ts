import { Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { openApiSchema, parseId, ValidBody, ValidQuery } from '../http/validation';
import { PromptAuditBody, PromptAuditPage, PromptAuditQuery, PromptAuditSettingAnswer } from './prompt-audit.schemas';
import { PromptAuditService } from './prompt-audit.service';

/**
 * A tenant's prompt audit (docs/events.md "Prompt audit"): Admin and the tenant's Owners only. The texts have
 * no CSV form (an export would copy them out of the retention ingest enforces).
 */
@ApiTags('tenants')
@Controller('tenants/:tenant_id/prompt-audit')
export class PromptAuditController {
  constructor(private readonly promptAudit: PromptAuditService) {}

  @Get()
  @Allow('prompt_audit.read')
  @ApiOperation({ summary: "The tenant's prompt audit setting and its redacted prompt texts, newest first" })
  @ApiOkResponse({ schema: openApiSchema(PromptAuditPage) })
  list(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidQuery(PromptAuditQuery) query: PromptAuditQuery,
  ): Promise<PromptAuditPage> {
    return this.promptAudit.list(caller, parseId(tenantId, 'tenant_id'), query);
  }

  @Put()
  @Allow('prompt_audit.manage')
  @ApiOperation({ summary: 'Turn the prompt audit on or off, and set its retention in days; audited' })
  @ApiOkResponse({ schema: openApiSchema(PromptAuditSettingAnswer) })
  update(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidBody(PromptAuditBody) body: PromptAuditBody,
  ): Promise<PromptAuditSettingAnswer> {
    return this.promptAudit.update(caller, parseId(tenantId, 'tenant_id'), body);
  }
}
