import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import type { AgentEvent } from '@agentmeter/contracts';
import { PricingRepository } from '@agentmeter/database';
import { parseUsd, PriceTableSource } from '@agentmeter/domain';
import type { CallCost } from '../events/events.repository';
import { LOGGER } from '../logger';

type LlmCall = AgentEvent & { type: 'llm_call' };

export { PRICE_REFRESH_MS } from '@agentmeter/domain';

/**
 * Prices llm_calls at ingest with the price table cost-cap uses too (libs/domain PriceTable, PriceTableSource),
 * loaded before the Kafka consumer starts (onModuleInit runs before onApplicationBootstrap) and reloaded
 * every PRICE_REFRESH_MS. A failed reload keeps the previous table and logs. Calls priced while a new
 * price was not yet loaded keep the old one until a reprice of their period.
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

  /** Loads the price table now (concurrent calls share one load). */
  refresh(): Promise<void> {
    return this.source.refresh();
  }

  /**
   * A producer's cost is kept as provided; otherwise the price in effect at the event's time gives a
   * computed cost; without one the call is unpriced (null, never zero).
   */
  cost(event: LlmCall): CallCost {
    if (event.data.cost_usd !== undefined) return { micros: parseUsd(event.data.cost_usd), source: 'provided' };
    const table = this.source.table;
    if (!table) throw new Error('price table not loaded'); // a bug in start-up order, not a free call
    const d = event.data;
    const micros = table.cost({
      tenantId: d.tenant_id,
      provider: d.provider,
      model: d.model,
      at: new Date(event.time),
      promptTokens: BigInt(d.prompt_tokens),
      completionTokens: BigInt(d.completion_tokens),
      cachedTokens: BigInt(d.cached_tokens),
      reasoningTokens: BigInt(d.reasoning_tokens),
    });
    return micros === null ? { micros: null, source: 'unpriced' } : { micros, source: 'computed' };
  }
}
