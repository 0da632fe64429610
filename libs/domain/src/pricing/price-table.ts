import type { ReferencePrice } from '../caps/ladder';
import type { Micros } from '../money';
import { callCost, type ModelPrice, PriceBook } from './pricing';

/** Tokens of one call to price; provider null when the caller does not know it (an admission estimate). */
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
 * The price table every service prices with (ingest for stored calls, cost-cap for estimates, ladders and
 * calls reported without a cost): the rules of pricing.ts, plus one rule for callers without a provider:
 * a model priced by exactly one provider is priced at it; otherwise it is unpriced.
 */
export class PriceTable {
  private readonly book: PriceBook;
  private readonly providers = new Map<string, string[]>();

  constructor(prices: readonly ModelPrice[]) {
    this.book = new PriceBook(prices);
    const providers = new Map<string, Set<string>>();
    for (const price of prices) {
      const set = providers.get(price.model) ?? new Set<string>();
      set.add(price.provider);
      providers.set(price.model, set);
    }
    for (const [model, set] of providers) this.providers.set(model, [...set]);
  }

  /** The cost of the tokens, or null when the model has no price (unpriced, never zero). */
  cost(tokens: PricedTokens): Micros | null {
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
}

/** How often a service reloads the price table; a new price reaches every service within this time. */
export const PRICE_REFRESH_MS = 60_000;

/**
 * The in-memory price table of a service, loaded at start-up (before its consumers start) and reloaded
 * every PRICE_REFRESH_MS with `load` (libs/database PricingRepository.loadPricesOfAllTenants); a failed
 * reload keeps the previous table and reports the error. Prices are never read per request. Ingest and
 * cost-cap share it, so they price alike.
 */
export class PriceTableSource {
  private current: PriceTable | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly load: () => Promise<readonly ModelPrice[]>,
    private readonly onReloadError: (error: unknown) => void,
  ) {}

  /** The table loaded last; null before the first load. */
  get table(): PriceTable | null {
    return this.current;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => this.refresh().catch(this.onReloadError), PRICE_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Loads the price table now (concurrent calls share one load). */
  refresh(): Promise<void> {
    this.refreshing ??= this.load()
      .then((prices) => {
        this.current = new PriceTable(prices);
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }
}
