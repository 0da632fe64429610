import { InvalidRequestError } from '@agentmeter/http';

/** A required tenant_id query parameter. */
export function requiredTenant(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new InvalidRequestError('tenant_id: required');
  }
  return value;
}

/** An optional tenant_id query parameter: absent means the platform (Admin contacts). */
export function optionalTenant(value: unknown): string | null {
  return value === undefined || value === '' ? null : requiredTenant(value);
}
