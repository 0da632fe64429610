import type { ReserveRequest } from '@agentmeter/contracts';
import { type Clock, type Counters, DIMENSIONS } from '@agentmeter/domain';
import type { CapContext, LimitsService } from '../caps/limits.service';
import type { CostCapConfig } from '../config';
import { CountersRebuildingError, type CountersStore, type ReserveResult } from '../counters/counters.store';
import type { LedgerRepository, NewReservation, ReservationRow } from '../ledger/ledger.repository';
import type { CostCapMetrics } from '../metrics/cost-cap.metrics';
import type { PricingService } from '../pricing/pricing.service';
import type { RebuildService } from '../settlement/rebuild.service';
import type { SettingsCache } from '../settings/settings.cache';
import type { SettingsRepository } from '../settings/settings.repository';
import { AdmissionService } from './admission.service';
import type { SettlementService } from './settlement.service';

const NOW = new Date('2026-12-07T10:00:00Z');
const limit = (value: bigint | null) => ({ value, source: 'tenant' as const, override: null });

function zero(): Counters {
  return Object.fromEntries(DIMENSIONS.map((d) => [d, { committed: 0n, reserved: 0n }])) as Counters;
}

/** Redis counters as a map of holds against one tenant-day limit, with a generation a test can change. */
class FakeCounters {
  epoch = 'e1';
  generation = '1';
  held = 0n;
  /** Called after a hold is made, before the generations are read back (a rebuild in between). */
  afterReserve: (() => void) | null = null;
  constructor(private readonly dailyLimit: bigint) {}
  async reserve(args: { money: bigint }): Promise<ReserveResult> {
    const counters = zero();
    counters.tenant_cost.reserved = this.held;
    const room = this.held + args.money <= this.dailyLimit;
    if (room) this.held += args.money;
    const result: ReserveResult = {
      status: room ? 'ALLOW' : 'DENY_INSUFFICIENT',
      dimension: room ? 0 : 4,
      granted: room ? args.money : 0n,
      counters,
      epoch: this.epoch,
      generations: { run: this.generation, day: this.generation },
    };
    const after = this.afterReserve;
    this.afterReserve = null;
    after?.();
    return result;
  }
  async generations() {
    return { epoch: this.epoch, run: this.generation, day: this.generation };
  }
  async read() {
    return { counters: zero(), stopped: false };
  }
}

class FakeLedger {
  rows: NewReservation[] = [];
  async recordReservation(row: NewReservation): Promise<boolean> {
    this.rows.push(row);
    return true;
  }
  async findByIdempotencyKey(): Promise<ReservationRow | null> {
    return null;
  }
}

/** Voids and give-backs recorded; a void frees its hold in the fake counters. */
class FakeSettlement {
  voided: string[] = [];
  givenBack: string[] = [];
  constructor(private readonly counters: FakeCounters) {}
  async voidAttempt(reservationId: string): Promise<void> {
    this.voided.push(reservationId);
    this.counters.held = 0n;
  }
  async giveBack(_request: ReserveRequest, _day: string, reservationId: string): Promise<void> {
    this.givenBack.push(reservationId);
  }
}

/** The rebuild's retry rule without a rebuild: a rebuilding error runs the work again (a few times). */
const rebuild = {
  async retrying<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof CountersRebuildingError) || attempt === 3) throw error;
      }
    }
  },
};

function context(paused = false): CapContext {
  return {
    settings: {
      tenantId: 't1',
      timeZone: 'UTC',
      tenant: null,
      projects: new Map(),
      overrides: [],
      ladder: new Map(),
      pause: paused ? { pausedAt: NOW, pausedBy: 'ops', reason: 'incident' } : null,
    },
    run: null,
    limits: {
      runTokens: limit(null),
      runWallTimeS: limit(null),
      runCost: limit(null),
      runExternal: limit(null),
      tenantDailyCost: limit(100_000n),
    },
    day: '2026-12-07',
    resetsAt: new Date('2026-12-08T00:00:00Z'),
  } as CapContext;
}

function setup(options: { paused?: boolean } = {}) {
  const counters = new FakeCounters(100_000n);
  const ledger = new FakeLedger();
  const settlement = new FakeSettlement(counters);
  const metrics = {
    admissionSeconds: { startTimer: () => () => undefined },
    decisions: { inc: () => undefined },
  } as unknown as CostCapMetrics;
  const service = new AdmissionService(
    { COST_CAP_RESERVATION_TTL_S: 60, COST_CAP_REQUIRE_DAILY_CAP: false } as CostCapConfig,
    counters as unknown as CountersStore,
    ledger as unknown as LedgerRepository,
    { context: async () => context(options.paused) } as unknown as LimitsService,
    { freeze: async () => null } as unknown as SettingsCache,
    {} as SettingsRepository,
    { cost: () => null } as unknown as PricingService,
    settlement as unknown as SettlementService,
    rebuild as unknown as RebuildService,
    metrics,
    { now: () => NOW } as Clock,
  );
  return { service, counters, ledger, settlement };
}

const request = (cost: string): ReserveRequest => ({
  tenant_id: 't1',
  project_id: 'p1',
  run_id: 'r1',
  role: 'writer',
  attempt: 1,
  kind: 'llm',
  model: 'gpt-test',
  estimate: { cost_usd: cost },
});

describe('AdmissionService.decide', () => {
  it('holds the amount and records the reservation it answers', async () => {
    const { service, counters, ledger } = setup();
    const answer = await service.reserve(request('0.03'));
    expect(answer).toMatchObject({ decision: 'allow', reserved: { cost_usd: '0.030000' } });
    expect(counters.held).toBe(30_000n);
    expect(ledger.rows).toHaveLength(1);
    expect(ledger.rows[0]).toMatchObject({ reservationId: answer.reservation_id, cost: 30_000n, decision: 'ALLOW' });
  });

  it('denies what does not fit, and records nothing', async () => {
    const { service, ledger } = setup();
    await service.reserve(request('0.08'));
    const answer = await service.reserve(request('0.03'));
    expect(answer).toMatchObject({ decision: 'deny', reservation_id: null });
    expect(answer.denied_by).toMatchObject({ scope: 'tenant', cap: 'cost', reason: 'insufficient' });
    expect(ledger.rows).toHaveLength(1);
  });

  it('refuses a paused tenant before holding anything', async () => {
    const { service, counters, ledger } = setup({ paused: true });
    const answer = await service.reserve(request('0.01'));
    expect(answer).toMatchObject({ decision: 'deny', denied_by: { reason: 'paused' } });
    expect(counters.held).toBe(0n);
    expect(ledger.rows).toHaveLength(0);
  });

  it('voids a hold made in counters rebuilt meanwhile and holds again with a fresh id', async () => {
    const { service, counters, ledger, settlement } = setup();
    counters.afterReserve = () => {
      counters.epoch = 'e2';
    };
    const answer = await service.reserve(request('0.03'));
    expect(answer.decision).toBe('allow');
    expect(ledger.rows).toHaveLength(2);
    expect(settlement.voided).toEqual([ledger.rows[0]!.reservationId]);
    expect(answer.reservation_id).toBe(ledger.rows[1]!.reservationId);
    expect(answer.reservation_id).not.toBe(ledger.rows[0]!.reservationId);
    expect(counters.held).toBe(30_000n);
  });

  it('gives the hold back when its row cannot be recorded', async () => {
    const { service, ledger, settlement } = setup();
    ledger.recordReservation = async () => {
      throw new Error('connection lost');
    };
    await expect(service.reserve(request('0.03'))).rejects.toThrow('connection lost');
    expect(settlement.givenBack).toHaveLength(1);
  });
});
