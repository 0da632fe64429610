import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { Clock } from '@agentmeter/domain';
import { LOGGER } from '../logger';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { LedgerRepository } from '../ledger/ledger.repository';

const SWEEP_MS = 1_000;

/**
 * Marks reservations past their expiry `expired`, every second on every replica. Their holds stay counted
 * until they are committed or released: a call that outlives its reservation is still paid for, and a cap
 * holds whatever the timing (docs/cost-cap.md "Reservations and holds"). Nothing changes in Redis.
 */
@Injectable()
export class ExpirySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(
    private readonly ledger: LedgerRepository,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .then(() => undefined)
        .catch((error: unknown) => this.logger.warn({ err: error }, 'reservation expiry sweep failed'))
        .finally(() => (this.running = null));
    }, SWEEP_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Marks every reservation due at `now` expired; returns how many. */
  async sweep(now: Date = this.clock.now()): Promise<number> {
    const expired = await this.ledger.expireDue(now);
    this.metrics.reservationsExpired.inc(expired);
    this.metrics.reservationsOpen.set(await this.ledger.countUnsettled());
    return expired;
  }
}
