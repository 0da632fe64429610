import { Injectable } from '@nestjs/common';
import { type AgentEvent, eventKey } from '@agentmeter/contracts';
import { Clock, nextDayStart, parseUsd, type RunCapValues } from '@agentmeter/domain';
import { LimitsService, runCapsFromWire } from '../caps/limits.service';
import { CountersStore } from '../counters/counters.store';
import { CrossingsService, type SpendContext } from '../crossings/crossings.service';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { CountersTransaction } from '../settlement/counters-transaction';
import { PricingService } from '../pricing/pricing.service';
import { SettingsCache } from '../settings/settings.cache';
import { TimersQueue } from '../queues/timers.queue';
import {
  eventEntryKey,
  LedgerRepository,
  type ReservationRow,
  type RunStart,
  type SpendEntry,
} from '../ledger/ledger.repository';
import { RebuildService } from '../settlement/rebuild.service';

type Of<T extends AgentEvent['type']> = AgentEvent & { type: T };

/**
 * Accounts actual spend from agent.events.v1 (docs/cost-cap.md "Accounting and the ledger"), including calls made
 * without admission, once per event identity: the ledger insert decides what is new, only new entries
 * reach the Redis counters, and crossings are claimed in the same transaction.
 *
 * Calls without cost_usd are priced here with the price table ingest uses (model_prices and tenant
 * overrides); a call with no price is counted in tokens only ($0, cost_source "unpriced", counted in
 * agentmeter_cost_cap_unpriced_calls_total). When such a call was admitted, its commit (which carries the
 * reservation's estimate as a fallback) usually comes first and is the one accounted.
 */
@Injectable()
export class SpendService {
  constructor(
    private readonly step: CountersTransaction,
    private readonly ledger: LedgerRepository,
    private readonly counters: CountersStore,
    private readonly limits: LimitsService,
    private readonly crossings: CrossingsService,
    private readonly pricing: PricingService,
    private readonly timers: TimersQueue,
    private readonly cache: SettingsCache,
    private readonly rebuild: RebuildService,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
  ) {}

  async accountEvents(batch: AgentEvent[]): Promise<void> {
    const now = this.clock.now();
    const events = dedupe(batch);
    const starts: RunStart[] = [];
    const declared = new Map<string, RunCapValues | null>();
    const finishes: Array<{ tenantId: string; runId: string; projectId: string; at: Date }> = [];
    for (const event of events) {
      if (event.type === 'run_started') {
        const caps = runCapsFromWire(event.data.caps);
        starts.push({
          tenantId: event.data.tenant_id,
          runId: event.data.run_id,
          projectId: event.data.project_id,
          playbook: event.data.playbook ?? null,
          caps,
          startedAt: new Date(event.time),
        });
        declared.set(runKey(event.data.tenant_id, event.data.run_id), caps);
      } else if (event.type === 'run_finished' || event.type === 'run_failed') {
        finishes.push({
          tenantId: event.data.tenant_id,
          runId: event.data.run_id,
          projectId: event.data.project_id,
          at: new Date(event.time),
        });
      }
    }

    const items: Array<{ entry: SpendEntry; context: SpendContext; reservationId: string | null; timeZone: string }> =
      [];
    for (const event of events) {
      if (event.type !== 'llm_call' && event.type !== 'external_charge') continue;
      const d = event.data;
      const context = await this.limits.context(
        d.tenant_id,
        d.project_id,
        d.run_id,
        new Date(event.time),
        now,
        declared.get(runKey(d.tenant_id, d.run_id)) ?? null,
      );
      items.push({
        entry: this.entryOf(event, context.day),
        context: {
          tenantId: d.tenant_id,
          projectId: d.project_id,
          runId: d.run_id,
          phase: d.phase,
          role: 'role' in d ? d.role : undefined,
          at: new Date(event.time),
          ...context,
        },
        reservationId: d.reservation_id ?? null,
        timeZone: context.settings.timeZone,
      });
    }
    if (starts.length === 0 && finishes.length === 0 && items.length === 0) return;

    const {
      value: { fresh, settled: settledHolds },
    } = await this.step.run(
      async (tx) => {
        await this.ledger.startRuns(tx, starts, now);
        await this.ledger.finishRuns(tx, finishes, now);
        // Events naming the reservation they were admitted under settle it (docs/cost-cap.md "Settling from
        // the event"); their entries are built per attempt, since a retried attempt sees the rows anew.
        const reservations = await this.ledger.lockReservations(
          tx,
          items.flatMap((item) => (item.reservationId ? [item.reservationId] : [])),
        );
        const claimed = new Set<string>();
        const attempt = items.map((item) => {
          const row = item.reservationId ? reservations.get(item.reservationId) : undefined;
          if (!row || !this.settles(row, item.entry) || claimed.has(row.reservation_id)) return { ...item, row: null };
          claimed.add(row.reservation_id);
          return { ...this.settling(item, row), row };
        });
        const fresh = await this.ledger.insertEntries(
          tx,
          attempt.map((item) => item.entry),
        );
        const accounted = attempt.filter((item) => fresh.has(item.entry.entryKey));
        const settling = accounted.flatMap((item) => (item.row ? [item.row] : []));
        await this.ledger.markCommitted(
          tx,
          settling.map((row) => row.reservation_id),
          now,
        );
        const settled = await this.counters.settleMany(
          accounted.map(({ entry, row }) => ({
            tenantId: entry.tenantId,
            runId: entry.runId,
            day: entry.day,
            reservationId: row?.reservation_id ?? null,
            apply: { entryKey: entry.entryKey, tokens: entry.tokens, cost: entry.cost, external: entry.external },
          })),
        );
        const crossings = accounted.flatMap((item, i) => this.crossings.detect(item.context, settled[i]!.counters));
        // A hold Redis no longer had (its hash lost while its keys kept counting it): reloaded after the commit.
        const lost = accounted.flatMap((item, i) =>
          item.row && item.row.status !== 'lapsed' && !settled[i]!.released ? [item.row] : [],
        );
        return { value: { fresh, settled: { count: settling.length, lost } }, crossings };
      },
      { retryMs: 60_000 },
    );

    for (const row of settledHolds.lost) {
      await this.rebuild.load(
        [
          { kind: 'run', tenantId: row.tenant_id, runId: row.run_id },
          { kind: 'day', tenantId: row.tenant_id, day: row.day },
        ],
        true,
      );
    }
    if (settledHolds.count > 0) this.metrics.reservationsSettled.inc({ how: 'event' }, settledHolds.count);
    for (const item of items) {
      this.metrics.spend.inc({ origin: 'event', outcome: fresh.has(item.entry.entryKey) ? 'new' : 'duplicate' });
      if (item.entry.costSource === 'unpriced' && fresh.has(item.entry.entryKey)) this.metrics.unpriced.inc();
    }
    await this.afterRuns(starts, finishes, now);
  }

