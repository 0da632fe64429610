import { Injectable } from '@nestjs/common';
import { Clock } from '@agentmeter/domain';
import { LimitsService } from '../caps/limits.service';
import { RebuildService } from '../settlement/rebuild.service';
import { OverridesRepository } from '../overrides/overrides.repository';
import { SettingsRepository } from '../settings/settings.repository';
import { TimersQueue } from '../queues/timers.queue';

/**
 * BullMQ keeps its delayed jobs in the same Redis as the counters: when Redis lost its data, the timers
 * went with it. After each rebuild they are scheduled again from PostgreSQL (deterministic job ids make
 * this a no-op for timers that survived).
 */
@Injectable()
export class TimersRecovery {
  constructor(
    rebuild: RebuildService,
    private readonly settings: SettingsRepository,
    private readonly timers: TimersQueue,
    private readonly limits: LimitsService,
    private readonly overrides: OverridesRepository,
    private readonly clock: Clock,
  ) {
    rebuild.onRebuilt(() => this.reschedule());
  }

  async reschedule(): Promise<void> {
    const now = this.clock.now();
    for (const run of await this.settings.runningRunsOfAllTenants()) {
      const { limits } = await this.limits.context(run.tenantId, run.projectId, run.runId, now, now, run.caps);
      const limit = limits.runWallTimeS.value;
      if (limit !== null) await this.timers.scheduleWallTime(run.tenantId, run.runId, run.startedAt!, limit);
    }
    for (const override of await this.overrides.pendingExpiriesOfAllTenants()) {
      await this.timers.scheduleOverrideExpiry(override.override_id, override.expires_at);
    }
  }
}
