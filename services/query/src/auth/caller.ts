import type { Permission, TenantScope } from '@agentmeter/domain';
import { NotFoundError } from '@agentmeter/http';
import type { Principal } from './principal';

/** A verified principal and the tenant scope its roles give for the route being served. */
export interface Caller {
  principal: Principal;
  permission: Permission;
  scope: TenantScope;
}

/**
 * The tenant a request reads: the credential's own tenant, or for an 'all' scope the tenant named by the
 * request (null: every tenant). Naming another tenant with an 'own' scope answers 404, like a missing one.
 */
export function tenantOf(caller: Caller, requested?: string | null): string | null {
  if (caller.scope === 'all') return requested ?? null;
  if (requested !== undefined && requested !== null && requested !== caller.principal.tenantId) {
    throw new NotFoundError('not found');
  }
  return caller.principal.tenantId;
}

/** For a path naming one tenant (/tenants/{id}/...): that tenant when the caller may read it, else 404. */
export function requireTenant(caller: Caller, tenantId: string): string {
  if (caller.scope === 'all' || tenantId === caller.principal.tenantId) return tenantId;
  throw new NotFoundError(`tenant ${tenantId} not found`);
}
