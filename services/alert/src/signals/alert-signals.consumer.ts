import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { AlertSignal, topicName, Topics } from '@agentmeter/contracts';
import { BatchConsumer, createKafka, type Decoded } from '@agentmeter/kafka';
import { AlertConfig } from '../config';
import { LOGGER } from '../logger';
import { AlertSignalsService } from './alert-signals.service';

/** Kafka edge of agent.alerts.v1 (group "<ALERT_GROUP_ID>-signals"). Invalid signals are logged and skipped. */
@Injectable()
export class AlertSignalsConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly consumer: BatchConsumer<AlertSignal | null>;

  constructor(@Inject(AlertConfig) config: AlertConfig, @Inject(LOGGER) logger: Logger, signals: AlertSignalsService) {
    const kafka = createKafka(
      { brokers: config.KAFKA_BROKERS, clientId: 'agentmeter-alert-signals', topicPrefix: config.KAFKA_TOPIC_PREFIX },
      logger,
    );
    this.consumer = new BatchConsumer(
      kafka,
      {
        groupId: `${config.ALERT_GROUP_ID}-signals`,
        topic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.Alerts),
        dlqTopic: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEventsDlq),
        sessionTimeoutMs: config.ALERT_SESSION_TIMEOUT_MS,
      },
      {
        decode: (message: KafkaMessage): Decoded<AlertSignal | null> => {
          let parsed: ReturnType<typeof AlertSignal.safeParse> | null;
          try {
            parsed = AlertSignal.safeParse(JSON.parse(message.value?.toString('utf8') ?? ''));
          } catch {
            parsed = null;
          }
          if (parsed?.success) return { ok: true, value: parsed.data };
          const reason = parsed
            ? parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
            : 'not JSON';
          logger.warn({ offset: message.offset, reason }, 'invalid alert signal skipped');
          return { ok: true, value: null };
        },
        handle: async (batch) => void (await signals.handle(batch.filter((s): s is AlertSignal => s !== null))),
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
      throw new Error(`agent.alerts.v1 consumer not running: ${this.consumer.describe()}`);
  }
}
