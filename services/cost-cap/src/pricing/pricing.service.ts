import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { PricingRepository } from '@agentmeter/database';
import { callCost, type Micros, PriceBook, type ReferencePrice } from '@agentmeter/domain';
import { LOGGER } from '../logger';

/** How often the in-memory price table is reloaded. */
const PRICE_REFRESH_MS = 60_000;

export interface PricedTokens {
  tenantId: string;
  provider: string | null;
  model: string;
  at: Date;
  promptTokens: bigint;
  completionTokens: bigint;
  cachedTokens?: bigint;
  reasoningTokens?: bigint;
}

/**
 * Prices tokens with the price table ingest uses (model_prices and tenant overrides, libs/domain PriceBook),
 * for estimates given in tokens, the cheaper model of a ladder, and calls reported without a cost.
 * Without a provider, a model priced by exactly one provider is priced; otherwise it is unpriced.
 */
@Injectable()
export class PricingService implements OnModuleInit, OnModuleDestroy {
  private book: PriceBook | null = null;
  private providers = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;

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

  async refresh(): Promise<void> {
    const prices = await this.repository.loadPricesOfAllTenants();
    const providers = new Map<string, Set<string>>();
    for (const price of prices) {
      const set = providers.get(price.model) ?? new Set<string>();
      set.add(price.provider);
      providers.set(price.model, set);
    }
    this.book = new PriceBook(prices);
    this.providers = new Map([...providers].map(([model, set]) => [model, [...set]]));
  }

  /**
   * What a reference call (1M prompt and 1M completion tokens) of the model costs the tenant at `at`, cheapest
   * and dearest over the providers that price it; null when none does. Compares models (ladder steps).
   */
  referencePrice(tenantId: string, model: string, at: Date): ReferencePrice | null {
    const costs = (this.providers.get(model) ?? [])
      .map((provider) =>
        this.cost({ tenantId, provider, model, at, promptTokens: 1_000_000n, completionTokens: 1_000_000n }),
      )
      .filter((cost): cost is Micros => cost !== null);
    if (costs.length === 0) return null;
    return {
      min: costs.reduce((a, b) => (b < a ? b : a)),
      max: costs.reduce((a, b) => (b > a ? b : a)),
    };
  }

  /** The cost of the tokens, or null when the model has no price. */
  cost(tokens: PricedTokens): Micros | null {
    if (!this.book) return null;
    const candidates = this.providers.get(tokens.model) ?? [];
    const provider = tokens.provider ?? (candidates.length === 1 ? candidates[0]! : null);
    if (provider === null) return null;
    const price = this.book.priceAt({ tenantId: tokens.tenantId, provider, model: tokens.model, at: tokens.at });
    if (!price) return null;
    return callCost(price, {
      promptTokens: tokens.promptTokens,
      completionTokens: tokens.completionTokens,
      cachedTokens: tokens.cachedTokens ?? 0n,
      reasoningTokens: tokens.reasoningTokens ?? 0n,
    });
  }
}
