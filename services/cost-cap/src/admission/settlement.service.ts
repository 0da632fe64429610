import { Injectable } from '@nestjs/common';
import type {
  CommitRequest,
  CommitResponse,
  ExtendRequest,
  ExtendResponse,
  ReserveRequest,
  ScopeState as WireScope,
} from '@agentmeter/contracts';
import { Clock, formatUsd, nextDayStart, parseUsd } from '@agentmeter/domain';
import { ConflictError, NotFoundError } from '@agentmeter/http';
import { LimitsService } from '../caps/limits.service';
import { CountersStore } from '../counters/counters.store';
import { CrossingsService } from '../crossings/crossings.service';
import type { Tx } from '../db/database';
import { type CostSource, eventEntryKey, LedgerRepository, type ReservationRow } from '../ledger/ledger.repository';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { PricingService } from '../pricing/pricing.service';
import { CountersTransaction } from '../settlement/counters-transaction';
import { RebuildService } from '../settlement/rebuild.service';
import { unsettled, wireScopes } from './admission.scopes';

type CommitOutcome =
  | { kind: 'repeat'; previous: { tokens: string; cost_micros: string } | null; scopes: WireScope[] }
  | {
      kind: 'committed';
      accounted: { tokens: bigint; cost: bigint };
      isNew: boolean;
      late: boolean;
      lostHold: ReservationRow | null;
      scopes: WireScope[];
    };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What happens to a reservation after it was answered (docs/cost-cap.md "Reservations and holds"):
 * commit() accounts the actual spend in the ledger and releases the hold, release() only releases,
 * extend() moves the expiry. Every change of a hold goes through the one counters transaction step.
 */
@Injectable()
export class SettlementService {
  constructor(
    private readonly step: CountersTransaction,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly limits: LimitsService,
    private readonly crossings: CrossingsService,
    private readonly pricing: PricingService,
    private readonly rebuild: RebuildService,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
  ) {}

  commit(reservationId: string, request: CommitRequest): Promise<CommitResponse> {
    return this.timed('commit', () => this.account(reservationId, request));
  }

  release(reservationId: string): Promise<{ reservation_id: string; status: 'released' | 'committed' | 'lapsed' }> {
    return this.timed('release', () => this.unhold(reservationId));
  }

  /**
   * Moves an unsettled reservation's expiry to now + ttl_s (an expired one is open again). Its hold never
   * stopped counting (docs/cost-cap.md "Reservations and holds"): extending only says the call is still running.
   */
  async extend(reservationId: string, request: ExtendRequest): Promise<ExtendResponse> {
    if (!UUID.test(reservationId)) throw new NotFoundError(`reservation ${reservationId} not found`);
    const expiresAt = new Date(this.clock.now().getTime() + request.ttl_s * 1000);
    const row = await this.ledger.extendReservation(reservationId, expiresAt);
    if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
    if (row.status !== 'open' && row.status !== 'expired') {
      throw new ConflictError(`reservation ${reservationId} is ${row.status}: nothing to extend`);
    }
    return { reservation_id: reservationId, status: 'open', expires_at: expiresAt.toISOString() };
  }

