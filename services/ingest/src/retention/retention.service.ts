import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { PartitionManager } from '@agentmeter/database';
import { Clock, retentionPlan } from '@agentmeter/domain';
import { IngestConfig } from '../config';
import { LOGGER } from '../logger';
import { RetentionRepository } from './retention.repository';

export interface RetentionOutcome {
  droppedPartitions: string[];
  foldedUsageRows: number;
  deletedRuns: number;
  deletedMonths: number;
  deletedPromptTexts: number;
}

/**
 * Keeps storage inside its windows: day partitions ready ahead, raw partitions dropped after the raw
 * window, daily usage folded into months after 90 days, aggregates deleted after 13 months, prompt audit texts
 * deleted after their tenant's retention.
 */
@Injectable()
export class RetentionService {
  constructor(
    @Inject(IngestConfig) private readonly config: IngestConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly partitions: PartitionManager,
    private readonly repository: RetentionRepository,
    private readonly clock: Clock,
  ) {}

  async run(now: Date = this.clock.now()): Promise<RetentionOutcome> {
    const plan = retentionPlan(now, {
      rawDays: this.config.RETENTION_RAW_DAYS,
      dailyUsageDays: this.config.RETENTION_DAILY_USAGE_DAYS,
      aggregateMonths: this.config.RETENTION_AGGREGATE_MONTHS,
      partitionsAheadDays: 7,
    });
    await this.partitions.ensureDays(plan.ensureDays);
    const droppedPartitions = await this.partitions.dropBefore(plan.dropRawBefore);
    const foldedUsageRows = await this.repository.foldUsageBefore(plan.foldUsageBefore);
    const deleted = await this.repository.deleteAggregatesBefore(plan.deleteAggregatesBefore);
    const deletedPromptTexts = await this.repository.deleteExpiredPromptTexts(now);
    const outcome = {
      droppedPartitions,
      foldedUsageRows,
      deletedRuns: deleted.runs,
      deletedMonths: deleted.months,
      deletedPromptTexts,
    };
    this.logger.info({ plan, ...outcome, droppedPartitions: droppedPartitions.length }, 'retention done');
    return outcome;
  }
}
