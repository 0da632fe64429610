import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { PricingRepository } from '@agentmeter/database';
import { type Micros, type PricedTokens, PriceTableSource, type ReferencePrice } from '@agentmeter/domain';
import { LOGGER } from '../logger';

export type { PricedTokens } from '@agentmeter/domain';

/**
 * cost-cap's handle on the price table ingest prices with (libs/domain PriceTable, PriceTableSource), for
 * estimates given in tokens, the cheaper model of a ladder, and calls reported without a cost.
 */
@Injectable()
export class PricingService implements OnModuleInit, OnModuleDestroy {
  private readonly source: PriceTableSource;

  constructor(repository: PricingRepository, @Inject(LOGGER) logger: Logger) {
    this.source = new PriceTableSource(
      () => repository.loadPricesOfAllTenants(),
      (error) => logger.error({ err: error }, 'price table reload failed'),
    );
  }

  onModuleInit(): Promise<void> {
    return this.source.start();
  }

  onModuleDestroy(): void {
    this.source.stop();
  }

  refresh(): Promise<void> {
    return this.source.refresh();
  }

  referencePrice(tenantId: string, model: string, at: Date): ReferencePrice | null {
    return this.source.table?.referencePrice(tenantId, model, at) ?? null;
  }

  /** The cost of the tokens, or null when the model has no price. */
  cost(tokens: PricedTokens): Micros | null {
    return this.source.table?.cost(tokens) ?? null;
  }
}
