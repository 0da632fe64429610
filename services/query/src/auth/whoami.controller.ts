import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { scopeFor, seesObservability, type Permission, PERMISSIONS } from '@agentmeter/domain';
import { openApiSchema } from '../http/validation';
import { Allow, CurrentCaller } from './auth.guard';
import type { Caller } from './caller';

export const WhoAmI = z.object({
  subject: z.string(),
  tenant_id: z.string(),
  roles: z.array(z.string()),
  credential: z.string(),
  observability_links: z.boolean(),
  permissions: z.record(z.string(), z.enum(['all', 'own'])).describe('what this credential may use, and where'),
});

/**
 * GET /whoami: the verified caller and what its roles allow, so a frontend can show or hide panels and
 * actions without trial and error. It reads no data, which also makes it the constant baseline route of
 * bench/query.bench.ts (the same guards, no database).
 */
@ApiTags('auth')
@Controller('whoami')
export class WhoAmIController {
  @Get()
  @Allow('banners.read')
  @ApiOperation({ summary: 'The caller and its permissions' })
  @ApiOkResponse({ schema: openApiSchema(WhoAmI) })
  get(@CurrentCaller() caller: Caller): z.output<typeof WhoAmI> {
    const p = caller.principal;
    const permissions: Record<string, 'all' | 'own'> = {};
    for (const permission of Object.keys(PERMISSIONS) as Permission[]) {
      const scope = scopeFor(p.roles, permission);
      if (scope) permissions[permission] = scope;
    }
    return {
      subject: p.subject,
      tenant_id: p.tenantId,
      roles: [...p.roles],
      credential: p.credential,
      observability_links: seesObservability(p.roles),
      permissions,
    };
  }
}
