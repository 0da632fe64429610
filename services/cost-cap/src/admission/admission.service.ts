import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { AdmissionDecision, ReserveRequest, ReserveResponse } from '@agentmeter/contracts';
import {
  Clock,
  type Dimension,
  DIMENSIONS,
  dimensionLimits,
  formatUsd,
  modelForAttempt,
  parseUsdUp,
} from '@agentmeter/domain';
import { ConflictError } from '@agentmeter/http';
import { type CapContext, LimitsService, runCapsFromWire, tightest } from '../caps/limits.service';
import { CostCapConfig } from '../config';
import {
  CountersMissingError,
  CountersRebuildingError,
  CountersStore,
  type ReserveResult,
} from '../counters/counters.store';
import { UnprocessableError } from '../http/errors';
import { LedgerRepository, type ReservationRow } from '../ledger/ledger.repository';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { PricingService } from '../pricing/pricing.service';
import { RebuildService } from '../settlement/rebuild.service';
import { SettingsCache } from '../settings/settings.cache';
import { SettingsRepository } from '../settings/settings.repository';
import {
  bigintJson,
  type DenyReason,
  denyDetail,
  none,
  requestHash,
  switchScope,
  wireScopes,
} from './admission.scopes';
import { SettlementService } from './settlement.service';

const PUBLISHER_ROLE = 'publisher';
const DIMENSION_INDEX: Array<Dimension | 'run_wall_time'> = [...DIMENSIONS];

/** How long a request waits for another one deciding the same idempotency key, and how long it may take. */
const KEY_WAIT_MS = 6_000;
const KEY_LOCK_MS = 15_000;

/** What a request asks for: the model (maybe a cheaper one), the amount to hold, the answer's common part. */
interface Ask {
  choice: { model: string; steps: number };
  requested: { tokens: bigint; money: bigint };
  amount: { tokens: bigint; money: bigint };
  base: Pick<ReserveResponse, 'model' | 'requested_model' | 'day' | 'requested'>;
}

/** A hold made in Redis (with its row recorded when it was allowed), or the script's denial. */
interface Held {
  result: ReserveResult;
  reservationId: string;
  expiresAt: Date;
}

/**
 * Admission before spend (docs/cost-cap.md "Caps and decisions"). reserve() decides allow / allow with a cheaper
 * model / publish partial / deny, checking and holding the run and tenant scopes in one Redis script;
 * SettlementService commits, releases and extends what it reserved.
 * Every answer explains every cap: scope, limit, spent, reserved, remaining, reset time, override in force.
 */
@Injectable()
export class AdmissionService {
  constructor(
    @Inject(CostCapConfig) private readonly config: CostCapConfig,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly limits: LimitsService,
    private readonly cache: SettingsCache,
    private readonly repository: SettingsRepository,
    private readonly pricing: PricingService,
    private readonly settlement: SettlementService,
    private readonly rebuild: RebuildService,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
  ) {}

