import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Partitioners, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { type ControlCommand, topicName, Topics } from '@agentmeter/contracts';
import { controlMessage, createKafka } from '@agentmeter/kafka';
import { CostCapConfig } from '../config';
import { LOGGER } from '../logger';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { OutboxRepository, type OutboxTopic, type PendingMessage } from './outbox.repository';

/** Content type of the messages of each topic (control: libs/kafka controlMessage, shared with the query API). */
const CONTENT_TYPES: Record<Exclude<OutboxTopic, 'control'>, string> = {
  events: 'application/cloudevents+json; charset=UTF-8',
  alerts: 'application/json',
};

/** Unpublished messages are retried this often (after a Kafka outage or a crash between commit and send). */
const SWEEP_MS = 1_000;

/**
 * Publishes the outbox to Kafka: cap_warning/cap_hit events to agent.events.v1 (where ingest stores
 * them), commands to agent.control.v1, alert signals to agent.alerts.v1. kick() publishes right after a
 * decision commits; a sweep catches whatever a failure left behind. At least once: ids are deterministic.
 */
@Injectable()
export class OutboxPublisher implements OnModuleInit, OnApplicationShutdown {
  private readonly producer: Producer;
  private readonly topics: Record<OutboxTopic, string>;
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    @Inject(CostCapConfig) config: CostCapConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly outbox: OutboxRepository,
    private readonly metrics: CostCapMetrics,
  ) {
    const kafka = createKafka(
      { brokers: config.KAFKA_BROKERS, clientId: 'agentmeter-cost-cap', topicPrefix: config.KAFKA_TOPIC_PREFIX },
      logger,
    );
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.topics = {
      events: topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEvents),
      control: topicName(config.KAFKA_TOPIC_PREFIX, Topics.Control),
      alerts: topicName(config.KAFKA_TOPIC_PREFIX, Topics.Alerts),
    };
  }

  async onModuleInit(): Promise<void> {
    await this.producer.connect();
    this.timer = setInterval(() => this.kick(), SWEEP_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    await this.producer.disconnect();
  }

  /** Publishes what is pending, now (a call during a run makes it run once more). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'outbox publish failed; retrying'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Resolves when everything enqueued so far is published (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    await this.drain();
  }

  private async drain(): Promise<void> {
    while ((await this.outbox.publishPending((messages) => this.send(messages))) > 0) {
      // loop until empty
    }
  }

  private async send(messages: PendingMessage[]): Promise<void> {
    const byTopic = new Map<OutboxTopic, PendingMessage[]>();
    for (const message of messages) byTopic.set(message.topic, [...(byTopic.get(message.topic) ?? []), message]);
    await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, list]) => ({
        topic: this.topics[topic],
        messages: list.map((message) =>
          topic === 'control'
            ? { ...controlMessage(message.payload as ControlCommand, message.trace), key: message.key }
            : {
                key: message.key,
                value: JSON.stringify(message.payload),
                headers: { ...message.trace, 'content-type': CONTENT_TYPES[topic] },
              },
        ),
      })),
    });
    for (const [topic, list] of byTopic) this.metrics.published.inc({ topic }, list.length);
  }
}
