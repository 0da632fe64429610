import { randomUUID } from 'node:crypto';
import type { CommitRequest } from '@agentmeter/contracts';
import { type Clock, type Counters, DIMENSIONS } from '@agentmeter/domain';
import { ConflictError, NotFoundError } from '@agentmeter/http';
import type { CapContext, LimitsService } from '../caps/limits.service';
import type { CountersStore } from '../counters/counters.store';
import type { Crossing, CrossingsService } from '../crossings/crossings.service';
import type { Tx } from '../db/database';
import type { LedgerRepository, ReservationRow } from '../ledger/ledger.repository';
import type { CostCapMetrics } from '../metrics/cost-cap.metrics';
import type { PricingService } from '../pricing/pricing.service';
import type { CountersTransaction, StepResult } from '../settlement/counters-transaction';
import type { RebuildService } from '../settlement/rebuild.service';
import { SettlementService } from './settlement.service';

const NOW = new Date('2026-12-07T10:00:00Z');
const none = { value: null, source: 'none' as const, override: null };

function counters(committed: bigint): Counters {
  const all = Object.fromEntries(DIMENSIONS.map((d) => [d, { committed: 0n, reserved: 0n }])) as Counters;
  all.tenant_cost.committed = committed;
  return all;
}

function row(id: string, status: ReservationRow['status']): ReservationRow {
  return {
    reservation_id: id,
    tenant_id: 't1',
    project_id: 'p1',
    run_id: 'r1',
    role: 'writer',
    attempt: 1,
    kind: 'llm',
    model: 'gpt-test',
    requested_model: 'gpt-test',
    provider: null,
    decision: 'ALLOW',
    day: '2026-12-07',
    tokens: '0',
    cost_micros: '30000',
    external_micros: '0',
    status,
    created_at: NOW,
    expires_at: NOW,
    idempotency_key: null,
    request_hash: null,
  };
}

/** The step without PostgreSQL: runs the work once and keeps the crossings it was given to claim. */
class FakeStep {
  crossings: Crossing[] = [];
  async run<T>(work: (tx: Tx) => Promise<StepResult<T>>) {
    const { value, crossings = [] } = await work({} as Tx);
    this.crossings.push(...crossings);
    return { value, claimed: crossings };
  }
}

function setup(reservation: ReservationRow | null) {
  const step = new FakeStep();
  const settled: Array<{ reservationId: string; apply: unknown }> = [];
  const ledger = {
    commitReservation: async (_tx: Tx, commit: { cost: bigint | null }) =>
      reservation && {
        reservation,
        entry:
          reservation.status === 'committed'
            ? null
            : { tokens: '0', cost_micros: String(commit.cost ?? 30_000n), external_micros: '0' },
      },
    entryOfReservation: async () => ({ tokens: '0', cost_micros: '25000', entry_key: 'e' }),
  };
  const store = {
    settle: async (args: { reservationId: string; apply: unknown }) => {
      settled.push(args);
      return { released: true, applied: true, counters: counters(25_000n), stopped: false };
    },
    read: async () => ({ counters: counters(25_000n), stopped: false }),
  };
  const context = {
    settings: { timeZone: 'UTC' },
    run: null,
    limits: { runTokens: none, runWallTimeS: none, runCost: none, runExternal: none, tenantDailyCost: none },
    day: '2026-12-07',
    resetsAt: new Date('2026-12-08T00:00:00Z'),
  } as unknown as CapContext;
  const crossing = { id: 'cc-1' } as Crossing;
  const metrics = {
    admissionSeconds: { startTimer: () => () => undefined },
    spend: { inc: () => undefined },
    reservationsSettled: { inc: () => undefined },
  } as unknown as CostCapMetrics;
  const service = new SettlementService(
    step as unknown as CountersTransaction,
    store as unknown as CountersStore,
    ledger as unknown as LedgerRepository,
    { context: async () => context } as unknown as LimitsService,
    { detect: () => [crossing] } as unknown as CrossingsService,
    { cost: () => null } as unknown as PricingService,
    { load: async () => undefined } as unknown as RebuildService,
    metrics,
    { now: () => NOW } as Clock,
  );
  return { service, step, settled, crossing };
}

const commitBody: CommitRequest = {
  actual: { cost_usd: '0.025' },
  event: { source: 'coordinator', id: 'call-1' },
} as CommitRequest;

describe('SettlementService.commit', () => {
  it('accounts the actual spend, releases the hold and hands the crossings to the transaction step', async () => {
    const id = randomUUID();
    const { service, step, settled, crossing } = setup(row(id, 'open'));
    const answer = await service.commit(id, commitBody);
    expect(answer).toMatchObject({
      reservation_id: id,
      status: 'committed',
      accounted: { cost_usd: '0.025000' },
      duplicate: false,
      late: false,
    });
    expect(settled).toEqual([
      expect.objectContaining({ reservationId: id, apply: expect.objectContaining({ cost: 25_000n }) }),
    ]);
    expect(step.crossings).toEqual([crossing]);
  });

  it('answers a repeated commit with what was accounted, changing nothing', async () => {
    const id = randomUUID();
    const { service, settled, step } = setup(row(id, 'committed'));
    const answer = await service.commit(id, commitBody);
    expect(answer).toMatchObject({ duplicate: true, accounted: { cost_usd: '0.025000' } });
    expect(settled).toEqual([]);
    expect(step.crossings).toEqual([]);
  });

  it('refuses a released reservation (409) and an unknown one (404)', async () => {
    const released = randomUUID();
    await expect(setup(row(released, 'released')).service.commit(released, commitBody)).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(setup(null).service.commit(randomUUID(), commitBody)).rejects.toBeInstanceOf(NotFoundError);
    await expect(setup(null).service.commit('not-an-id', commitBody)).rejects.toBeInstanceOf(NotFoundError);
  });
});
