import { Injectable } from '@nestjs/common';
import { eventKey, type AgentEvent } from '@agentmeter/contracts';
import { parseUsd, projectEvents } from '@agentmeter/domain';
import { EventsRepository } from './events.repository';
import { IngestMetrics } from './ingest.metrics';

type LlmCall = AgentEvent & { type: 'llm_call' };

/**
 * Stores a batch of valid events exactly once: the event log insert decides which events are new, and
 * only those are projected into runs, stages and call rows, all in one transaction.
 */
@Injectable()
export class EventsService {
  constructor(
    private readonly repository: EventsRepository,
    private readonly metrics: IngestMetrics,
  ) {}

  async ingest(batch: AgentEvent[]): Promise<void> {
    const unique = dedupe(batch);
    const fresh = await this.repository.transaction(async (tx) => {
      const stored = await tx.insertEvents(unique);
      const fresh = unique.filter((event) => stored.has(eventKey(event)));
      await tx.insertCalls(fresh, costOf);
      await tx.applyProjection(projectEvents(fresh, costOf));
      return fresh;
    });
    this.count(unique, fresh);
  }

  private count(all: AgentEvent[], fresh: AgentEvent[]): void {
    const freshSet = new Set(fresh);
    for (const event of all) {
      this.metrics.events.inc({ type: event.type, outcome: freshSet.has(event) ? 'stored' : 'duplicate' });
      if (event.type === 'llm_call' && freshSet.has(event)) {
        this.metrics.tokens.inc({ model: event.data.model, kind: 'prompt' }, event.data.prompt_tokens);
        this.metrics.tokens.inc({ model: event.data.model, kind: 'completion' }, event.data.completion_tokens);
      }
    }
  }
}

/** Cost a producer provided is kept; unpriced calls stay null (pricing by the price table is issue #3). */
function costOf(event: LlmCall): bigint | null {
  return event.data.cost_usd === undefined ? null : parseUsd(event.data.cost_usd);
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
