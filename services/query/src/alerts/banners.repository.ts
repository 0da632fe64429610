import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { UnavailableError } from '../errors/problems';

const PG_UNDEFINED_TABLE = '42P01';

/**
 * In-app banners, written by the alert service into its table `alert_banners` (its migration); read here
 * as whole rows (to_jsonb) so that columns it adds later do not break this read.
 */
@Injectable()
export class BannersRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Banners for the tenant's users (audience 'owner'), plus, for Admins, the platform's Admin banners of
   * every tenant (audience 'admin').
   */
  async list(
    tenantId: string,
    withAdminBanners: boolean,
    includeResolved: boolean,
    limit: number,
  ): Promise<Array<Record<string, unknown>>> {
    try {
      const rows: Array<{ row: Record<string, unknown> }> = await this.db.query(
        `SELECT to_jsonb(b) AS row FROM alert_banners b
          WHERE ((b.tenant_id = $1 AND b.audience = 'owner') OR ($2 AND b.audience = 'admin'))
            AND ($3 OR b.resolved_at IS NULL)
          ORDER BY b.created_at DESC LIMIT $4`,
        [tenantId, withAdminBanners, includeResolved, limit],
      );
      return rows.map((r) => r.row);
    } catch (error) {
      if ((error as { code?: string }).code === PG_UNDEFINED_TABLE) {
        throw new UnavailableError('banners are not available: the alert service has not created them yet');
      }
      throw error;
    }
  }
}
