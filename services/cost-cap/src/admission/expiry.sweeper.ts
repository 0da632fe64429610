import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { Clock } from '@agentmeter/domain';
import { CountersRebuildingError, CountersStore } from '../counters/counters.store';
import { RebuildService } from '../counters/rebuild.service';
import { CostCapDatabase } from '../db/database';
import { LOGGER } from '../logger';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { LedgerRepository } from '../spend/ledger.repository';

const SWEEP_MS = 1_000;
/** PostgreSQL rows still open this long after expiry lost their Redis hold (Redis lost data): close them. */
const FORGOTTEN_AFTER_MS = 60_000;

/**
 * Expires reservations never committed or released: every replica sweeps every second; the Redis script
 * pops due reservations atomically, so each hold is released once, and their rows are marked expired in
 * the same counters transaction.
 */
@Injectable()
export class ExpirySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: CostCapDatabase,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly rebuild: RebuildService,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .then(() => undefined)
        .catch((error: unknown) => {
          if (error instanceof CountersRebuildingError) void this.rebuild.ensure().catch(() => undefined);
          else this.logger.warn({ err: error }, 'reservation expiry sweep failed');
        })
        .finally(() => (this.running = null));
    }, SWEEP_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Releases every reservation due at `now`; returns how many. */
  async sweep(now: Date = this.clock.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.db.withCounters(
        async (tx) => {
          const ids = await this.counters.expireDue(now);
          await this.ledger.expireReservations(tx, ids, now);
          return ids.length;
        },
        { asyncCommit: true },
      );
      total += expired;
      if (expired < 500) break;
    }
    await this.db.transaction((tx) =>
      this.ledger.expireForgotten(tx, new Date(now.getTime() - FORGOTTEN_AFTER_MS), now),
    );
    this.metrics.reservationsExpired.inc(total);
    this.metrics.reservationsOpen.set(await this.counters.openReservations());
    return total;
  }
}
