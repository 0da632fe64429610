import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { Clock } from '@agentmeter/domain';
import { RecoveryLoop } from '@agentmeter/telemetry';
import { LimitsService } from '../caps/limits.service';
import { CostCapConfig } from '../config';
import { CountersStore } from '../counters/counters.store';
import { LOGGER } from '../logger';
import { RebuildService } from '../settlement/rebuild.service';
import { OverridesRepository } from '../overrides/overrides.repository';
import { SettingsRepository } from '../settings/settings.repository';
import { TimersQueue } from '../queues/timers.queue';

/**
 * BullMQ keeps its delayed jobs in the same Redis as the counters: when Redis lost its data, the timers
 * went with it. After each rebuild they are scheduled again from PostgreSQL (deterministic job ids make
 * this a no-op for timers that survived).
 *
 * Nothing else would notice a Redis restart while no admission or event arrives: a recovery loop checks the
 * counters' epoch every COST_CAP_RECOVERY_EVERY_MS and at once when Redis is back, and rebuilds (then
 * reschedules) when it is gone. docs/operations.md.
 */
@Injectable()
export class TimersRecovery implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly loop: RecoveryLoop;

  constructor(
    @Inject(CostCapConfig) config: CostCapConfig,
    @Inject(LOGGER) logger: Logger,
    private readonly rebuild: RebuildService,
    private readonly counters: CountersStore,
    private readonly settings: SettingsRepository,
    private readonly timers: TimersQueue,
    private readonly limits: LimitsService,
    private readonly overrides: OverridesRepository,
    private readonly clock: Clock,
  ) {
    rebuild.onRebuilt(() => this.reschedule());
    this.loop = new RecoveryLoop(
      'cost-cap counters and timers recovery',
      config.COST_CAP_RECOVERY_EVERY_MS,
      async () => {
        if (!(await this.counters.epoch())) await this.rebuild.ensure();
      },
      logger,
    );
  }

  onApplicationBootstrap(): void {
    this.loop.start([this.counters.redis, this.timers.connection]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.loop.stop();
  }

  /** Readiness of the timers: the last recovery check succeeded. */
  assertRecovered(): void {
    if (!this.loop.healthy()) throw new Error('counters and timers not recovered yet');
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
