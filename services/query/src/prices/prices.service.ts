import { Injectable } from '@nestjs/common';
import { PricingRepository, type PriceRecord } from '@agentmeter/database';
import { Clock, formatUsd, parseUsd, PRICE_REFRESH_MS } from '@agentmeter/domain';
import { ConflictError, InvalidRequestError, NotFoundError } from '@agentmeter/http';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import type { Caller } from '../auth/caller';
import { Limits } from '../http/limits';
import { TenantsRepository } from '../tenants/tenants.repository';
import type {
  Price,
  PriceBody,
  PriceChange,
  PriceList,
  PriceQuery,
  RepriceBody,
  RepriceList,
  RepriceQuery,
  RepriceStatus,
} from './prices.schemas';
import { RepriceQueue } from './reprice.queue';

/** How far in the past an effective_from may be (a client clock behind the server's); older: 400. */
export const EFFECTIVE_FROM_SKEW_MS = 60_000;

/** The widest period one reprice request may cover. */
const MAX_REPRICE_DAYS = 400;

export const REPRICE_ACTION = 'prices.reprice';

/**
 * Price administration (docs/query.md "Prices"): effective-dated prices are added, never rewritten, and
 * retired; past calls change only through a reprice of their period, which runs as a job. Every change is
 * audited (who, why, before and after) before it is made and completed after it.
 */
@Injectable()
export class PricesService {
  constructor(
    private readonly prices: PricingRepository,
    private readonly tenants: TenantsRepository,
    private readonly audit: AuditRepository,
    private readonly limits: Limits,
    private readonly queue: RepriceQueue,
    private readonly clock: Clock,
  ) {}

  async list(query: PriceQuery): Promise<PriceList> {
    const limit = this.limits.pageSize(query.limit, false);
    const rows = await this.prices.listPricesOfAllTenants({
      now: this.clock.now(),
      statuses: query.history === 'true' ? ['current', 'scheduled', 'superseded', 'retired'] : ['current', 'scheduled'],
      provider: query.provider,
      model: query.model,
      tenantId: query.tenant_id,
      limit,
    });
    return { items: rows.map((row) => priceOf(row, row.status ?? 'current')), limit };
  }

  async create(caller: Caller, body: PriceBody): Promise<PriceChange> {
    const now = this.clock.now();
    const effectiveFrom = body.effective_from ? new Date(body.effective_from) : now;
    if (effectiveFrom.getTime() < now.getTime() - EFFECTIVE_FROM_SKEW_MS) {
      throw new InvalidRequestError(
        'effective_from: must be now or later; to change the cost of past calls, add the price and reprice their period',
      );
    }
    const tenantId = body.tenant_id ?? null;
    if (tenantId !== null && !(await this.tenants.settings(tenantId))) {
      throw new NotFoundError(`tenant_id: tenant ${tenantId} not found`);
    }
    const rate = (value: string | undefined) => (value === undefined ? null : parseUsd(value));
    const price = {
      provider: body.provider,
      model: body.model,
      tenantId,
      effectiveFrom,
      inputPerMillion: parseUsd(body.input_usd_per_million),
      cachedInputPerMillion: rate(body.cached_input_usd_per_million),
      outputPerMillion: parseUsd(body.output_usd_per_million),
      reasoningPerMillion: rate(body.reasoning_usd_per_million),
    };
    const [before] = await this.prices
      .listPricesOfAllTenants({
        now: effectiveFrom,
        statuses: ['current'],
        provider: body.provider,
        model: body.model,
        tenantId: tenantId ?? undefined,
        limit: 2,
      })
      .then((rows) => rows.filter((row) => row.tenant_id === tenantId));
    const after = {
      provider: price.provider,
      model: price.model,
      tenant_id: tenantId,
      effective_from: effectiveFrom.toISOString(),
      input_usd_per_million: formatUsd(price.inputPerMillion),
      cached_input_usd_per_million:
        price.cachedInputPerMillion === null ? null : formatUsd(price.cachedInputPerMillion),
      output_usd_per_million: formatUsd(price.outputPerMillion),
      reasoning_usd_per_million: price.reasoningPerMillion === null ? null : formatUsd(price.reasoningPerMillion),
      note: body.note ?? null,
    };
    const auditId = await this.audit.begin({
      ...auditActor(caller),
      tenantId,
      action: 'prices.create',
      target: `${body.provider}/${body.model}`,
      reason: body.reason,
      params: { before: before ? priceOf(before, 'current') : null, after },
      executor: 'query',
    });
    const row = await this.prices.addPrice(price, body.note ?? null);
    if (!row) {
      await this.audit.finish(auditId, 'failed', 'a price with this key and effective_from exists');
      throw new ConflictError(
        'effective_from: a price of this model, provider and tenant starts at this time already; retire it first',
      );
    }
    await this.audit.finish(auditId, 'succeeded', `price ${row.id} added; applies within ${PRICE_REFRESH_MS / 1000} s`);
    // Its status as listed (a price of the last seconds may already be superseded by a newer one).
    const stored = await this.prices.findPrice(row.id, now);
    return { audit_id: auditId, price: priceOf(stored ?? row, null) };
  }

  async retire(caller: Caller, id: string, reason: string): Promise<PriceChange> {
    const at = this.clock.now();
    const before = await this.prices.findPrice(id, at);
    if (!before) throw new NotFoundError(`price ${id} not found`);
    if (before.retired_at !== null) throw new ConflictError(`price ${id} is retired already`);
    const auditId = await this.audit.begin({
      ...auditActor(caller),
      tenantId: before.tenant_id,
      action: 'prices.retire',
      target: id,
      reason,
      params: {
        before: priceOf(before, null),
        after: { ...priceOf(before, 'retired'), retired_at: at.toISOString() },
      },
      executor: 'query',
    });
    const row = await this.prices.retirePrice(id, at);
    await this.audit.finish(auditId, row ? 'succeeded' : 'failed', row ? 'retired' : 'retired meanwhile');
    if (!row) throw new ConflictError(`price ${id} is retired already`);
    return { audit_id: auditId, price: priceOf(row, 'retired') };
  }

