import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { AlertAudience, ContactChannel } from '@agentmeter/contracts';

export interface ContactRow {
  id: string;
  tenant_id: string | null;
  audience: AlertAudience;
  channel: ContactChannel;
  email: string | null;
  url_host: string | null;
  failing_since: Date | null;
  created_at: Date;
  created_by: string;
}

export interface NewContact {
  id: string;
  tenantId: string | null;
  audience: AlertAudience;
  channel: ContactChannel;
  email: string | null;
  urlEncrypted: Buffer | null;
  urlHost: string | null;
  secretEncrypted: Buffer | null;
  createdBy: string;
}

const COLUMNS = 'id, tenant_id, audience, channel, email, url_host, failing_since, created_at, created_by';

/** alert_contacts. Ciphertexts go in and never come out of this repository (the worker decrypts its own). */
@Injectable()
export class ContactsRepository {
  constructor(private readonly db: DataSource) {}

  transaction<T>(work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /** Live contacts of a tenant, or the platform's (tenantId null). */
  async listOfTenant(tenantId: string | null): Promise<ContactRow[]> {
    return this.db.query(
      `SELECT ${COLUMNS} FROM alert_contacts
        WHERE deleted_at IS NULL AND tenant_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id`,
      [tenantId],
    );
  }

  async insert(tx: EntityManager, contact: NewContact): Promise<ContactRow> {
    const rows: ContactRow[] = await tx.query(
      `INSERT INTO alert_contacts (id, tenant_id, audience, channel, email, url_encrypted, url_host, secret_encrypted, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      [
        contact.id,
        contact.tenantId,
        contact.audience,
        contact.channel,
        contact.email,
        contact.urlEncrypted,
        contact.urlHost,
        contact.secretEncrypted,
        contact.createdBy,
      ],
    );
    return rows[0]!;
  }

  async softDelete(tx: EntityManager, tenantId: string | null, id: string, actor: string): Promise<ContactRow | null> {
    const rows: ContactRow[] = await tx.query(
      `WITH gone AS (
         UPDATE alert_contacts SET deleted_at = now(), deleted_by = $3
          WHERE id = $2 AND tenant_id IS NOT DISTINCT FROM $1 AND deleted_at IS NULL RETURNING ${COLUMNS})
       SELECT * FROM gone`,
      [tenantId, id, actor],
    );
    return rows[0] ?? null;
  }
}
