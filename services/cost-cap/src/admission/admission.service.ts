import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type {
  AdmissionDecision,
  CommitRequest,
  CommitResponse,
  ExtendRequest,
  ExtendResponse,
  ReserveRequest,
  ReserveResponse,
  ScopeState as WireScope,
} from '@agentmeter/contracts';
import {
  type CapOverride,
  Clock,
  type Counters,
  type Dimension,
  DIMENSIONS,
  dimensionLimits,
  explainScopes,
  formatUsd,
  type Limit,
  modelForAttempt,
  nextDayStart,
  parseUsd,
  parseUsdUp,
  type ScopeState,
} from '@agentmeter/domain';
import { type CapContext, LimitsService, runCapsFromWire, tightest } from '../caps/limits.service';
import { CostCapConfig } from '../config';
import {
  CountersMissingError,
  CountersRebuildingError,
  CountersStore,
  type ReserveResult,
} from '../counters/counters.store';
import { RebuildService } from '../settlement/rebuild.service';
import { CrossingsService, formatCapValue } from '../crossings/crossings.service';
import { CostCapDatabase, type Tx } from '../db/database';
import { ConflictError, NotFoundError } from '@agentmeter/http';
import { UnprocessableError } from '../http/errors';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { OutboxPublisher } from '../outbox/outbox.publisher';
import { PricingService } from '../pricing/pricing.service';
import { SettingsCache } from '../settings/settings.cache';
import { SettingsRepository } from '../settings/settings.repository';
import { type CostSource, eventEntryKey, LedgerRepository, type ReservationRow } from '../ledger/ledger.repository';

const PUBLISHER_ROLE = 'publisher';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIMENSION_INDEX: Array<Dimension | 'run_wall_time'> = [...DIMENSIONS];

/** How long a request waits for another one deciding the same idempotency key, and how long it may take. */
const KEY_WAIT_MS = 6_000;
const KEY_LOCK_MS = 15_000;

type DenyReason = NonNullable<ReserveResponse['denied_by']>['reason'];

/**
 * Admission before spend (issue "Admission before spend"). reserve() decides allow / allow with a cheaper
 * model / publish partial / deny, checking and holding the run and tenant scopes in one Redis script;
 * commit() accounts the actual spend in the ledger and releases the hold; release() only releases.
 * Every answer explains every cap: scope, limit, spent, reserved, remaining, reset time, override in force.
 */
@Injectable()
export class AdmissionService {
  constructor(
    @Inject(CostCapConfig) private readonly config: CostCapConfig,
    private readonly db: CostCapDatabase,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly limits: LimitsService,
    private readonly cache: SettingsCache,
    private readonly repository: SettingsRepository,
    private readonly pricing: PricingService,
    private readonly crossings: CrossingsService,
    private readonly outbox: OutboxPublisher,
    private readonly rebuild: RebuildService,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
  ) {}

  reserve(request: ReserveRequest): Promise<ReserveResponse> {
    return this.timed('reserve', () =>
      request.idempotency_key === undefined ? this.decide(request) : this.decideKeyed(request, request.idempotency_key),
    );
  }

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

