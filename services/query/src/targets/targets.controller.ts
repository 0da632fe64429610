import { Controller, Get, Injectable, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import { type Caller, requireTenant } from '../auth/caller';
import { Id, openApiSchema, parseId, ValidBody } from '../http/validation';
import { TargetsRepository, type TargetRow } from './targets.repository';

/** At most 30 days: a phase target is a time a phase should take to pass its gate. */
const MAX_TARGET_MS = 30 * 86_400_000;

export const TargetsBody = z.object({
  targets: z
    .record(Id, z.number().int().min(1).max(MAX_TARGET_MS))
    .refine((t) => Object.keys(t).length <= 100, 'at most 100 phases')
    .describe('phase -> target time-to-gate in ms; replaces every target of the tenant ({} removes them)'),
  reason: z.string().min(1).max(2_000),
});
export type TargetsBody = z.output<typeof TargetsBody>;

export const TargetsAnswer = z.object({
  tenant_id: z.string(),
  targets: z.array(
    z.object({ phase: z.string(), target_ms: z.number(), updated_at: z.string(), updated_by: z.string() }),
  ),
});
export type TargetsAnswer = z.output<typeof TargetsAnswer>;

/**
 * Phase target times per tenant (docs/query.md "Definitions a reader would otherwise guess"): read by the
 * tenant's users, set by Owner/Admin, audited. The metrics answer compares each phase's time-to-gate with them.
 */
@Injectable()
export class TargetsService {
  constructor(
    private readonly repository: TargetsRepository,
    private readonly audit: AuditRepository,
  ) {}

  async get(caller: Caller, tenantId: string): Promise<TargetsAnswer> {
    const id = requireTenant(caller, tenantId);
    return answer(id, await this.repository.list(id));
  }

  async replace(caller: Caller, tenantId: string, body: TargetsBody): Promise<TargetsAnswer> {
    const id = requireTenant(caller, tenantId);
    const p = caller.principal;
    const auditId = await this.audit.begin({
      tenantId: id,
      ...auditActor(caller),
      action: 'tenant.phase_targets',
      target: id,
      reason: body.reason,
      params: { targets: body.targets },
      executor: 'query',
    });
    try {
      const rows = await this.repository.replace(id, body.targets, p.subject);
      await this.audit.finish(auditId, 'succeeded', `${rows.length} targets`);
      return answer(id, rows);
    } catch (error) {
      await this.audit.finish(auditId, 'failed', 'not stored');
      throw error;
    }
  }
}

function answer(tenantId: string, rows: TargetRow[]): TargetsAnswer {
  return {
    tenant_id: tenantId,
    targets: rows.map((r) => ({
      phase: r.phase,
      target_ms: Number(r.target_ms),
      updated_at: r.updated_at.toISOString(),
      updated_by: r.updated_by,
    })),
  };
}

@ApiTags('tenants')
@Controller('tenants')
export class TargetsController {
  constructor(private readonly targets: TargetsService) {}

  @Get(':tenant_id/phase-targets')
  @Allow('tenant.overview')
  @ApiOperation({ summary: "The tenant's phase target times (time-to-gate per phase)" })
  @ApiOkResponse({ schema: openApiSchema(TargetsAnswer) })
  get(@CurrentCaller() caller: Caller, @Param('tenant_id') tenantId: string): Promise<TargetsAnswer> {
    return this.targets.get(caller, parseId(tenantId, 'tenant_id'));
  }

  @Put(':tenant_id/phase-targets')
  @Allow('phase_targets.manage')
  @ApiOperation({ summary: "Replace the tenant's phase target times; Owner/Admin; audited" })
  @ApiOkResponse({ schema: openApiSchema(TargetsAnswer) })
  replace(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidBody(TargetsBody) body: TargetsBody,
  ): Promise<TargetsAnswer> {
    return this.targets.replace(caller, parseId(tenantId, 'tenant_id'), body);
  }
}
