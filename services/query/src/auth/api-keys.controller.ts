import { Controller, Delete, Get, HttpCode, Injectable, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Clock, mayIssueKeyFor, ROLES } from '@agentmeter/domain';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import { ForbiddenError, NotFoundError } from '@agentmeter/http';
import { CsvExport } from '../http/csv.interceptor';
import { Id, openApiSchema, parseId, ValidBody, ValidQuery } from '../http/validation';
import { ApiKeyVerifier, newApiKey } from './api-key.verifier';
import { ApiKeysRepository, type ApiKeyRow } from './api-keys.repository';
import { Allow, CurrentCaller } from './auth.guard';
import { type Caller, tenantOf } from './caller';

export const CreateApiKeyBody = z.object({
  name: z.string().min(1).max(200),
  role: z.enum(ROLES),
  tenant_id: Id.optional().describe('Admin only: the tenant the key acts for (default: your own)'),
  expires_at: z.iso.datetime({ offset: true }).optional(),
});
export type CreateApiKeyBody = z.output<typeof CreateApiKeyBody>;

export const ApiKeyOut = z.object({
  key_id: z.string(),
  tenant_id: z.string(),
  role: z.enum(ROLES),
  name: z.string(),
  created_by: z.string(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
});
export const CreatedApiKey = ApiKeyOut.extend({
  api_key: z.string().describe('shown once: send as "Authorization: Bearer <api_key>" or "X-API-Key: <api_key>"'),
});
export const ApiKeyList = z.object({ items: z.array(ApiKeyOut) });
const ListQuery = z.object({ tenant_id: Id.optional().describe('Admin only') });

@Injectable()
export class ApiKeysService {
  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly verifier: ApiKeyVerifier,
    private readonly audit: AuditRepository,
    private readonly clock: Clock,
  ) {}

  async create(caller: Caller, body: CreateApiKeyBody): Promise<z.output<typeof CreatedApiKey>> {
    const tenantId = tenantOf(caller, body.tenant_id) ?? caller.principal.tenantId;
    if (!mayIssueKeyFor(caller.principal.roles, body.role)) {
      throw new ForbiddenError(`your roles may not issue ${body.role} keys`);
    }
    const key = newApiKey();
    const auditId = await this.audit.begin(
      this.entry(caller, tenantId, 'api_key.create', key.keyId, { role: body.role, name: body.name }),
    );
    const row = await this.keys.insert({
      key_id: key.keyId,
      tenant_id: tenantId,
      role: body.role,
      name: body.name,
      secret_sha256: key.hash,
      created_by: caller.principal.subject,
      expires_at: body.expires_at ? new Date(body.expires_at) : null,
    });
    await this.audit.finish(auditId, 'succeeded', 'created');
    return { ...toOut(row), api_key: key.token };
  }

  async list(caller: Caller, tenant: string | undefined): Promise<z.output<typeof ApiKeyList>> {
    return { items: (await this.keys.list(tenantOf(caller, tenant))).map(toOut) };
  }

  async revoke(caller: Caller, keyId: string): Promise<void> {
    const tenantId = tenantOf(caller);
    const auditId = await this.audit.begin(this.entry(caller, tenantId, 'api_key.revoke', keyId, {}));
    const revoked = await this.keys.revoke(tenantId, keyId, this.clock.now());
    await this.audit.finish(auditId, revoked ? 'succeeded' : 'failed', revoked ? 'revoked' : 'no such key');
    if (!revoked) throw new NotFoundError(`API key ${keyId} not found`);
    this.verifier.forget(keyId);
  }

  private entry(
    caller: Caller,
    tenantId: string | null,
    action: string,
    target: string,
    params: Record<string, unknown>,
  ) {
    return {
      tenantId,
      ...auditActor(caller),
      action,
      target,
      reason: null,
      params,
      executor: 'query',
    };
  }
}

function toOut(row: ApiKeyRow): z.output<typeof ApiKeyOut> {
  return {
    key_id: row.key_id,
    tenant_id: row.tenant_id,
    role: row.role,
    name: row.name,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
    last_used_at: row.last_used_at?.toISOString() ?? null,
  };
}

/** API keys for machine clients: one tenant and one role each; the secret is shown once, stored hashed. */
@ApiTags('api-keys')
@Controller('api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @Allow('apikeys.manage')
  @ApiOperation({ summary: 'Issue an API key (Owners: for their tenant, not admin or support keys)' })
  @ApiCreatedResponse({ schema: openApiSchema(CreatedApiKey) })
  create(@CurrentCaller() caller: Caller, @ValidBody(CreateApiKeyBody) body: CreateApiKeyBody) {
    return this.keys.create(caller, body);
  }

  @Get()
  @Allow('apikeys.manage')
  @CsvExport({ filename: 'api-keys', rows: 'items' })
  @ApiOkResponse({ schema: openApiSchema(ApiKeyList) })
  list(@CurrentCaller() caller: Caller, @ValidQuery(ListQuery) query: z.output<typeof ListQuery>) {
    return this.keys.list(caller, query.tenant_id);
  }

  @Delete(':key_id')
  @HttpCode(204)
  @Allow('apikeys.manage')
  @ApiOperation({ summary: 'Revoke an API key (effective within AUTH_API_KEY_CACHE_MS on other replicas)' })
  async revoke(@CurrentCaller() caller: Caller, @Param('key_id') keyId: string): Promise<void> {
    await this.keys.revoke(caller, parseId(keyId, 'key_id'));
  }
}
