import { Controller, Injectable, Param, Patch } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import { type Caller, requireTenant } from '../auth/caller';
import { NotFoundError } from '@agentmeter/http';
import { openApiSchema, parseId, ValidBody } from '../http/validation';
import { TenantsRepository } from './tenants.repository';
import { ViewPolicy } from './view.policy';

export const SettingsBody = z.object({
  owner_sees_tokens: z.boolean().describe('false: Owners see only $ and time, no raw token counts'),
  reason: z.string().min(1).max(2_000),
});
export type SettingsBody = z.output<typeof SettingsBody>;
export const Settings = z.object({ tenant_id: z.string(), owner_sees_tokens: z.boolean(), time_zone: z.string() });

@Injectable()
export class TenantSettingsService {
  constructor(
    private readonly tenants: TenantsRepository,
    private readonly views: ViewPolicy,
    private readonly audit: AuditRepository,
  ) {}

  async update(caller: Caller, tenantId: string, body: SettingsBody): Promise<z.output<typeof Settings>> {
    const id = requireTenant(caller, tenantId);
    const auditId = await this.audit.begin({
      tenantId: id,
      ...auditActor(caller),
      action: 'tenant.settings',
      target: id,
      reason: body.reason,
      params: { owner_sees_tokens: body.owner_sees_tokens },
      executor: 'query',
    });
    const row = await this.tenants.updateSettings(id, body.owner_sees_tokens);
    await this.audit.finish(auditId, row ? 'succeeded' : 'failed', row ? 'updated' : 'no such tenant');
    if (!row) throw new NotFoundError(`tenant ${tenantId} not found`);
    this.views.forget(id);
    return { tenant_id: row.tenant_id, owner_sees_tokens: row.owner_sees_tokens, time_zone: row.time_zone };
  }
}

@ApiTags('tenants')
@Controller('tenants')
export class TenantsController {
  constructor(private readonly settings: TenantSettingsService) {}

  @Patch(':tenant_id/settings')
  @Allow('tenant.settings')
  @ApiOperation({ summary: "A tenant's settings (whether Owners see raw tokens); audited" })
  @ApiOkResponse({ schema: openApiSchema(Settings) })
  update(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidBody(SettingsBody) body: SettingsBody,
  ) {
    return this.settings.update(caller, parseId(tenantId, 'tenant_id'), body);
  }
}