  async reprice(caller: Caller, body: RepriceBody): Promise<RepriceStatus> {
    const from = new Date(body.from);
    const to = new Date(body.to);
    if (!(from.getTime() < to.getTime())) throw new InvalidRequestError('to: must be after from');
    if (to.getTime() - from.getTime() > MAX_REPRICE_DAYS * 86_400_000) {
      throw new InvalidRequestError(`to: a reprice covers at most ${MAX_REPRICE_DAYS} days`);
    }
    if (body.tenant_id !== undefined && !(await this.tenants.settings(body.tenant_id))) {
      throw new NotFoundError(`tenant_id: tenant ${body.tenant_id} not found`);
    }
    const auditId = await this.audit.begin({
      ...auditActor(caller),
      tenantId: body.tenant_id ?? null,
      action: REPRICE_ACTION,
      target: body.model ?? '*',
      reason: body.reason,
      params: {
        from: from.toISOString(),
        to: to.toISOString(),
        model: body.model ?? null,
        tenant_id: body.tenant_id ?? null,
      },
      executor: 'query',
    });
    try {
      await this.queue.add(auditId);
    } catch (error) {
      await this.audit.finish(auditId, 'failed', 'could not queue the reprice');
      throw error;
    }
    return (await this.status(auditId))!;
  }

  async status(id: string): Promise<RepriceStatus | undefined> {
    const row = await this.audit.get(id, REPRICE_ACTION);
    if (!row) return undefined;
    const result = row.outcome === 'succeeded' ? await this.prices.repriceOfRequest(id) : undefined;
    const params = row.params as { from: string; to: string; model: string | null; tenant_id: string | null };
    return {
      id: row.id,
      status: row.outcome,
      requested_at: row.at.toISOString(),
      finished_at: row.finished_at?.toISOString() ?? null,
      from: params.from,
      to: params.to,
      model: params.model,
      tenant_id: params.tenant_id,
      detail: row.detail,
      result: result
        ? {
            reprice_audit_id: result.auditId,
            calls_considered: result.callsConsidered,
            calls_affected: result.callsAffected,
            old_total_usd: formatUsd(result.oldTotalMicros),
            new_total_usd: formatUsd(result.newTotalMicros),
            old_unpriced_calls: result.oldUnpricedCalls,
            new_unpriced_calls: result.newUnpricedCalls,
          }
        : null,
    };
  }

  /**
   * Runs the reprice a request asked for (the job of reprice.processor.ts). A job that runs again after the
   * reprice committed (a crash before the audit row was completed) only completes the audit row.
   */
  async runReprice(requestId: string, lastAttempt: boolean): Promise<void> {
    const row = await this.audit.get(requestId, REPRICE_ACTION);
    if (!row) throw new NotFoundError(`reprice ${requestId} not found`);
    if (row.outcome !== 'requested') return;
    let result = await this.prices.repriceOfRequest(requestId);
    try {
      const params = row.params as { from: string; to: string; model: string | null; tenant_id: string | null };
      result ??= await this.prices.reprice({
        actor: row.actor,
        reason: row.reason ?? REPRICE_ACTION,
        from: new Date(params.from),
        to: new Date(params.to),
        ...(params.model !== null ? { model: params.model } : {}),
        ...(params.tenant_id !== null ? { tenantId: params.tenant_id } : {}),
        requestId,
      });
    } catch (error) {
      if (lastAttempt) await this.audit.finish(requestId, 'failed', `reprice failed: ${String(error)}`);
      throw error;
    }
    await this.audit.finish(
      requestId,
      'succeeded',
      `reprice_audit ${result.auditId}: ${result.callsAffected} of ${result.callsConsidered} calls changed`,
    );
  }

  /** Reprice requests, newest first (or the one of `query.id`), with their status. */
  async reprices(query: RepriceQuery): Promise<RepriceList> {
    const limit = this.limits.pageSize(query.limit);
    if (query.id !== undefined) {
      const status = await this.status(query.id);
      return { items: status ? [status] : [], limit };
    }
    const rows = await this.audit.list({
      tenantId: null,
      action: REPRICE_ACTION,
      from: new Date(0),
      to: new Date(this.clock.now().getTime() + 1_000),
      beforeId: null,
      limit,
    });
    const items = await Promise.all(rows.map((row) => this.status(row.id)));
    return { items: items.filter((item): item is RepriceStatus => item !== undefined), limit };
  }
}

function priceOf(row: PriceRecord, status: Price['status'] | null): Price {
  const usd = (micros: string | null) => (micros === null ? null : formatUsd(BigInt(micros)));
  return {
    id: row.id,
    provider: row.provider,
    model: row.model,
    tenant_id: row.tenant_id,
    effective_from: row.effective_from.toISOString(),
    retired_at: row.retired_at?.toISOString() ?? null,
    status: status ?? row.status ?? 'current',
    input_usd_per_million: formatUsd(BigInt(row.input)),
    cached_input_usd_per_million: usd(row.cached_input),
    output_usd_per_million: formatUsd(BigInt(row.output)),
    reasoning_usd_per_million: usd(row.reasoning),
    note: row.note,
    created_at: row.created_at.toISOString(),
  };
}
