import { Injectable } from '@nestjs/common';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import { PartitionManager } from '@agentmeter/database';
import { projectEvents, Redactor, rollupModelUsage, rollupUsage, utcDay } from '@agentmeter/domain';
import { PricingService } from '../pricing/pricing.service';
import { EventsRepository, UNIQUE_VIOLATION, type BatchWrite, type CallCost } from './events.repository';
import { IngestMetrics } from './ingest.metrics';

type LlmCall = AgentEvent & { type: 'llm_call' };

/** SQLSTATE of a row outside every partition (its day partition was dropped by retention meanwhile). */
const CHECK_VIOLATION = '23514';

/**
 * Stores a batch of valid events exactly once: the event log insert decides which events are new, and
 * only those are projected into runs, stages, calls, failures and usage rollups (per dimension and per
 * model), all in one transaction.
 *
 * A batch is first written on the assumption that all its events are new (true unless a batch is
 * redelivered after a crash or a rebalance): plain INSERTs, projections computed before the transaction.
 * A stored event makes that transaction fail as a whole; the batch is then written again with the event
 * log deciding, row by row, which events are new.
 */
@Injectable()
export class EventsService {
  constructor(
    private readonly repository: EventsRepository,
    private readonly partitions: PartitionManager,
    private readonly metrics: IngestMetrics,
    private readonly pricing: PricingService,
    private readonly redactor: Redactor,
  ) {}

  async ingest(batch: AgentEvent[]): Promise<void> {
    // A redelivered event is redacted to the same id and source, so the event log still recognises it.
    const unique = dedupe(batch).map((event) => this.redact(event));
    const costs = new Map<LlmCall, CallCost>();
    for (const event of unique) if (event.type === 'llm_call') costs.set(event, this.pricing.cost(event));
    const costOf = (event: LlmCall): CallCost => costs.get(event) ?? this.pricing.cost(event);
    const priceOf = (event: LlmCall): bigint | null => costOf(event).micros;
    const writes = (events: AgentEvent[]): BatchWrite => {
      const usage = rollupUsage(events, priceOf);
      return { events, costOf, projection: projectEvents(events, priceOf), usage, modelUsage: rollupModelUsage(usage) };
    };

    const days = new Set<string>();
    for (const event of unique) days.add(dayOf(event.time));
    await this.partitions.ensureDays(days);
    await this.repository.ensureTenantsAndProjects(unique);
    let fresh = unique;
    try {
      try {
        await this.repository.storeNew(writes(unique));
      } catch (error) {
        if (codeOf(error) !== UNIQUE_VIOLATION) throw error;
        fresh = await this.repository.storeDeduplicated(unique, writes);
      }
    } catch (error) {
      // A partition dropped by retention in another process: re-check partitions on the redelivery.
      if (codeOf(error) === CHECK_VIOLATION) this.partitions.forget();
      throw error;
    }
    this.metrics.countBatch(unique, fresh.length === unique.length ? null : new Set(fresh), costOf);
  }

  /**
   * Secrets and PII leave the event here, envelope included, before anything is stored; identifiers become
   * pseudonyms (docs/security.md "Redaction and pseudonymisation").
   */
  private redact(event: AgentEvent): AgentEvent {
    const { event: redacted, found } = this.redactor.event(event);
    for (const kind of found) this.metrics.redactions.inc({ kind });
    return redacted;
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

/** The UTC day of an event time: a UTC ("Z") time starts with it, any other offset goes through Date. */
function dayOf(time: string): string {
  return time.endsWith('Z') ? time.slice(0, 10) : utcDay(time);
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}
