import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Redactor, type Role } from '@agentmeter/domain';

export interface ApiKeyRow {
  key_id: string;
  tenant_id: string;
  role: Role;
  name: string;
  secret_sha256: Buffer;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

/** API keys of machine clients. Lookups by key id authenticate; the other methods are tenant-scoped. */
@Injectable()
export class ApiKeysRepository {
  constructor(
    private readonly db: DataSource,
    private readonly redactor: Redactor,
  ) {}

  /** Authentication reads a key by its id before knowing the tenant, hence no tenant argument. */
  async findForAuthentication(keyId: string): Promise<ApiKeyRow | undefined> {
    const rows: ApiKeyRow[] = await this.db.query(`SELECT * FROM api_keys WHERE key_id = $1`, [keyId]);
    return rows[0];
  }

  async touch(keyId: string, at: Date): Promise<void> {
    await this.db.query(`UPDATE api_keys SET last_used_at = $2 WHERE key_id = $1`, [keyId, at]);
  }

  async insert(row: Omit<ApiKeyRow, 'created_at' | 'revoked_at' | 'last_used_at'>): Promise<ApiKeyRow> {
    const rows: ApiKeyRow[] = await this.db.query(
      `INSERT INTO api_keys (key_id, tenant_id, role, name, secret_sha256, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [
        row.key_id,
        row.tenant_id,
        row.role,
        // A key's name is free text; who created it is a JWT subject, perhaps an e-mail (docs/security.md).
        this.redactor.text(row.name).text,
        row.secret_sha256,
        this.redactor.identifier(row.created_by, 'user'),
        row.expires_at,
      ],
    );
    return rows[0]!;
  }

  /** Keys of one tenant, or of every tenant when `tenantId` is null (Admin). */
  async list(tenantId: string | null): Promise<ApiKeyRow[]> {
    return this.db.query(
      `SELECT * FROM api_keys WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY created_at DESC, key_id LIMIT 1000`,
      [tenantId],
    );
  }

  /** Revokes a key of the tenant (any tenant when null); false when there is no such key. */
  async revoke(tenantId: string | null, keyId: string, at: Date): Promise<boolean> {
    // TypeORM answers an UPDATE with [rows, affected count], not with the rows alone.
    const [rows] = (await this.db.query(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
        WHERE key_id = $2 AND ($1::text IS NULL OR tenant_id = $1) RETURNING key_id`,
      [tenantId, keyId, at],
    )) as [unknown[], number];
    return rows.length > 0;
  }
}
