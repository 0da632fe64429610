import { z } from 'zod';

/** Roles of seed 000/001. The matrix of what each may do is in docs/security.md. */
export const Roles = ['admin', 'owner', 'op', 'bu', 'auditor', 'support', 'finance'] as const;
export type Role = (typeof Roles)[number];

/** Who is calling, from a verified credential. The tenant never comes from the request. */
export interface Principal {
  subject: string;
  tenantId: string;
  roles: ReadonlySet<Role>;
}

export const Claims = z.object({
  sub: z.string().min(1),
  tenant_id: z.string().min(1),
  roles: z.array(z.enum(Roles)).min(1),
});

export function hasAnyRole(principal: Principal, ...roles: Role[]): boolean {
  return roles.some((role) => principal.roles.has(role));
}

/** Admins read every tenant; everyone else reads only their own. */
export function readsAllTenants(principal: Principal): boolean {
  return principal.roles.has('admin') || principal.roles.has('support');
}

/** Trace ids and Grafana/Tempo links are for operators and admins only (seed 000 story 9.4). */
export function seesObservabilityLinks(principal: Principal): boolean {
  return hasAnyRole(principal, 'op', 'admin');
}
