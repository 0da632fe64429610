import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface TenantCapApproaching {
  scope: 'tenant';
  tenant_id: string;
  project_id: null;
  run_id: null;
  cap: string;
  used: string;
  limit: string;
  ratio: number;
}

/**
 * Tenant daily caps come from cost-cap's tables (issue "Cost-cap"), which its own migration creates. Until
 * they exist in a deployment, the Admin Overview shows run caps only and says so in its notes.
 */
@Injectable()
export class CapsReader {
  constructor(private readonly db: DataSource) {}

  async tenantCapsApproaching(
    _tenantId: string | null,
    _day: string,
    _ratio: number,
  ): Promise<{ available: true; rows: TenantCapApproaching[] } | { available: false; rows: []; note: string }> {
    return { available: false, rows: [], note: 'tenant daily caps: cost-cap tables not present; run caps only' };
  }
}
