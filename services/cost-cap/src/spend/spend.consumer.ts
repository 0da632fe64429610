import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { type AgentEvent, decodeKafkaMessage, topicName, Topics } from '@agentmeter/contracts';
import { Redactor } from '@agentmeter/domain';
import { BatchConsumer, createKafka, type Decoded } from '@agentmeter/kafka';
import { CostCapConfig } from '../config';
import { LOGGER } from '../logger';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { SpendService } from './spend.service';

/** The event types cost-cap accounts or tracks; everything else is skipped at decode time. */
const RELEVANT = new Set<AgentEvent['type']>([
  'run_started',
  'run_finished',
  'run_failed',
  'llm_call',
  'external_charge',
]);

/**
 * Kafka edge of spend accounting: agent.events.v1 in batches, in cost-cap's own consumer group, offsets
 * committed after the ledger transaction. Invalid messages are skipped, not dead-lettered: ingest reads
 * the same topic and owns the dead-letter topic (one dead letter per bad message, not one per service).
 */
@Injectable()
export class SpendConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly consumer: BatchConsumer<AgentEvent | null>;

  constructor(
    @Inject(CostCapConfig) config: CostCapConfig,
    @Inject(LOGGER) logger: Logger,
    spend: SpendService,
    metrics: CostCapMetrics,
    redactor: Redactor,
  ) {
    const kafka = createKafka(
      { brokers: config.KAFKA_BROKERS, clientId: 'agentmeter-cost-cap', topicPrefix: config.KAFKA_TOPIC_PREFIX },
      logger,
    );
    this.consumer = new BatchConsumer<AgentEvent | null>(
      kafka,
      {
        groupId: config.COST_CAP_GROUP_ID,
        topic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEvents),
        dlqTopic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEventsDlq),
        partitionsConcurrently: config.COST_CAP_PARTITIONS_CONCURRENTLY,
        sessionTimeoutMs: config.COST_CAP_SESSION_TIMEOUT_MS,
      },
      {
        decode: (message: KafkaMessage): Decoded<AgentEvent | null> => {
          const result = decodeKafkaMessage(message);
          if (!result.ok) {
            metrics.skipped.inc({ reason: result.reason.split(':')[0] ?? 'invalid' });
            return { ok: true, value: null };
          }
          if (!RELEVANT.has(result.event.type)) return { ok: true, value: null };
          // The same pass as ingest: identifiers get the pseudonyms ingest stores (docs/security.md).
          return { ok: true, value: redactor.event(result.event).event };
        },
        handle: (batch) => spend.accountEvents(batch.filter((event): event is AgentEvent => event !== null)),
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
