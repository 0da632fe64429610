import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface TenantSettings {
  tenant_id: string;
  name: string | null;
  time_zone: string;
  owner_sees_tokens: boolean;
}

/** Tenant rows and their settings. */
@Injectable()
export class TenantsRepository {
  constructor(private readonly db: DataSource) {}

  async settings(tenantId: string): Promise<TenantSettings | undefined> {
    const rows: TenantSettings[] = await this.db.query(
      `SELECT tenant_id, name, time_zone, owner_sees_tokens FROM tenants WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0];
  }

  async updateSettings(tenantId: string, ownerSeesTokens: boolean): Promise<TenantSettings | undefined> {
    // TypeORM answers an UPDATE with [rows, affected count].
    const [rows] = (await this.db.query(
      `UPDATE tenants SET owner_sees_tokens = $2 WHERE tenant_id = $1
       RETURNING tenant_id, name, time_zone, owner_sees_tokens`,
      [tenantId, ownerSeesTokens],
    )) as [TenantSettings[], number];
    return rows[0];
  }
}
