import { Injectable } from '@nestjs/common';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import { PartitionManager } from '@agentmeter/database';
import { projectEvents, redactValue, rollupUsage, utcDay } from '@agentmeter/domain';
import { PricingService } from '../pricing/pricing.service';
import { EventsRepository, type CallCost } from './events.repository';
import { IngestMetrics } from './ingest.metrics';

type LlmCall = AgentEvent & { type: 'llm_call' };

/**
 * Stores a batch of valid events exactly once: the event log insert decides which events are new, and
 * only those are projected into runs, stages, calls, failures and usage rollups, all in one transaction.
 */
@Injectable()
export class EventsService {
  constructor(
    private readonly repository: EventsRepository,
    private readonly partitions: PartitionManager,
    private readonly metrics: IngestMetrics,
    private readonly pricing: PricingService,
  ) {}

  async ingest(batch: AgentEvent[]): Promise<void> {
    const unique = dedupe(batch).map((event) => this.redact(event));
    const costs = new Map<LlmCall, CallCost>();
    for (const event of unique) if (event.type === 'llm_call') costs.set(event, this.pricing.cost(event));
    const costOf = (event: LlmCall): CallCost => costs.get(event) ?? this.pricing.cost(event);
    const priceOf = (event: LlmCall): bigint | null => costOf(event).micros;

    await this.partitions.ensureDays(unique.map((event) => utcDay(event.time)));
    await this.repository.ensureTenantsAndProjects(unique);
    let fresh: AgentEvent[];
    try {
      fresh = await this.repository.transaction(async (tx) => {
        const stored = await tx.insertEvents(unique);
        const fresh = unique.filter((event) => stored.has(eventKey(event)));
        await tx.insertCalls(fresh, costOf);
        await tx.applyProjection(projectEvents(fresh, priceOf));
        await tx.applyUsage(rollupUsage(fresh, priceOf));
        await tx.applyFailures(fresh);
        await tx.applyAudit(fresh);
        return fresh;
      });
    } catch (error) {
      // A partition dropped by retention in another process: re-check partitions on the redelivery.
      if ((error as { code?: string }).code === '23514') this.partitions.forget();
      throw error;
    }
    this.count(unique, fresh, costOf);
  }

  /** Secrets and PII leave the event here, before anything is stored (seed 001 "Retention & privacy"). */
  private redact(event: AgentEvent): AgentEvent {
    const { value, found } = redactValue(event.data);
    if (found.length === 0) return event;
    for (const kind of found) this.metrics.redactions.inc({ kind });
    return { ...event, data: value } as AgentEvent;
  }

  private count(all: AgentEvent[], fresh: AgentEvent[], costOf: (event: LlmCall) => CallCost): void {
    const freshSet = new Set(fresh);
    for (const event of all) {
      const stored = freshSet.has(event);
      this.metrics.events.inc({ type: event.type, outcome: stored ? 'stored' : 'duplicate' });
      if (!stored) continue;
      if (event.type === 'llm_call') this.metrics.observeLlmCall(event, costOf(event));
      if (event.type === 'tool_call') this.metrics.observeToolCall(event);
    }
  }
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