  /**
   * Requests repeating an idempotency key are decided one at a time (a retry sent while the first request is
   * still deciding would otherwise compete with it for room and could be denied): each finds the reservation
   * of the one before.
   */
  private async decideKeyed(request: ReserveRequest, key: string): Promise<ReserveResponse> {
    const deadline = Date.now() + KEY_WAIT_MS;
    for (;;) {
      const token = await this.counters.lockIdempotencyKey(request.tenant_id, key, KEY_LOCK_MS);
      if (token) {
        try {
          return await this.decide(request);
        } finally {
          await this.counters.unlockIdempotencyKey(request.tenant_id, key, token).catch(() => undefined);
        }
      }
      if (Date.now() >= deadline) {
        throw new ConflictError(`a request with idempotency_key "${key}" is still being decided: retry shortly`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private async decide(request: ReserveRequest): Promise<ReserveResponse> {
    const now = this.clock.now();
    const declared = runCapsFromWire(request.run_caps);
    if (declared) await this.recordDeclaredCaps(request, declared, now);
    const context = await this.limits.context(
      request.tenant_id,
      request.project_id,
      request.run_id,
      now,
      now,
      declared,
    );
    const choice =
      request.kind === 'llm'
        ? modelForAttempt(context.settings.ladder, request.model, request.attempt, request.role)
        : { model: request.model, steps: 0 };
    const requested = this.estimate(request, request.model, now);
    const amount = choice.steps > 0 ? this.estimate(request, choice.model, now, requested.money) : requested;

    const base = {
      model: choice.model,
      requested_model: request.model,
      day: context.day,
      requested: { cost_usd: formatUsd(requested.money), tokens: requested.tokens.toString() },
    };

    // A repeated request (a client retrying after a timeout) gets the reservation it already made, even if
    // the tenant was paused since: that reservation stands until it is settled or expires.
    if (request.idempotency_key !== undefined) {
      const earlier = await this.ledger.findByIdempotencyKey(request.tenant_id, request.idempotency_key);
      if (earlier) return this.replay(earlier, request, context, now, base, requested);
    }

    // Operator switches and the run's state come first: they do not depend on spend.
    const refused = await this.refusal(request, context);
    if (refused) {
      const { counters, stopped } = await this.counters.read(request.tenant_id, request.run_id, context.day);
      const scopes = this.scopes(counters, stopped, context, now);
      return this.answer('deny', refused.scope, { ...base, ...none, denied_by: refused, scopes });
    }

    const ttl = request.ttl_s ?? this.config.COST_CAP_RESERVATION_TTL_S;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    const partial = request.role.toLowerCase() === PUBLISHER_ROLE;
    // Reservations of earlier attempts of this request, never answered, still to void (see below).
    const voids: string[] = [];
    let held: { result: ReserveResult; reservationId: string } | { taken: true };
    try {
      held = await this.rebuild.retrying(async () => {
        // A void that could not finish (the counters were gone) is done first, against the rebuilt counters
        // (whose snapshot may hold it again). Its failure fails this attempt too: never two holds for one request.
        while (voids.length > 0) {
          await this.voidAttempt(voids[0]!, now);
          voids.shift();
        }
        // A fresh id per attempt: the id of a voided attempt has a released row, and reusing it would fail the
        // insert (and leave a hold of the rebuilt counters without its row).
        const reservationId = randomUUID();
        const result = await this.counters.reserve({
          reservationId,
          tenantId: request.tenant_id,
          runId: request.run_id,
          day: context.day,
          kind: request.kind,
          tokens: amount.tokens,
          money: amount.money,
          partial,
          limits: dimensionLimits(context.limits),
          expiresAt,
        });
        if (result.status !== 'ALLOW' && result.status !== 'PARTIAL') return { result, reservationId };
        let recorded: boolean;
        try {
          recorded = await this.ledger.recordReservation({
            reservationId,
            tenantId: request.tenant_id,
            projectId: request.project_id,
            runId: request.run_id,
            role: request.role,
            attempt: request.attempt,
            kind: request.kind,
            model: choice.model,
            requestedModel: request.model,
            provider: request.provider ?? null,
            decision: result.status,
            day: context.day,
            tokens: request.kind === 'llm' ? amount.tokens : 0n,
            cost: result.granted,
            external: request.kind === 'charge' ? result.granted : 0n,
            createdAt: now,
            expiresAt,
            idempotencyKey: request.idempotency_key ?? null,
            requestHash: request.idempotency_key === undefined ? null : requestHash(request),
          });
        } catch (error) {
          // Not recorded: give the hold back (if that fails too, it expires with the reservation).
          await this.giveBack(request, context.day, reservationId);
          throw error;
        }
        if (!recorded) {
          // A concurrent request with the same idempotency key recorded its reservation first: that one stands.
          await this.giveBack(request, context.day, reservationId);
          return { taken: true as const };
        }
        // The hold was made before the row existed, outside the counters lock. If a rebuild started in
        // between, or the run's or tenant-day's key was loaded again from the ledger (it went missing), the
        // rebuilt counters may lack this row while Redis lost the hold, or hold it while this request held
        // nothing: the reservation is then void (released everywhere, never answered) and the request
        // retried against the rebuilt counters.
        const now_ = await this.counters.generations(request.tenant_id, request.run_id, context.day);
        if (now_.epoch !== result.epoch || now_.run !== result.generations.run || now_.day !== result.generations.day) {
          voids.push(reservationId);
          await this.voidAttempt(reservationId, now).then(
            () => voids.pop(),
            () => undefined,
          );
          throw now_.epoch !== result.epoch ? new CountersRebuildingError() : new CountersMissingError([]);
        }
        return { result, reservationId };
      });
    } finally {
      // Answering 503 (or an error): a void still pending is tried once more; else its row stays open and is
      // held by the next rebuild until it expires (never more than what was asked; with a key, a retry of the
      // request gets it back).
      for (const reservationId of voids) await this.voidAttempt(reservationId, now).catch(() => undefined);
    }
    if ('taken' in held) {
      const winner = await this.ledger.findByIdempotencyKey(request.tenant_id, request.idempotency_key!);
      // The winner was itself voided and is being retried: decide again (it finds the replacement).
      if (!winner) return this.decide(request);
      return this.replay(winner, request, context, now, base, requested);
    }
    return this.reserveAnswer(held.result, context, now, base, {
      reservationId: held.reservationId,
      expiresAt,
      downgraded: choice.steps > 0,
      request,
      amount,
    });
  }

  /**
   * A denial that does not depend on spend: a paused tenant, a frozen Publisher, a run that finished, a
   * tenant without a daily cap when COST_CAP_REQUIRE_DAILY_CAP is set.
   */
  private async refusal(
    request: ReserveRequest,
    context: CapContext,
  ): Promise<NonNullable<ReserveResponse['denied_by']> | null> {
    const pause = context.settings.pause;
    if (pause) {
      return {
        ...switchScope('tenant', 'paused'),
        reason: 'paused',
        detail: `tenant paused by ${pause.pausedBy} at ${pause.pausedAt.toISOString()}: ${pause.reason}`,
      };
    }
    const freeze =
      request.role.toLowerCase() === PUBLISHER_ROLE && request.playbook
        ? await this.cache.freeze(request.playbook)
        : null;
    if (freeze) {
      return {
        ...switchScope('playbook', 'publisher_frozen'),
        reason: 'frozen',
        detail: `Publisher frozen for playbook "${freeze.playbook}" by ${freeze.frozenBy}: ${freeze.reason}`,
      };
    }
    const finishedAt = context.run?.finishedAt;
    if (finishedAt) {
      return {
        ...switchScope('run', 'finished'),
        reason: 'finished',
        detail: `run ${request.run_id} finished at ${finishedAt.toISOString()}: a finished run spends nothing more`,
      };
    }
    if (this.config.COST_CAP_REQUIRE_DAILY_CAP && context.limits.tenantDailyCost.value === null) {
      return {
        ...switchScope('tenant', 'cost'),
        limit: null,
        remaining: null,
        reason: 'no_daily_cap',
        detail: `tenant ${request.tenant_id} has no daily cap and this deployment requires one (COST_CAP_REQUIRE_DAILY_CAP): set one with PUT /v1/tenants/${request.tenant_id}/caps`,
      };
    }
    return null;
  }

  /**
   * The answer to a request repeating an idempotency key: the reservation it made, as it was answered (the
   * amounts held, the model), with the caps as they are now.
   */
  private async replay(
    row: ReservationRow,
    request: ReserveRequest,
    context: CapContext,
    now: Date,
    base: Pick<ReserveResponse, 'model' | 'requested_model' | 'day' | 'requested'>,
    requested: { tokens: bigint; money: bigint },
  ): Promise<ReserveResponse> {
    const differs = Object.entries({
      project_id: row.project_id !== request.project_id,
      run_id: row.run_id !== request.run_id,
      role: row.role !== request.role,
      attempt: row.attempt !== request.attempt,
      kind: row.kind !== request.kind,
      model: row.requested_model !== request.model,
      // Rows written before fingerprints were kept compare by the fields above only.
      body: row.request_hash !== null && row.request_hash !== requestHash(request),
    })
      .filter(([, differ]) => differ)
      .map(([field]) => field);
    if (differs.length > 0) {
      throw new ConflictError(
        `idempotency_key "${request.idempotency_key}" was used for another reservation (${differs.join(', ')} differ)`,
      );
    }
    const rowContext =
      row.day === context.day
        ? context
        : await this.limits.context(row.tenant_id, row.project_id, row.run_id, row.created_at, now);
    // The answer explains the caps as they are: not from counters Redis lost (nothing else here rebuilds them).
    if ((await this.counters.epoch()) === null) await this.rebuild.ensure();
    const { counters } = await this.counters.read(row.tenant_id, row.run_id, row.day);
    const status = row.decision === 'PARTIAL' ? 'PARTIAL' : 'ALLOW';
    const asked = row.model === request.model ? requested : this.estimate(request, row.model, now, requested.money);
    return this.reserveAnswer(
      {
        status,
        dimension: 0,
        granted: BigInt(row.cost_micros),
        counters,
        epoch: '',
        generations: { run: '', day: '' },
      },
      rowContext,
      now,
      { ...base, model: row.model, day: row.day },
      {
        reservationId: row.reservation_id,
        expiresAt: row.expires_at,
        downgraded: row.model !== row.requested_model,
        request,
        amount: { tokens: BigInt(row.tokens), money: asked.money },
        replayed: true,
      },
    );
  }

  /** Gives a hold back whose reservation row was not written (when that fails too, it expires with the hold). */
  private async giveBack(request: ReserveRequest, day: string, reservationId: string): Promise<void> {
    await this.counters
      .settle({ tenantId: request.tenant_id, runId: request.run_id, day, reservationId, apply: null })
      .catch(() => undefined);
  }

  /**
   * Voids an attempt of a reservation that was never answered: releases its row (freeing its idempotency
   * key) and its hold, under the counters lock. Throws CountersRebuildingError while the counters are gone
   * (nothing changed then: the row stays open, and the rebuild holds it until this is retried).
   */
  private async voidAttempt(reservationId: string, now: Date): Promise<void> {
    // A voided hold may be gone from Redis with reason (a rebuild or a load did not count it): nothing to reload.
    await this.db.withCounters((tx) => this.releaseHeld(tx, reservationId, now, { void: true }), {
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
    const outcome = await this.rebuild.retrying(() =>
      this.db.withCounters(async (tx) => {
        const committed = await this.ledger.commitReservation(tx, { reservationId, entryKey, ...actual, at: now });
        if (!committed) throw new NotFoundError(`reservation ${reservationId} not found`);
        const { reservation: row, entry } = committed;
        if (row.status === 'released') throw new ConflictError(`reservation ${reservationId} was released`);
        const context = await this.limits.context(row.tenant_id, row.project_id, row.run_id, now, now);
        if (row.status === 'committed') {
          const previous = await this.ledger.entryOfReservation(tx, reservationId);
          const { counters, stopped } = await this.counters.read(row.tenant_id, row.run_id, row.day);
          return { kind: 'repeat' as const, previous, scopes: this.scopes(counters, stopped, context, now) };
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
            day: row.day,
            resetsAt: nextDayStart(row.day, context.settings.timeZone),
            limits: context.limits,
          },
          settled.counters,
        );
        const claimed = await this.crossings.claim(tx, attempted, now);
        return {
          kind: 'committed' as const,
          accounted: amounts ?? {
            tokens: row.kind === 'charge' ? 0n : (actual.tokens ?? BigInt(row.tokens)),
            cost: actual.cost ?? BigInt(row.cost_micros),
          },
          isNew: amounts !== null,
          late: row.status === 'expired' || row.status === 'lapsed',
          lostHold: unsettled(row) && !settled.released ? row : null,
          scopes: this.scopes(settled.counters, settled.stopped, context, now),
          attempted,
          claimed,
        };
      }),
    );
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
    this.crossings.committed(outcome.attempted, outcome.claimed);
    if (outcome.claimed.length > 0) this.outbox.kick();
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
    const { row, lost } = await this.rebuild.retrying(() =>
      this.db.withCounters((tx) => this.releaseHeld(tx, reservationId, now), { asyncCommit: true }),
    );
    if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
    if (lost) await this.reloadLostHold(row);
    if (!unsettled(row))
      return { reservation_id: reservationId, status: row.status as 'released' | 'committed' | 'lapsed' };
    this.metrics.reservationsSettled.inc({ how: 'released' });
    return { reservation_id: reservationId, status: 'released' };
  }

  private async findReservation(reservationId: string): Promise<ReservationRow> {
    const [row] = await this.db.query<ReservationRow>(`SELECT * FROM reservations WHERE reservation_id = $1`, [
      reservationId,
    ]);
    if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
    return row;
  }

  /** A run's declared caps are stored so the stream and wall-time checks hold the run to them too. */
  private async recordDeclaredCaps(
    request: ReserveRequest,
    declared: NonNullable<ReturnType<typeof runCapsFromWire>>,
    now: Date,
  ) {
    const run = await this.cache.run(request.tenant_id, request.run_id);
    const merged = tightest(run?.caps ?? null, declared);
    if (run && JSON.stringify(merged, bigintJson) === JSON.stringify(run.caps, bigintJson)) return;
    await this.repository.mergeRunCaps(request.tenant_id, request.run_id, request.project_id, declared, now);
    this.cache.forgetRun(request.tenant_id, request.run_id);
  }

  /**
   * What a reservation holds, in tokens and micro-USD. A charge holds its amount. An LLM call holds its
   * cost_usd, or the price of its estimated tokens; for a cheaper model the tokens are priced at that
   * model, and when that model has no price the requested estimate is kept (never less).
   */
  private estimate(
    request: ReserveRequest,
    model: string,
    now: Date,
    fallback?: bigint,
  ): { tokens: bigint; money: bigint } {
    const { cost_usd, prompt_tokens, completion_tokens } = request.estimate;
    const tokens = request.kind === 'llm' ? BigInt(prompt_tokens ?? 0) + BigInt(completion_tokens ?? 0) : 0n;
    // An estimate rounds up to the micro-dollar: a positive one never holds 0.
    if (request.kind === 'charge') return { tokens, money: parseUsdUp(cost_usd!) };
    const hasTokens = prompt_tokens !== undefined || completion_tokens !== undefined;
    if (fallback === undefined && cost_usd !== undefined) return { tokens, money: parseUsdUp(cost_usd) };
    const priced = hasTokens
      ? this.pricing.cost({
          tenantId: request.tenant_id,
          provider: request.provider ?? null,
          model,
          at: now,
          promptTokens: BigInt(prompt_tokens ?? 0),
          completionTokens: BigInt(completion_tokens ?? 0),
        })
      : null;
    if (priced !== null) return { tokens, money: priced === 0n && tokens > 0n ? 1n : priced };
    if (fallback !== undefined) return { tokens, money: fallback };
    throw new UnprocessableError(
      `no price for model "${model}"${request.provider ? ` of ${request.provider}` : ''}: send estimate.cost_usd`,
    );
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

  private reserveAnswer(
    result: ReserveResult,
    context: CapContext,
    now: Date,
    base: Pick<ReserveResponse, 'model' | 'requested_model' | 'day' | 'requested'>,
    held: {
      reservationId: string;
      expiresAt: Date;
      downgraded: boolean;
      request: ReserveRequest;
      amount: { tokens: bigint; money: bigint };
      /** The answer repeats an earlier reservation (same idempotency key): counted as `replayed`. */
      replayed?: boolean;
    },
  ): ReserveResponse {
    const stopped = result.status === 'DENY_STOPPED';
    const scopes = this.scopes(result.counters, stopped, context, now);
    if (result.status === 'ALLOW' || result.status === 'PARTIAL') {
      const decision: AdmissionDecision =
        result.status === 'PARTIAL' ? 'publish_partial' : held.downgraded ? 'allow_cheaper_model' : 'allow';
      return this.answer(decision, held.replayed ? 'replayed' : 'none', {
        ...base,
        ...(held.replayed ? { replayed: true } : {}),
        reservation_id: held.reservationId,
        expires_at: held.expiresAt.toISOString(),
        reserved: {
          cost_usd: formatUsd(result.granted),
          tokens: (held.request.kind === 'llm' ? held.amount.tokens : 0n).toString(),
        },
        partial:
          result.status === 'PARTIAL'
            ? {
                left_usd: formatUsd(result.granted),
                instructions: `publish partial: spend at most ${formatUsd(result.granted)} USD of the ${formatUsd(held.amount.money)} asked, then stop with a partial result and a summary of what was left out`,
              }
            : null,
        denied_by: null,
        scopes,
      });
    }
    const dimension = DIMENSION_INDEX[result.dimension - 1] ?? 'run_wall_time';
    const reason: DenyReason =
      result.status === 'DENY_STOPPED' ? 'stopped' : result.status === 'DENY_REACHED' ? 'cap_reached' : 'insufficient';
    const state =
      dimension === 'run_wall_time'
        ? scopes.find((s) => s.cap === 'wall_time')!
        : scopes[DIMENSIONS.indexOf(dimension)]!;
    return this.answer('deny', state.scope, {
      ...base,
      ...none,
      denied_by: { ...state, reason, detail: denyDetail(state, reason, held.amount.money) },
      scopes,
    });
  }

  private answer(decision: AdmissionDecision, scope: string, body: Omit<ReserveResponse, 'decision'>): ReserveResponse {
    this.metrics.decisions.inc({ outcome: decision, scope });
    return { decision, ...body };
  }

  /** Every cap of the run and the tenant-day, wire-formatted; the wall-time cap last. */
  private scopes(counters: Counters, stopped: boolean, context: CapContext, now: Date): WireScope[] {
    const states = explainScopes(counters, context.limits, context.resetsAt).map(wireScope);
    const wall = context.limits.runWallTimeS;
    const startedAt = context.run?.startedAt ?? null;
    const elapsed = startedAt ? BigInt(Math.max(0, Math.floor((now.getTime() - startedAt.getTime()) / 1000))) : 0n;
    const spent = stopped && wall.value !== null && elapsed < wall.value ? wall.value : elapsed;
    states.push({
      scope: 'run',
      cap: 'wall_time',
      limit: wall.value?.toString() ?? null,
      spent: spent.toString(),
      reserved: '0',
      remaining: wall.value === null ? null : (wall.value > spent ? wall.value - spent : 0n).toString(),
      resets_at: null,
      override: overrideWire('wall_time', wall),
    });
    return states;
  }
}

/** Its hold still counts: open, or expired without its spend known yet. */
function unsettled(row: ReservationRow): boolean {
  return row.status === 'open' || row.status === 'expired';
}

/**
 * Fingerprint of a reserve request (all of its body but the key itself, keys sorted): a key repeated with
 * another body is a 409, not a replay.
 */
function requestHash(request: ReserveRequest): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([key, field]) => key !== 'idempotency_key' && field !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, field]) => [key, canonical(field)]),
    );
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(request)))
    .digest('hex');
}

