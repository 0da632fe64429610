import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type {
  AdmissionDecision,
  CommitRequest,
  CommitResponse,
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
  parseUsd,
  type ScopeState,
} from '@agentmeter/domain';
import { type CapContext, LimitsService, runCapsFromWire, tightest } from '../caps/limits.service';
import { CostCapConfig } from '../config';
import { CountersStore, type ReserveResult } from '../counters/counters.store';
import { RebuildService } from '../counters/rebuild.service';
import { CrossingsService, formatCapValue } from '../crossings/crossings.service';
import { CostCapDatabase } from '../db/database';
import { ConflictError, NotFoundError, UnprocessableError } from '../http/errors';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { OutboxPublisher } from '../outbox/outbox.publisher';
import { PricingService } from '../pricing/pricing.service';
import { SettingsCache } from '../settings/settings.cache';
import { SettingsRepository } from '../settings/settings.repository';
import { LedgerRepository, type ReservationRow } from '../spend/ledger.repository';
import { eventEntryKey } from '../spend/spend.service';

const PUBLISHER_ROLE = 'publisher';
const DIMENSION_INDEX: Array<Dimension | 'run_wall_time'> = [...DIMENSIONS];

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
    return this.timed('reserve', () => this.decide(request));
  }

  commit(reservationId: string, request: CommitRequest): Promise<CommitResponse> {
    return this.timed('commit', () => this.account(reservationId, request));
  }

  release(reservationId: string): Promise<{ reservation_id: string; status: 'released' | 'committed' | 'expired' }> {
    return this.timed('release', () => this.unhold(reservationId));
  }

  private async timed<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const end = this.metrics.admissionSeconds.startTimer({ operation });
    try {
      return await work();
    } finally {
      end();
    }
  }

  private async decide(request: ReserveRequest): Promise<ReserveResponse> {
    const now = this.clock.now();
    const declared = runCapsFromWire(request.run_caps);
    if (declared) await this.recordDeclaredCaps(request, declared);
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

    // Operator switches come first: they do not depend on spend.
    const pause = context.settings.pause;
    const freeze =
      request.role.toLowerCase() === PUBLISHER_ROLE && request.playbook
        ? await this.cache.freeze(request.playbook)
        : null;
    if (pause || freeze) {
      const { counters, stopped } = await this.counters.read(request.tenant_id, request.run_id, context.day);
      const scopes = this.scopes(counters, stopped, context, now);
      const denied: NonNullable<ReserveResponse['denied_by']> = pause
        ? {
            ...switchScope('tenant', 'paused'),
            reason: 'paused',
            detail: `tenant paused by ${pause.pausedBy} at ${pause.pausedAt.toISOString()}: ${pause.reason}`,
          }
        : {
            ...switchScope('playbook', 'publisher_frozen'),
            reason: 'frozen',
            detail: `Publisher frozen for playbook "${freeze!.playbook}" by ${freeze!.frozenBy}: ${freeze!.reason}`,
          };
      return this.answer('deny', denied.scope, { ...base, ...none, denied_by: denied, scopes });
    }

    const reservationId = randomUUID();
    const ttl = request.ttl_s ?? this.config.COST_CAP_RESERVATION_TTL_S;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    const partial = request.role.toLowerCase() === PUBLISHER_ROLE;
    const result = await this.rebuild.retrying(() =>
      this.db.withCounters(
        async (tx) => {
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
          if (result.status === 'ALLOW' || result.status === 'PARTIAL') {
            await this.ledger.insertReservation(tx, {
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
            });
          }
          return result;
        },
        { asyncCommit: true },
      ),
    );
    return this.reserveAnswer(result, context, now, base, {
      reservationId,
      expiresAt,
      downgraded: choice.steps > 0,
      request,
      amount,
    });
  }

  private async account(reservationId: string, request: CommitRequest): Promise<CommitResponse> {
    const now = this.clock.now();
    const reservation = await this.findReservation(reservationId);
    const context = await this.limits.context(
      reservation.tenant_id,
      reservation.project_id,
      reservation.run_id,
      now,
      now,
    );
    const actual = this.actualOf(reservation, request, now);
    const entryKey = eventEntryKey(request.event.source, request.event.id);
    const outcome = await this.rebuild.retrying(() =>
      this.db.withCounters(async (tx) => {
        const row = await this.ledger.lockReservation(tx, reservationId);
        if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
        if (row.status === 'released') throw new ConflictError(`reservation ${reservationId} was released`);
        if (row.status === 'committed') {
          const entry = await this.ledger.entryOfReservation(tx, reservationId);
          return { kind: 'repeat' as const, entry };
        }
        const fresh = await this.ledger.insertEntries(tx, [
          {
            entryKey,
            tenantId: row.tenant_id,
            projectId: row.project_id,
            runId: row.run_id,
            day: row.day,
            kind: row.kind,
            tokens: actual.tokens,
            cost: actual.cost,
            external: row.kind === 'charge' ? actual.cost : 0n,
            costSource: actual.source,
            recordedBy: 'commit',
            reservationId,
            occurredAt: now,
          },
        ]);
        await this.ledger.settleReservation(tx, reservationId, 'committed', now);
        const isNew = fresh.has(entryKey);
        const settled = await this.counters.settle({
          tenantId: row.tenant_id,
          runId: row.run_id,
          day: row.day,
          reservationId,
          apply: isNew
            ? { entryKey, tokens: actual.tokens, cost: actual.cost, external: row.kind === 'charge' ? actual.cost : 0n }
            : null,
        });
        const attempted = this.crossings.detect(
          {
            tenantId: row.tenant_id,
            projectId: row.project_id,
            runId: row.run_id,
            day: row.day,
            resetsAt: context.resetsAt,
            limits: context.limits,
          },
          settled.counters,
        );
        const claimed = await this.crossings.claim(tx, attempted, now);
        return { kind: 'committed' as const, isNew, late: row.status === 'expired', settled, attempted, claimed };
      }),
    );
    if (outcome.kind === 'repeat') {
      const { counters, stopped } = await this.counters.read(
        reservation.tenant_id,
        reservation.run_id,
        reservation.day,
      );
      return {
        reservation_id: reservationId,
        status: 'committed',
        accounted: {
          cost_usd: formatUsd(BigInt(outcome.entry?.cost_micros ?? 0)),
          tokens: outcome.entry?.tokens ?? '0',
        },
        duplicate: true,
        late: false,
        scopes: this.scopes(counters, stopped, context, now),
      };
    }
    this.crossings.committed(outcome.attempted, outcome.claimed);
    if (outcome.claimed.length > 0) this.outbox.kick();
    this.metrics.spend.inc({ origin: 'commit', outcome: outcome.isNew ? 'new' : 'duplicate' });
    this.metrics.reservationsSettled.inc({ how: 'committed' });
    return {
      reservation_id: reservationId,
      status: 'committed',
      accounted: { cost_usd: formatUsd(actual.cost), tokens: actual.tokens.toString() },
      duplicate: !outcome.isNew,
      late: outcome.late,
      scopes: this.scopes(outcome.settled.counters, outcome.settled.stopped, context, now),
    };
  }

  async release(
    reservationId: string,
  ): Promise<{ reservation_id: string; status: 'released' | 'committed' | 'expired' }> {
    const now = this.clock.now();
    const status = await this.rebuild.retrying(() =>
      this.db.withCounters(
        async (tx) => {
          const row = await this.ledger.lockReservation(tx, reservationId);
          if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
          if (row.status !== 'open') return row.status;
          await this.ledger.settleReservation(tx, reservationId, 'released', now);
          await this.counters.settle({
            tenantId: row.tenant_id,
            runId: row.run_id,
            day: row.day,
            reservationId,
            apply: null,
          });
          this.metrics.reservationsSettled.inc({ how: 'released' });
          return 'released' as const;
        },
        { asyncCommit: true },
      ),
    );
    return { reservation_id: reservationId, status };
  }

  private async findReservation(reservationId: string): Promise<ReservationRow> {
    if (!/^[0-9a-f-]{36}$/i.test(reservationId)) throw new NotFoundError(`reservation ${reservationId} not found`);
    const [row] = await this.db.query<ReservationRow>(`SELECT * FROM reservations WHERE reservation_id = $1`, [
      reservationId,
    ]);
    if (!row) throw new NotFoundError(`reservation ${reservationId} not found`);
    return row;
  }

  /** A run's declared caps are stored so the stream and wall-time checks hold the run to them too. */
  private async recordDeclaredCaps(request: ReserveRequest, declared: NonNullable<ReturnType<typeof runCapsFromWire>>) {
    const run = await this.cache.run(request.tenant_id, request.run_id);
    const merged = tightest(run?.caps ?? null, declared);
    if (run && JSON.stringify(merged, bigintJson) === JSON.stringify(run.caps, bigintJson)) return;
    await this.repository.mergeRunCaps(request.tenant_id, request.run_id, request.project_id, declared);
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
    if (request.kind === 'charge') return { tokens, money: parseUsd(cost_usd!) };
    const hasTokens = prompt_tokens !== undefined || completion_tokens !== undefined;
    if (fallback === undefined && cost_usd !== undefined) return { tokens, money: parseUsd(cost_usd) };
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
    if (priced !== null) return { tokens, money: priced };
    if (fallback !== undefined) return { tokens, money: fallback };
    throw new UnprocessableError(
      `no price for model "${model}"${request.provider ? ` of ${request.provider}` : ''}: send estimate.cost_usd`,
    );
  }

  private actualOf(
    reservation: ReservationRow,
    request: CommitRequest,
    now: Date,
  ): { tokens: bigint; cost: bigint; source: 'provided' | 'computed' | 'estimate' } {
    const { cost_usd, prompt_tokens, completion_tokens } = request.actual;
    const hasTokens = prompt_tokens !== undefined || completion_tokens !== undefined;
    const tokens =
      reservation.kind === 'charge'
        ? 0n
        : hasTokens
          ? BigInt(prompt_tokens ?? 0) + BigInt(completion_tokens ?? 0)
          : BigInt(reservation.tokens);
    if (cost_usd !== undefined) return { tokens, cost: parseUsd(cost_usd), source: 'provided' };
    if (reservation.kind === 'llm' && hasTokens) {
      const priced = this.pricing.cost({
        tenantId: reservation.tenant_id,
        provider: reservation.provider,
        model: reservation.model,
        at: now,
        promptTokens: BigInt(prompt_tokens ?? 0),
        completionTokens: BigInt(completion_tokens ?? 0),
      });
      if (priced !== null) return { tokens, cost: priced, source: 'computed' };
    }
    return { tokens, cost: BigInt(reservation.cost_micros), source: 'estimate' };
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
    },
  ): ReserveResponse {
    const stopped = result.status === 'DENY_STOPPED';
    const scopes = this.scopes(result.counters, stopped, context, now);
    if (result.status === 'ALLOW' || result.status === 'PARTIAL') {
      const decision: AdmissionDecision =
        result.status === 'PARTIAL' ? 'publish_partial' : held.downgraded ? 'allow_cheaper_model' : 'allow';
      return this.answer(decision, 'none', {
        ...base,
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

const none = { reservation_id: null, expires_at: null, reserved: { cost_usd: '0.000000', tokens: '0' }, partial: null };

/** An operator switch as a cap of zero: nothing passes until it is turned off (it never resets by itself). */
function switchScope(scope: 'tenant' | 'playbook', cap: 'paused' | 'publisher_frozen'): WireScope {
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
