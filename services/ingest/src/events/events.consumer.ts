import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { decodeKafkaMessage, topicName, Topics, type AgentEvent } from '@agentmeter/contracts';
import { Redactor } from '@agentmeter/domain';
import { BatchConsumer, createKafka, type Decoded } from '@agentmeter/kafka';
import { IngestConfig } from '../config';
import { LOGGER } from '../logger';
import { EventsService } from './events.service';
import { IngestMetrics } from './ingest.metrics';

/** Kafka edge of ingest: agent.events.v1 in batches, invalid messages to agent.events.dlq.v1. */
@Injectable()
export class EventsConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly consumer: BatchConsumer<AgentEvent>;

  constructor(
    @Inject(IngestConfig) config: IngestConfig,
    @Inject(LOGGER) logger: Logger,
    events: EventsService,
    metrics: IngestMetrics,
    redactor: Redactor,
  ) {
    const kafka = createKafka(
      { brokers: config.KAFKA_BROKERS, clientId: 'agentmeter-ingest', topicPrefix: config.KAFKA_TOPIC_PREFIX },
      logger,
    );
    this.consumer = new BatchConsumer(
      kafka,
      {
        groupId: config.INGEST_GROUP_ID,
        topic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEvents),
        dlqTopic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEventsDlq),
        // One partition at a time per group member, as many members as partitions written at once.
        members: config.INGEST_PARTITIONS_CONCURRENTLY,
        partitionsConcurrently: 1,
        sessionTimeoutMs: config.INGEST_SESSION_TIMEOUT_MS,
      },
      {
        decode: (message: KafkaMessage): Decoded<AgentEvent> => {
          const result = decodeKafkaMessage(message);
          return result.ok ? { ok: true, value: result.event } : result;
        },
        handle: async (batch) => (await events.ingest(batch)).map(({ event, reason }) => ({ item: event, reason })),
        // Dead letters keep the message but not its secrets: they are stored (in Kafka) and logged.
        sanitize: (text) => sanitizeDeadLetter(text, redactor),
      },
      logger,
      metrics.consumerMetrics,
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.consumer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
  }

  assertRunning(): void {
    if (!this.consumer.isRunning()) throw new Error(`consumer not running: ${this.consumer.describe()}`);
  }
}

/**
 * A message that is JSON is redacted as a value (strings unescaped, identifiers pseudonymised like stored
 * events), so a secret escaped once more inside it is still found; anything else as text. An event's prompt
 * and completion texts are dropped: they are stored nowhere but a tenant's prompt audit (docs/events.md).
 */
export function sanitizeDeadLetter(text: string, redactor: Redactor): string {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      const texts = withoutPromptTexts(parsed);
      const { value, found } = redactor.value(texts ?? parsed);
      return found.length === 0 && !texts ? redactor.text(text).text : JSON.stringify(value);
    } catch {
      // not JSON after all: redacted as text below
    }
  }
  return redactor.text(text).text;
}

/** The event without its data's prompt and completion, or null when it has neither. */
function withoutPromptTexts(message: unknown): unknown {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return null;
  const data = (message as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null || !('prompt' in data || 'completion' in data)) return null;
  const { prompt: _prompt, completion: _completion, ...rest } = data as Record<string, unknown>;
  return { ...message, data: rest };
}
