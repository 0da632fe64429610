import { z } from 'zod';
import { ROLES, type Role } from '@agentmeter/domain';

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