  /**
   * Whether an event settles the reservation it names: the same tenant and run (an event never touches another
   * tenant's reservation), and the reservation not released or committed yet.
   */
  private settles(row: ReservationRow, entry: SpendEntry): boolean {
    return (
      row.tenant_id === entry.tenantId &&
      row.run_id === entry.runId &&
      (row.status === 'open' || row.status === 'expired' || row.status === 'lapsed')
    );
  }

  /**
   * The entry of an event that settles a reservation, as a commit makes it: on the reservation's tenant-day
   * (where its hold is), linked to it; a call the price table cannot price counts the reservation's estimate.
   */
  private settling<T extends { entry: SpendEntry; context: SpendContext; timeZone: string }>(
    item: T,
    row: ReservationRow,
  ): T {
    const unpriced = item.entry.costSource === 'unpriced';
    const entry: SpendEntry = {
      ...item.entry,
      day: row.day,
      reservationId: row.reservation_id,
      ...(unpriced ? { cost: BigInt(row.cost_micros), costSource: 'estimate' as const } : {}),
    };
    const context = { ...item.context, day: row.day, resetsAt: nextDayStart(row.day, item.timeZone) };
    return { ...item, entry, context };
  }

  private entryOf(event: Of<'llm_call'> | Of<'external_charge'>, day: string): SpendEntry {
    const d = event.data;
    const base = {
      entryKey: eventEntryKey(event.source, event.id),
      tenantId: d.tenant_id,
      projectId: d.project_id,
      runId: d.run_id,
      day,
      recordedBy: 'event' as const,
      reservationId: null,
      occurredAt: new Date(event.time),
    };
    if (event.type === 'external_charge') {
      const amount = parseUsd(event.data.amount_usd);
      return { ...base, kind: 'charge', tokens: 0n, cost: amount, external: amount, costSource: 'provided' };
    }
    const call = event.data;
    const tokens = BigInt(call.prompt_tokens) + BigInt(call.completion_tokens);
    if (call.cost_usd !== undefined) {
      return { ...base, kind: 'llm', tokens, cost: parseUsd(call.cost_usd), external: 0n, costSource: 'provided' };
    }
    const priced = this.pricing.cost({
      tenantId: call.tenant_id,
      provider: call.provider,
      model: call.model,
      at: new Date(event.time),
      promptTokens: BigInt(call.prompt_tokens),
      completionTokens: BigInt(call.completion_tokens),
      cachedTokens: BigInt(call.cached_tokens),
      reasoningTokens: BigInt(call.reasoning_tokens),
    });
    return {
      ...base,
      kind: 'llm',
      tokens,
      cost: priced ?? 0n,
      external: 0n,
      costSource: priced === null ? 'unpriced' : 'computed',
    };
  }

  /** Wall-time timers of started runs; removal for finished ones (a run that ended never fires). */
  private async afterRuns(
    starts: RunStart[],
    finishes: Array<{ tenantId: string; runId: string }>,
    now: Date,
  ): Promise<void> {
    const finished = new Set(finishes.map((run) => runKey(run.tenantId, run.runId)));
    for (const run of [...starts, ...finishes]) this.cache.forgetRun(run.tenantId, run.runId);
    for (const start of starts) {
      if (finished.has(runKey(start.tenantId, start.runId))) continue;
      const context = await this.limits.context(start.tenantId, start.projectId, start.runId, now, now, start.caps);
      if (context.run?.finishedAt) continue;
      const limit = context.limits.runWallTimeS.value;
      if (limit !== null)
        await this.timers.scheduleWallTime(
          start.tenantId,
          start.runId,
          context.run?.startedAt ?? start.startedAt,
          limit,
        );
    }
    for (const finish of finishes) await this.timers.cancelWallTime(finish.tenantId, finish.runId);
  }
}

function runKey(tenantId: string, runId: string): string {
  return `${tenantId}\u0000${runId}`;
}

/** Keeps the first occurrence of each (source, id) in the batch. */
function dedupe(batch: AgentEvent[]): AgentEvent[] {
  const seen = new Set<string>();
  return batch.filter((event) => {
    const key = eventKey(event);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