  private async timed<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const end = this.metrics.admissionSeconds.startTimer({ operation });
    try {
      return await work();
    } finally {
      end();
    }
  }

  /** Gives a hold back whose reservation row was not written (when that fails too, it expires with the hold). */
  async giveBack(request: ReserveRequest, day: string, reservationId: string): Promise<void> {
    await this.counters
      .settle({ tenantId: request.tenant_id, runId: request.run_id, day, reservationId, apply: null })
      .catch(() => undefined);
  }

  /**
   * Voids an attempt of a reservation that was never answered: releases its row (freeing its idempotency
   * key) and its hold, under the counters lock. Throws CountersRebuildingError while the counters are gone
   * (nothing changed then: the row stays open, and the rebuild holds it until this is retried).
   */
  async voidAttempt(reservationId: string, now: Date): Promise<void> {
    // A voided hold may be gone from Redis with reason (a rebuild or a load did not count it): nothing to reload.
    await this.step.once(async (tx) => ({ value: await this.releaseHeld(tx, reservationId, now, { void: true }) }), {
      asyncCommit: true,
    });
  }

  /**
   * Releases a reservation's row and, if it was open, gives its hold back in Redis (inside the counters
   * lock the caller holds). Returns the row as it was before, or null when there is none.
   */
  private async releaseHeld(
    tx: Tx,
    reservationId: string,
    now: Date,
    options: { void?: boolean } = {},
  ): Promise<{ row: ReservationRow | null; lost: boolean }> {
    const row = await this.ledger.releaseReservation(tx, reservationId, now, options);
    if (row && unsettled(row)) {
      const settled = await this.counters.settle({
        tenantId: row.tenant_id,
        runId: row.run_id,
        day: row.day,
        reservationId,
        apply: null,
      });
      return { row, lost: !settled.released };
    }
    return { row, lost: false };
  }

  /**
   * An unsettled reservation whose hold Redis no longer had (its hash was lost while its run and day keys
   * kept counting it): those keys are loaded again from the ledger, or the hold would count for ever.
   */
  private async reloadLostHold(row: ReservationRow): Promise<void> {
    await this.rebuild.load(
      [
        { kind: 'run', tenantId: row.tenant_id, runId: row.run_id },
        { kind: 'day', tenantId: row.tenant_id, day: row.day },
      ],
      true,
    );
  }

  private async account(reservationId: string, request: CommitRequest): Promise<CommitResponse> {
    const now = this.clock.now();
    if (!UUID.test(reservationId)) throw new NotFoundError(`reservation ${reservationId} not found`);
    const actual = await this.actualOf(reservationId, request, now);
    const entryKey = eventEntryKey(request.event.source, request.event.id);
    const { value: outcome } = await this.step.run<CommitOutcome>(async (tx) => {
      const committed = await this.ledger.commitReservation(tx, { reservationId, entryKey, ...actual, at: now });
      if (!committed) throw new NotFoundError(`reservation ${reservationId} not found`);
      const { reservation: row, entry } = committed;
      if (row.status === 'released') throw new ConflictError(`reservation ${reservationId} was released`);
      const context = await this.limits.context(row.tenant_id, row.project_id, row.run_id, now, now);
      if (row.status === 'committed') {
        const previous = await this.ledger.entryOfReservation(tx, reservationId);
        const { counters, stopped } = await this.counters.read(row.tenant_id, row.run_id, row.day);
        return {
          value: { kind: 'repeat', previous, scopes: wireScopes(counters, stopped, context, now) },
        };
      }
      const amounts = entry && {
        tokens: BigInt(entry.tokens),
        cost: BigInt(entry.cost_micros),
        external: BigInt(entry.external_micros),
      };
      const settled = await this.counters.settle({
        tenantId: row.tenant_id,
        runId: row.run_id,
        day: row.day,
        reservationId,
        apply: amounts && { entryKey, ...amounts },
      });
      const attempted = this.crossings.detect(
        {
          tenantId: row.tenant_id,
          projectId: row.project_id,
          runId: row.run_id,
          role: row.role,
          day: row.day,
          resetsAt: nextDayStart(row.day, context.settings.timeZone),
          limits: context.limits,
        },
        settled.counters,
      );
      return {
        crossings: attempted,
        value: {
          kind: 'committed',
          accounted: amounts ?? {
            tokens: row.kind === 'charge' ? 0n : (actual.tokens ?? BigInt(row.tokens)),
            cost: actual.cost ?? BigInt(row.cost_micros),
          },
          isNew: amounts !== null,
          late: row.status === 'expired' || row.status === 'lapsed',
          lostHold: unsettled(row) && !settled.released ? row : null,
          scopes: wireScopes(settled.counters, settled.stopped, context, now),
        },
      };
    });
    if (outcome.kind === 'repeat') {
      return {
        reservation_id: reservationId,
        status: 'committed',
        accounted: {
          cost_usd: formatUsd(BigInt(outcome.previous?.cost_micros ?? 0)),
          tokens: outcome.previous?.tokens ?? '0',
        },
        duplicate: true,
        late: false,
        scopes: outcome.scopes,
      };
    }
    if (outcome.lostHold) await this.reloadLostHold(outcome.lostHold);
    this.metrics.spend.inc({ origin: 'commit', outcome: outcome.isNew ? 'new' : 'duplicate' });
    this.metrics.reservationsSettled.inc({ how: 'committed' });
    return {
      reservation_id: reservationId,
      status: 'committed',
      accounted: { cost_usd: formatUsd(outcome.accounted.cost), tokens: outcome.accounted.tokens.toString() },
      duplicate: !outcome.isNew,
      late: outcome.late,
      scopes: outcome.scopes,
    };
  }

  private async unhold(
    reservationId: string,
  ): Promise<{ reservation_id: string; status: 'released' | 'committed' | 'lapsed' }> {
    const now = this.clock.now();
    if (!UUID.test(reservationId)) throw new NotFoundError(`reservation ${reservationId} not found`);
    const {
      value: { row, lost },
    } = await this.step.run(async (tx) => ({ value: await this.releaseHeld(tx, reservationId, now) }), {
      asyncCommit: true,
    });
    if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
    if (lost) await this.reloadLostHold(row);
    if (!unsettled(row))
      return { reservation_id: reservationId, status: row.status as 'released' | 'committed' | 'lapsed' };
    this.metrics.reservationsSettled.inc({ how: 'released' });
    return { reservation_id: reservationId, status: 'released' };
  }

  private async findReservation(reservationId: string): Promise<ReservationRow> {
    const row = await this.ledger.findReservation(reservationId);
    if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
    return row;
  }

  /**
   * The actual spend of a commit: the cost given; else its tokens priced at the reserved model; else the
   * reservation's estimate (null here: the ledger statement takes it from the reservation row). Tokens
   * not given are the reservation's too.
   */
  private async actualOf(
    reservationId: string,
    request: CommitRequest,
    now: Date,
  ): Promise<{ tokens: bigint | null; cost: bigint | null; source: CostSource }> {
    const { cost_usd, prompt_tokens, completion_tokens } = request.actual;
    const hasTokens = prompt_tokens !== undefined || completion_tokens !== undefined;
    const tokens = hasTokens ? BigInt(prompt_tokens ?? 0) + BigInt(completion_tokens ?? 0) : null;
    if (cost_usd !== undefined) return { tokens, cost: parseUsd(cost_usd), source: 'provided' };
    if (!hasTokens) return { tokens, cost: null, source: 'estimate' };
    const reservation = await this.findReservation(reservationId);
    const priced =
      reservation.kind === 'llm'
        ? this.pricing.cost({
            tenantId: reservation.tenant_id,
            provider: reservation.provider,
            model: reservation.model,
            at: now,
            promptTokens: BigInt(prompt_tokens ?? 0),
            completionTokens: BigInt(completion_tokens ?? 0),
          })
        : null;
    return priced === null ? { tokens, cost: null, source: 'estimate' } : { tokens, cost: priced, source: 'computed' };
  }
}
