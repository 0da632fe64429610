import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import type { AgentEvent } from '@agentmeter/contracts';
import { PricingRepository } from '@agentmeter/database';
import { callCost, parseUsd, PriceBook } from '@agentmeter/domain';
import type { CallCost } from '../events/events.repository';
import { LOGGER } from '../logger';

type LlmCall = AgentEvent & { type: 'llm_call' };

/** How often the in-memory price table is reloaded; a new price reaches ingest within this time. */
export const PRICE_REFRESH_MS = 60_000;

/**
 * Prices llm_calls at ingest from an in-memory copy of the price table, loaded before the Kafka consumer
 * starts (onModuleInit runs before onApplicationBootstrap) and reloaded every PRICE_REFRESH_MS. A failed
 * reload keeps the previous table and logs. Calls priced while a new price was not yet loaded keep the old
 * one until a reprice of their period.
 */
@Injectable()
export class PricingService implements OnModuleInit, OnModuleDestroy {
  private book: PriceBook | null = null;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly repository: PricingRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.logger.error({ err: error }, 'price table reload failed'));
    }, PRICE_REFRESH_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Loads the price table now (concurrent calls share one load). */
  refresh(): Promise<void> {
    this.refreshing ??= this.repository
      .loadPricesOfAllTenants()
      .then((prices) => {
        this.book = new PriceBook(prices);
        this.logger.debug({ prices: prices.length }, 'price table loaded');
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  /**
   * A producer's cost is kept as provided; otherwise the price in effect at the event's time gives a
   * computed cost; without one the call is unpriced (null, never zero).
   */
  cost(event: LlmCall): CallCost {
    if (event.data.cost_usd !== undefined) return { micros: parseUsd(event.data.cost_usd), source: 'provided' };
    if (!this.book) throw new Error('price table not loaded'); // a bug in start-up order, not a free call
    const d = event.data;
    const price = this.book.priceAt({
      tenantId: d.tenant_id,
      provider: d.provider,
      model: d.model,
      at: new Date(event.time),
    });
    if (!price) return { micros: null, source: 'unpriced' };
    const micros = callCost(price, {
      promptTokens: BigInt(d.prompt_tokens),
      completionTokens: BigInt(d.completion_tokens),
      cachedTokens: BigInt(d.cached_tokens),
      reasoningTokens: BigInt(d.reasoning_tokens),
    });
    return { micros, source: 'computed' };
  }
}