const none = { reservation_id: null, expires_at: null, reserved: { cost_usd: '0.000000', tokens: '0' }, partial: null };

/** An operator switch as a cap of zero: nothing passes until it is turned off (it never resets by itself). */
function switchScope(scope: WireScope['scope'], cap: WireScope['cap']): WireScope {
  return { scope, cap, limit: '0', spent: '0', reserved: '0', remaining: '0', resets_at: null, override: null };
}

function denyDetail(state: WireScope, reason: DenyReason, asked: bigint): string {
  const cap = `${state.scope} ${state.cap} cap${state.limit === null ? '' : ` of ${state.limit}`}`;
  const resets = state.resets_at ? `; it resets at ${state.resets_at}` : '; it does not reset';
  const raised = state.override ? ` (raised by ${state.override.actor} until ${state.override.expires_at})` : '';
  if (reason === 'stopped') return `the run reached its wall-time cap${raised} and was stopped`;
  if (reason === 'cap_reached') return `the ${cap}${raised} is reached: ${state.spent} spent${resets}`;
  return `the ${cap}${raised} has ${state.remaining} left (${state.spent} spent, ${state.reserved} reserved), less than the ${formatUsd(asked)} USD asked${resets}`;
}

function wireScope(state: ScopeState): WireScope {
  const value = (amount: bigint | null) => (amount === null ? null : formatCapValue(state.cap, amount));
  return {
    scope: state.scope,
    cap: state.cap,
    limit: value(state.limit),
    spent: value(state.spent)!,
    reserved: value(state.reserved)!,
    remaining: value(state.remaining),
    resets_at: state.resetsAt?.toISOString() ?? null,
    override: state.override ? overrideOf(state.cap, state.override) : null,
  };
}

function overrideWire(cap: 'wall_time', limit: Limit): WireScope['override'] {
  return limit.override ? overrideOf(cap, limit.override) : null;
}

function overrideOf(
  cap: Parameters<typeof formatCapValue>[0],
  override: CapOverride,
): NonNullable<WireScope['override']> {
  return {
    override_id: override.id,
    limit: formatCapValue(cap, override.value),
    expires_at: override.expiresAt.toISOString(),
    actor: override.actor,
    reason: override.reason,
  };
}

function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
