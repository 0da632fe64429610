import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { decodeKafkaMessage, topicName, Topics, type AgentEvent } from '@agentmeter/contracts';
import { Redactor } from '@agentmeter/domain';
import { BatchConsumer, createKafka, type Decoded } from '@agentmeter/kafka';
import { AlertConfig } from '../config';
import { LOGGER } from '../logger';
import { ALERTING_EVENT_TYPES, AlertEventsService } from './alert-events.service';

/**
 * Kafka edge of the event rules: agent.events.v1 in batches under the alert service's own group. Messages
 * that are not valid events are skipped here (ingest dead-letters them); offsets are committed after the
 * batch's alerts are recorded.
 */
@Injectable()
export class AlertEventsConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly consumer: BatchConsumer<AgentEvent | null>;

  constructor(
    @Inject(AlertConfig) config: AlertConfig,
    @Inject(LOGGER) logger: Logger,
    events: AlertEventsService,
    redactor: Redactor,
  ) {
    const kafka = createKafka(
      { brokers: config.KAFKA_BROKERS, clientId: 'agentmeter-alert', topicPrefix: config.KAFKA_TOPIC_PREFIX },
      logger,
    );
    this.consumer = new BatchConsumer(
      kafka,
      {
        groupId: config.ALERT_GROUP_ID,
        topic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEvents),
        dlqTopic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEventsDlq),
        sessionTimeoutMs: config.ALERT_SESSION_TIMEOUT_MS,
      },
      {
        decode: (message: KafkaMessage): Decoded<AgentEvent | null> => {
          const result = decodeKafkaMessage(message);
          if (!result.ok || !ALERTING_EVENT_TYPES.has(result.event.type)) return { ok: true, value: null };
          // The same pass as ingest, before a sample's detail (a failure reason) is stored: docs/security.md.
          return { ok: true, value: redactor.event(result.event).event };
        },
        handle: async (batch) => void (await events.handle(batch.filter((e): e is AgentEvent => e !== null))),
      },
      logger,
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.consumer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
  }

  assertRunning(): void {
    if (!this.consumer.isRunning())
      throw new Error(`agent.events.v1 consumer not running: ${this.consumer.describe()}`);
  }
}
