import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { addDays, Clock, formatUsd } from '@agentmeter/domain';
import { CostCapConfig } from '../config';
import { LOGGER } from '../logger';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { DailyCapsRepository } from './daily-caps.repository';
import { LimitsService } from './limits.service';

const REFRESH_MS = 10_000;

/**
 * Keeps the caps table (one row per tenant and local day, docs/cost-cap.md "Accounting and the ledger") in step with the ledger, and the
 * remaining-budget gauges: every REFRESH_MS, for the tenants that spent today in their zone, spent is the
 * ledger's sum, the cap the one in force, blocked whether it is reached. The gauges keep only the
 * COST_CAP_METRICS_TENANTS tenants closest to their cap (bounded label cardinality).
 */
@Injectable()
export class DailyCapsRefresher implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(
    @Inject(CostCapConfig) private readonly config: CostCapConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly repository: DailyCapsRepository,
    private readonly limits: LimitsService,
    private readonly metrics: CostCapMetrics,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.refresh()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'daily caps refresh failed'))
        .finally(() => (this.running = null));
    }, REFRESH_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async refresh(now: Date = this.clock.now()): Promise<void> {
    const utcToday = now.toISOString().slice(0, 10);
    const rows = await this.repository.spentByTenantDay(addDays(utcToday, -1), addDays(utcToday, 1));
    const budgets: Array<{ tenant: string; remaining: bigint }> = [];
    for (const row of rows) {
      const context = await this.limits.context(row.tenant_id, '', '', now, now);
      if (context.day !== row.day) continue; // another day than the tenant's today
      const limit = context.limits.tenantDailyCost.value;
      const spent = BigInt(row.spent);
      await this.repository.refresh(row.tenant_id, row.day, limit, spent);
      if (limit !== null) budgets.push({ tenant: row.tenant_id, remaining: limit > spent ? limit - spent : 0n });
    }
    budgets.sort((a, b) => (a.remaining < b.remaining ? -1 : a.remaining > b.remaining ? 1 : 0));
    this.metrics.remainingBudget.reset();
    for (const { tenant, remaining } of budgets.slice(0, this.config.COST_CAP_METRICS_TENANTS)) {
      this.metrics.remainingBudget.set({ tenant }, Number(formatUsd(remaining)));
    }
  }
}
