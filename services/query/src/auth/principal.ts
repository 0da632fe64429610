import { z } from 'zod';
import { ROLES, scopeFor, seesObservability, type Permission, type Role } from '@agentmeter/domain';

export { ROLES as Roles, type Role };

/** Who is calling, from a verified credential. The tenant never comes from the request. */
export interface Principal {
  subject: string;
  tenantId: string;
  roles: ReadonlySet<Role>;
  /** What authenticated the request: `jwt:<sub>` or `key:<key id>` (the rate limit and the audit log use it). */
  credential: string;
}

export const Claims = z.object({
  sub: z.string().min(1),
  tenant_id: z.string().min(1),
  roles: z.array(z.enum(ROLES)).min(1),
});

export function hasAnyRole(principal: Principal, ...roles: Role[]): boolean {
  return roles.some((role) => principal.roles.has(role));
}

/** Roles that read every tenant's runs (Admin, and Support for troubleshooting). */
export function readsAllTenants(principal: Principal, permission: Permission = 'runs.read'): boolean {
  return scopeFor(principal.roles, permission) === 'all';
}

/** Trace ids and Grafana/Tempo links are for operators and admins only (docs/security.md "Properties"). */
export function seesObservabilityLinks(principal: Principal): boolean {
  return seesObservability(principal.roles);
}
