import { Injectable } from '@nestjs/common';
import { Clock } from '@agentmeter/domain';
import { type Crossing, CrossingsService } from '../crossings/crossings.service';
import { CostCapDatabase, type Tx, type TxOptions } from '../db/database';
import { OutboxPublisher } from '../outbox/outbox.publisher';
import { RebuildService } from './rebuild.service';

/** What a step's work returns: its own result, and the crossings the counters it changed have reached. */
export interface StepResult<T> {
  value: T;
  crossings?: Crossing[];
}

/**
 * The one way to change the Redis counters (docs/cost-cap.md "Code layout: edges, services, one transaction step"): lock → ledger →
 * crossings → outbox. The work runs in a PostgreSQL transaction holding the counters lock shared, writes
 * the ledger rows that justify its Redis change and makes it; the crossings it reports are claimed in the
 * same transaction (their messages enqueued in the outbox); after the commit the claimed ones are counted
 * and the outbox publisher is woken. A rebuild running meanwhile (or a counter key gone missing) makes the
 * whole step run again, against the rebuilt counters, for up to `retryMs`.
 */
@Injectable()
export class CountersTransaction {
  constructor(
    private readonly db: CostCapDatabase,
    private readonly crossings: CrossingsService,
    private readonly outbox: OutboxPublisher,
    private readonly rebuild: RebuildService,
    private readonly clock: Clock,
  ) {}

  async run<T>(
    work: (tx: Tx) => Promise<StepResult<T>>,
    options: TxOptions & { retryMs?: number } = {},
  ): Promise<{ value: T; claimed: Crossing[] }> {
    const { retryMs, ...txOptions } = options;
    return this.finish(await this.rebuild.retrying(() => this.attempt(work, txOptions), retryMs));
  }

  /** One attempt, not retried: a rebuild running makes it throw CountersRebuildingError (nothing changed). */
  async once<T>(
    work: (tx: Tx) => Promise<StepResult<T>>,
    options: TxOptions = {},
  ): Promise<{ value: T; claimed: Crossing[] }> {
    return this.finish(await this.attempt(work, options));
  }

  private attempt<T>(work: (tx: Tx) => Promise<StepResult<T>>, options: TxOptions) {
    return this.db.withCounters(async (tx) => {
      const { value, crossings = [] } = await work(tx);
      const claimed = await this.crossings.claim(tx, crossings, this.clock.now());
      return { value, attempted: crossings, claimed };
    }, options);
  }

  /** After the commit: the claimed crossings are counted, their messages published. */
  private finish<T>({ value, attempted, claimed }: { value: T; attempted: Crossing[]; claimed: Crossing[] }) {
    this.crossings.committed(attempted, claimed);
    if (claimed.length > 0) this.outbox.kick();
    return { value, claimed };
  }
}
