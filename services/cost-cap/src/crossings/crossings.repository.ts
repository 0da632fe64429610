import { Injectable } from '@nestjs/common';
import type { Tx } from '../db/database';
import type { Crossing } from './crossings.service';

/** cap_crossings: one row per crossing ever claimed (the claim that makes "once" hold across replicas). */
@Injectable()
export class CrossingsRepository {
  /** Inserts the crossings not claimed yet; returns the ids this transaction claimed. */
  async claim(tx: Tx, crossings: Crossing[], now: Date): Promise<Set<string>> {
    const rows = await tx.query<{ crossing_id: string }>(
      `INSERT INTO cap_crossings (crossing_id, tenant_id, project_id, run_id, scope, cap, threshold, day, limit_value,
         observed, resets_at, override_id, crossed_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::smallint[],
         $8::date[], $9::bigint[], $10::bigint[], $11::timestamptz[], $12::uuid[], $13::timestamptz[])
       ON CONFLICT (crossing_id) DO NOTHING
       RETURNING crossing_id`,
      [
        crossings.map((c) => c.id),
        crossings.map((c) => c.tenantId),
        crossings.map((c) => c.projectId),
        crossings.map((c) => c.runId),
        crossings.map((c) => c.scope),
        crossings.map((c) => c.cap),
        crossings.map((c) => c.threshold),
        crossings.map((c) => c.day),
        crossings.map((c) => c.limit.toString()),
        crossings.map((c) => c.observed.toString()),
        crossings.map((c) => c.resetsAt),
        crossings.map((c) => c.override?.id ?? null),
        crossings.map(() => now),
      ],
    );
    return new Set(rows.map((row) => row.crossing_id));
  }
}
