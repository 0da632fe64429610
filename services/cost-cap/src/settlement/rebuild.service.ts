import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { addDays, Clock } from '@agentmeter/domain';
import { CostCapConfig } from '../config';
import { CostCapDatabase } from '../db/database';
import { LOGGER } from '../logger';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { LedgerRepository } from '../ledger/ledger.repository';
import {
  type CounterScope,
  CountersMissingError,
  CountersRebuildingError,
  CountersStore,
} from '../counters/counters.store';

/** How long a caller waits for a rebuild before answering "retry later". */
const WAIT_FOR_REBUILD_MS = 5_000;

/**
 * Rebuilds the Redis counters from PostgreSQL, at start-up and whenever a script finds the epoch gone
 * (Redis restarted without its data, was flushed, or failed over to an empty replica).
 *
 * Protocol, and why nothing is admitted on a wrong count:
 * 1. Without an epoch every script refuses (REBUILDING): nothing is reserved, released or counted, so
 *    admission answers 503 + Retry-After and the consumer waits. No decision is taken on partial counters.
 * 2. The rebuild takes the counters lock exclusively in PostgreSQL. Counter writers hold it shared for their
 *    whole transaction (ledger or reservation rows + the Redis script), so the rebuild waits for writers in
 *    flight and new ones wait for it: the snapshot it reads has every committed row and nothing half-done.
 * 3. It deletes what is left of the counters, writes the snapshot (committed spend of recent tenant-days and
 *    active runs, holds of open unexpired reservations) and only then sets a new epoch, and commits.
 * 4. Entries added in an earlier epoch carry that epoch in their "applied" marker; a new epoch makes the
 *    markers stale, which is right: the snapshot counts exactly the committed rows.
 * Several replicas may ask at once; the lock serialises them and a replica that finds an epoch set by
 * another skips its own rebuild.
 *
 * One key at a time (load): a script that needs a run or tenant-day key Redis lacks (one key lost, or expired,
 * or a new run) answers MISSING instead of reading zeros. The key is then loaded from the ledger under the
 * same exclusive lock (so no settle is half-done), with a new generation: a reservation whose hold was
 * added to the key before it went missing and whose row is written after the load sees the generation
 * change and is voided and retried (AdmissionService), exactly like an epoch change.
 */
@Injectable()
export class RebuildService implements OnModuleInit {
  private inFlight: Promise<void> | null = null;
  private readonly listeners: Array<() => Promise<void>> = [];

  constructor(
    @Inject(CostCapConfig) private readonly config: CostCapConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly db: CostCapDatabase,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
  ) {}

  /** Before the consumer starts and the HTTP server listens (onModuleInit precedes both). */
  async onModuleInit(): Promise<void> {
    await this.startup();
  }

  /** Work to redo after a rebuild (timers that lived in the same Redis). */
  onRebuilt(listener: () => Promise<void>): void {
    this.listeners.push(listener);
  }

  /** Start-up: always rebuild (another replica's counters may be from a Redis that restarted). */
  async startup(): Promise<void> {
    await this.counters.dropEpoch();
    await this.run('startup');
  }

  /** Rebuilds unless another process already did; concurrent calls share one rebuild. */
  ensure(): Promise<void> {
    this.inFlight ??= this.run('lost').finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /**
   * Runs `work`; when the counters are being rebuilt, waits for the rebuild and runs it again. Throws
   * CountersRebuildingError when the rebuild takes longer than the caller can wait.
   */
  async retrying<T>(work: () => Promise<T>, waitMs = WAIT_FOR_REBUILD_MS): Promise<T> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        return await work();
      } catch (error) {
        if (error instanceof CountersMissingError) {
          if (Date.now() >= deadline) throw new CountersRebuildingError();
          await this.load(error.scopes);
          continue;
        }
        if (!(error instanceof CountersRebuildingError)) throw error;
        const left = deadline - Date.now();
        if (left <= 0) throw error;
        const rebuilt = await Promise.race([
          this.ensure().then(() => true),
          new Promise<boolean>((resolve) => setTimeout(resolve, left, false).unref()),
        ]);
        if (!rebuilt) throw error;
      }
    }
  }

  /**
   * Loads counter keys from the ledger, under the counters lock held exclusively: those absent (unless another
   * replica loaded them first), and with `force` those present too (a hold Redis lost from a key that still
   * counts it). A hold whose own hash was lost gets it back, and its other key is reloaded as well.
   */
  async load(scopes: CounterScope[], force = false): Promise<void> {
    if (scopes.length === 0) return;
    const loaded = await this.db.exclusiveCounters(async (tx) => {
      const epoch = await this.counters.epoch();
      if (!epoch) return 0; // the whole counters are gone: the caller's retry rebuilds them
      const queue = scopes.map((scope) => ({ scope, force }));
      const done = new Set<string>();
      while (queue.length > 0) {
        const { scope, force: forced } = queue.shift()!;
        const key = this.counters.scopeKey(scope);
        if (done.has(key)) continue; // loaded in this pass: it counts every unsettled hold of its scope
        const lost = await this.counters.load(epoch, await this.ledger.scopeLoad(tx, scope), forced);
        if (lost === null) continue;
        done.add(key);
        for (const hold of lost) {
          const other: CounterScope =
            scope.kind === 'run'
              ? { kind: 'day', tenantId: hold.tenantId, day: hold.day }
              : { kind: 'run', tenantId: hold.tenantId, runId: hold.runId };
          queue.push({ scope: other, force: true });
        }
      }
      return done.size;
    });
    if (loaded > 0) {
      this.metrics.scopeLoads.inc(loaded);
      this.logger.debug({ scopes: scopes.length, loaded, force }, 'counter keys loaded from the ledger');
    }
  }

  private async run(cause: 'startup' | 'lost'): Promise<void> {
    const started = process.hrtime.bigint();
    const now = this.clock.now();
    const rebuilt = await this.db.exclusiveCounters(async (tx) => {
      if (cause === 'lost' && (await this.counters.epoch())) return null;
      const today = now.toISOString().slice(0, 10);
      // Every zone's current day is within a day of UTC's; two back also covers reservations made
      // yesterday in the zones furthest west.
      const snapshot = await this.ledger.snapshot(
        tx,
        addDays(today, -2),
        new Date(now.getTime() - this.config.COST_CAP_RUN_IDLE_DAYS * 86_400_000),
      );
      const epoch = await this.counters.writeSnapshot(snapshot);
      return { epoch, runs: snapshot.runs.length, days: snapshot.days.length, held: snapshot.reservations.length };
    });
    if (!rebuilt) return;
    this.metrics.rebuilds.inc({ cause });
    this.metrics.rebuildSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    const level = cause === 'lost' ? 'warn' : 'info';
    this.logger[level]({ cause, ...rebuilt }, 'spend counters rebuilt from the ledger');
    for (const listener of this.listeners) {
      await listener().catch((error: unknown) => this.logger.error({ err: error }, 'after-rebuild work failed'));
    }
  }
}
