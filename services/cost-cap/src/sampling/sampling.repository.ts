import { Injectable } from '@nestjs/common';
import type { ValidatorSamplesRequest } from '@agentmeter/contracts';
import { CostCapDatabase, type Tx } from '../db/database';

/** validator_samples and publisher_freezes: the samples of each playbook and its Publisher's freeze. */
@Injectable()
export class SamplingRepository {
  constructor(private readonly db: CostCapDatabase) {}

  /** Records the samples not recorded yet; returns how many were new. */
  async insertSamples(
    tx: Tx,
    playbook: string,
    samples: ValidatorSamplesRequest['samples'],
    now: Date,
  ): Promise<number> {
    const rows = await tx.query(
      `INSERT INTO validator_samples (playbook, sample_id, tenant_id, run_id, passed, recorded_at)
       SELECT $1, s.*, $6::timestamptz
         FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[]) AS s(sample_id, tenant_id, run_id, passed)
       ON CONFLICT (playbook, sample_id) DO NOTHING RETURNING 1`,
      [
        playbook,
        samples.map((s) => s.sample_id),
        samples.map((s) => s.tenant_id ?? null),
        samples.map((s) => s.run_id ?? null),
        samples.map((s) => s.passed),
        now,
      ],
    );
    return rows.length;
  }

  async windowCounts(tx: Tx, playbook: string, since: Date): Promise<{ samples: number; failures: number }> {
    const [counts] = await tx.query<{ samples: number; failures: number }>(
      `SELECT count(*)::int AS samples, count(*) FILTER (WHERE NOT passed)::int AS failures
         FROM validator_samples WHERE playbook = $1 AND recorded_at > $2`,
      [playbook, since],
    );
    return counts!;
  }

  /** Claims the freeze of a playbook's Publisher: false when it is frozen already. */
  async claimFreeze(
    tx: Tx,
    freeze: { playbook: string; at: Date; reason: string; samples: number; failures: number },
  ): Promise<boolean> {
    const rows = await tx.query(
      `INSERT INTO publisher_freezes (playbook, frozen_at, frozen_by, reason, samples, failures)
       VALUES ($1, $2, 'cost-cap', $3, $4, $5) ON CONFLICT (playbook) DO NOTHING RETURNING 1`,
      [freeze.playbook, freeze.at, freeze.reason, freeze.samples, freeze.failures],
    );
    return rows.length > 0;
  }

  async isFrozen(playbook: string): Promise<boolean> {
    const rows = await this.db.query(`SELECT 1 FROM publisher_freezes WHERE playbook = $1`, [playbook]);
    return rows.length > 0;
  }
}
