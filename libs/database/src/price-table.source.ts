import { PriceTable } from '@agentmeter/domain';
import type { PricingRepository } from './pricing.repository';

/** How often a service reloads the price table; a new price reaches every service within this time. */
export const PRICE_REFRESH_MS = 60_000;

/**
 * The in-memory price table of a service, loaded from PostgreSQL at start-up (before its consumers start)
 * and reloaded every PRICE_REFRESH_MS; a failed reload keeps the previous table and reports the error.
 * Prices are never read per request. Ingest and cost-cap share it, so they price alike.
 */
export class PriceTableSource {
  private current: PriceTable | null = null;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly repository: PricingRepository,
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
    this.refreshing ??= this.repository
      .loadPricesOfAllTenants()
      .then((prices) => {
        this.current = new PriceTable(prices);
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }
}
