import { Injectable } from '@nestjs/common';
import { Clock } from '@agentmeter/domain';
import { LimitsService } from '../caps/limits.service';
import { CountersStore } from '../counters/counters.store';
import { CrossingsService } from '../crossings/crossings.service';
import { CountersTransaction } from '../settlement/counters-transaction';
import { SettingsCache } from '../settings/settings.cache';
import { SettingsRepository } from '../settings/settings.repository';
import { LedgerRepository } from '../ledger/ledger.repository';

export type WallTimeOutcome = { status: 'done' } | { status: 'later'; at: Date };

/**
 * Wall-time caps (docs/cost-cap.md "Crossings, commands and alerts"): they must fire even when a run goes silent, so
 * they are timers, not checks on events. At 80 % a cap_warning; at 100 % the run is stopped (admission
 * denies it from then on), a cap_hit is published and the Coordinator is told to short-circuit it.
 */
@Injectable()
export class WallTimeService {
  constructor(
    private readonly repository: SettingsRepository,
    private readonly limits: LimitsService,
    private readonly step: CountersTransaction,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly crossings: CrossingsService,
    private readonly cache: SettingsCache,
    private readonly clock: Clock,
  ) {}

  async fire(tenantId: string, runId: string, threshold: 80 | 100): Promise<WallTimeOutcome> {
    const now = this.clock.now();
    const run = await this.repository.findRun(tenantId, runId);
    if (!run || run.finishedAt || !run.startedAt || run.stoppedReason) return { status: 'done' };
    const { limits } = await this.limits.context(tenantId, run.projectId, runId, now, now, run.caps);
    const limitS = limits.runWallTimeS.value;
    if (limitS === null) return { status: 'done' };
    const due = new Date(run.startedAt.getTime() + Math.floor((Number(limitS) * 1000 * threshold) / 100));
    // Early: the cap was raised since the timer was set, or clocks disagree by a little.
    if (now.getTime() < due.getTime()) return { status: 'later', at: due };

    const elapsedS = BigInt(Math.floor((now.getTime() - run.startedAt.getTime()) / 1000));
    const crossing = this.crossings.wallTime(
      { tenantId, projectId: run.projectId, runId, limits },
      threshold,
      limitS,
      elapsedS,
    );
    await this.step.run(async (tx) => {
      if (threshold === 100 && (await this.ledger.stopRun(tx, tenantId, runId, 'wall_time', now))) {
        await this.counters.setStop(tenantId, runId, 'wall_time');
      }
      return { value: undefined, crossings: [crossing] };
    });
    this.cache.forgetRun(tenantId, runId);
    return { status: 'done' };
  }
}
