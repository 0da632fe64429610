import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface TargetRow {
  phase: string;
  target_ms: string;
  updated_at: Date;
  updated_by: string;
}

/** A tenant's phase target times (phase_targets). */
@Injectable()
export class TargetsRepository {
  constructor(private readonly db: DataSource) {}

  async list(tenantId: string): Promise<TargetRow[]> {
    return this.db.query(
      `SELECT phase, target_ms::text AS target_ms, updated_at, updated_by FROM phase_targets
        WHERE tenant_id = $1 ORDER BY phase`,
      [tenantId],
    );
  }

  /** Replaces the tenant's targets with `targets` in one transaction (phases left out lose their target). */
  async replace(tenantId: string, targets: Record<string, number>, actor: string): Promise<TargetRow[]> {
    return this.db.transaction(async (tx) => {
      await tx.query(`DELETE FROM phase_targets WHERE tenant_id = $1`, [tenantId]);
      const phases = Object.keys(targets).sort();
      if (phases.length > 0) {
        await tx.query(
          `INSERT INTO phase_targets (tenant_id, phase, target_ms, updated_by)
           SELECT $1, phase, target_ms, $4 FROM unnest($2::text[], $3::bigint[]) AS t(phase, target_ms)`,
          [tenantId, phases, phases.map((p) => targets[p]), actor],
        );
      }
      return tx.query(
        `SELECT phase, target_ms::text AS target_ms, updated_at, updated_by FROM phase_targets
          WHERE tenant_id = $1 ORDER BY phase`,
        [tenantId],
      );
    });
  }
}