  reserve(request: ReserveRequest): Promise<ReserveResponse> {
    return this.timed('reserve', () =>
      request.idempotency_key === undefined ? this.decide(request) : this.decideKeyed(request, request.idempotency_key),
    );
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

  /** The decision, step by step (docs/cost-cap.md "Caps and decisions"). */
  private async decide(request: ReserveRequest): Promise<ReserveResponse> {
    const now = this.clock.now();
    const context = await this.capsOf(request, now);
    const ask = this.ask(request, context, now);
    const earlier = await this.earlierReservation(request);
    if (earlier) return this.replay(earlier, request, context, now, ask);
    const refused = await this.refusal(request, context);
    if (refused) return this.refuse(refused, request, context, now, ask);
    const held = await this.hold(request, context, ask, now);
    if (held === 'taken') return this.replayWinner(request, context, now, ask);
    return this.reserveAnswer(held.result, context, now, ask.base, {
      reservationId: held.reservationId,
      expiresAt: held.expiresAt,
      downgraded: ask.choice.steps > 0,
      request,
      amount: ask.amount,
    });
  }

  /** The caps in force for this request: the run's declared caps are recorded first (they may tighten them). */
  private async capsOf(request: ReserveRequest, now: Date): Promise<CapContext> {
    const declared = runCapsFromWire(request.run_caps);
    if (declared) await this.recordDeclaredCaps(request, declared, now);
    return this.limits.context(request.tenant_id, request.project_id, request.run_id, now, now, declared);
  }

  /** What is asked: the model (a cheaper one on a retry, by the ladder) and the amount to hold. */
  private ask(request: ReserveRequest, context: CapContext, now: Date): Ask {
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
    return { choice, requested, amount, base };
  }

  /**
   * A repeated request (a client retrying after a timeout) gets the reservation it already made, even if
   * the tenant was paused since: that reservation stands until it is settled or expires.
   */
  private async earlierReservation(request: ReserveRequest): Promise<ReservationRow | null> {
    if (request.idempotency_key === undefined) return null;
    return this.ledger.findByIdempotencyKey(request.tenant_id, request.idempotency_key);
  }

  /** A denial by an operator switch or the run's state: they come first, they do not depend on spend. */
  private async refuse(
    refused: NonNullable<ReserveResponse['denied_by']>,
    request: ReserveRequest,
    context: CapContext,
    now: Date,
    ask: Ask,
  ): Promise<ReserveResponse> {
    const { counters, stopped } = await this.counters.read(request.tenant_id, request.run_id, context.day);
    const scopes = wireScopes(counters, stopped, context, now);
    return this.answer('deny', refused.scope, { ...ask.base, ...none, denied_by: refused, scopes });
  }

  /**
   * Holds the amount in the run and tenant-day counters (one Redis script) and records the reservation row,
   * again against the rebuilt counters when they changed in between. 'taken' when a concurrent request with
   * the same idempotency key recorded its reservation first.
   */
  private async hold(request: ReserveRequest, context: CapContext, ask: Ask, now: Date): Promise<Held | 'taken'> {
    const ttl = request.ttl_s ?? this.config.COST_CAP_RESERVATION_TTL_S;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    // Reservations of earlier attempts of this request, never answered, still to void (see holdOnce).
    const voids: string[] = [];
    try {
      return await this.rebuild.retrying(async () => {
        // A void that could not finish (the counters were gone) is done first, against the rebuilt counters
        // (whose snapshot may hold it again). Its failure fails this attempt too: never two holds for one request.
        while (voids.length > 0) {
          await this.settlement.voidAttempt(voids[0]!, now);
          voids.shift();
        }
        return this.holdOnce(request, context, ask, now, expiresAt, voids);
      });
    } finally {
      // Answering 503 (or an error): a void still pending is tried once more; else its row stays open and is
      // held by the next rebuild until it expires (never more than what was asked; with a key, a retry of the
      // request gets it back).
      for (const reservationId of voids) await this.settlement.voidAttempt(reservationId, now).catch(() => undefined);
    }
  }

  private async holdOnce(
    request: ReserveRequest,
    context: CapContext,
    ask: Ask,
    now: Date,
    expiresAt: Date,
    voids: string[],
  ): Promise<Held | 'taken'> {
    // A fresh id per attempt: the id of a voided attempt has a released row, and reusing it would fail the
    // insert (and leave a hold of the rebuilt counters without its row).
    const reservationId = randomUUID();
    const result = await this.counters.reserve({
      reservationId,
      tenantId: request.tenant_id,
      runId: request.run_id,
      day: context.day,
      kind: request.kind,
      tokens: ask.amount.tokens,
      money: ask.amount.money,
      partial: request.role.toLowerCase() === PUBLISHER_ROLE,
      limits: dimensionLimits(context.limits),
      expiresAt,
    });
    if (result.status !== 'ALLOW' && result.status !== 'PARTIAL') return { result, reservationId, expiresAt };
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
        model: ask.choice.model,
        requestedModel: request.model,
        provider: request.provider ?? null,
        decision: result.status,
        day: context.day,
        tokens: request.kind === 'llm' ? ask.amount.tokens : 0n,
        cost: result.granted,
        external: request.kind === 'charge' ? result.granted : 0n,
        createdAt: now,
        expiresAt,
        idempotencyKey: request.idempotency_key ?? null,
        requestHash: request.idempotency_key === undefined ? null : requestHash(request),
      });
    } catch (error) {
      // Not recorded: give the hold back (if that fails too, it expires with the reservation).
      await this.settlement.giveBack(request, context.day, reservationId);
      throw error;
    }
    if (!recorded) {
      // A concurrent request with the same idempotency key recorded its reservation first: that one stands.
      await this.settlement.giveBack(request, context.day, reservationId);
      return 'taken';
    }
    // The hold was made before the row existed, outside the counters lock. If a rebuild started in
    // between, or the run's or tenant-day's key was loaded again from the ledger (it went missing), the
    // rebuilt counters may lack this row while Redis lost the hold, or hold it while this request held
    // nothing: the reservation is then void (released everywhere, never answered) and the request
    // retried against the rebuilt counters.
    const current = await this.counters.generations(request.tenant_id, request.run_id, context.day);
    if (
      current.epoch !== result.epoch ||
      current.run !== result.generations.run ||
      current.day !== result.generations.day
    ) {
      voids.push(reservationId);
      await this.settlement.voidAttempt(reservationId, now).then(
        () => voids.pop(),
        () => undefined,
      );
      throw current.epoch !== result.epoch ? new CountersRebuildingError() : new CountersMissingError([]);
    }
    return { result, reservationId, expiresAt };
  }

  /** Another request with the same key won: its reservation is the answer. */
  private async replayWinner(
    request: ReserveRequest,
    context: CapContext,
    now: Date,
    ask: Ask,
  ): Promise<ReserveResponse> {
    const winner = await this.ledger.findByIdempotencyKey(request.tenant_id, request.idempotency_key!);
    // The winner was itself voided and is being retried: decide again (it finds the replacement).
    if (!winner) return this.decide(request);
    return this.replay(winner, request, context, now, ask);
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
    { base, requested }: Ask,
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
    const scopes = wireScopes(result.counters, stopped, context, now);
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
}
